"""A step's rollouts: sampled `rl.rollout_batch` prompts per call, updated `train.micro_batch` at a time.

Sampling many prompts in one call keeps the decoder busy (one decoding loop for B·G sequences instead
of B loops of G); the log-prob forwards and the update keep the memory of `train.micro_batch` prompts.
`micro_batches` regroups the sampled prompts, in order, into those micro-batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mr1cli.models.batching import split_prompts, stack_prompts


@dataclass(frozen=True)
class Sampled:
    """B prompts with their G scored completions each (prompt-major rows: p0g0 … p0gG-1, p1g0 …)."""

    prompt_batch: dict[str, torch.Tensor]  # B left-padded prompts with their images
    completions: list[list[int]]  # N = B·G token lists
    rewards: torch.Tensor  # [N] weighted totals
    components: dict[str, torch.Tensor]  # reward name → [N]
    advantages: torch.Tensor  # [N]

    @property
    def lengths(self) -> torch.Tensor:
        return torch.tensor([len(c) for c in self.completions], dtype=torch.float32)  # [N]


def micro_batches(samples: Sequence[Sampled], prompts_per_batch: int, pad_id: int) -> list[Sampled]:
    """The prompts of `samples`, in order, regrouped `prompts_per_batch` at a time (the last may be
    smaller); a micro-batch may take prompts from two sampling calls. Each prompt keeps its G rows."""
    prompts, rows = [], []  # per prompt: its single-prompt batch, and its G rows of every per-row field
    for sample in samples:
        group = len(sample.completions) // sample.prompt_batch["input_ids"].shape[0]
        for index, single in enumerate(split_prompts(sample.prompt_batch)):
            span = slice(index * group, (index + 1) * group)
            prompts.append(single)
            rows.append(
                (
                    sample.completions[span],
                    sample.rewards[span],
                    {name: values[span] for name, values in sample.components.items()},
                    sample.advantages[span],
                )
            )
    batches = []
    for start in range(0, len(prompts), prompts_per_batch):
        chunk = rows[start : start + prompts_per_batch]
        batches.append(
            Sampled(
                prompt_batch=stack_prompts(prompts[start : start + prompts_per_batch], pad_id),
                completions=[tokens for completions, *_ in chunk for tokens in completions],
                rewards=torch.cat([r for _, r, _, _ in chunk]),
                components={name: torch.cat([c[name] for _, _, c, _ in chunk]) for name in chunk[0][2]},
                advantages=torch.cat([a for *_, a in chunk]),
            )
        )
    return batches
