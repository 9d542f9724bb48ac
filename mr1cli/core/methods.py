"""Training methods by name: which recipe trains them and which KL schedule a GRPO method uses.

GRPO and GRPO-D differ only by the registered KL schedule (`mr1cli.core.kl_schedules`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mr1cli.core.registry import Registry


@dataclass(frozen=True)
class Method:
    recipe: str  # "sft" or "grpo": the training recipe that runs it
    kl_schedule: str  # the registered KL schedule a GRPO method uses by default ("" for SFT)
    description: str


METHODS: Registry[Method] = Registry("method")
METHODS.add("sft", Method("sft", "", "supervised fine-tuning on the answers"))
METHODS.add("grpo", Method("grpo", "constant", "GRPO with a constant KL weight β"))
METHODS.add("grpo-d", Method("grpo", "dynamic", "GRPO-D: β follows the paper's Eq. 3 schedule"))
