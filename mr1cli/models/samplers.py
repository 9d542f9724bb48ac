"""The rollout samplers by name (`rl.sampler`), a registry that loads without torch so that a config
can be checked before any model code is imported; each entry imports its implementation when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mr1cli.core.registry import Registry

RolloutSampler = Callable[
    [Any, Any, dict[str, Any], Any], list[list[int]]
]  # (model, processor, batch, Decoding)
SAMPLERS: Registry[RolloutSampler] = Registry("rollout sampler")


@SAMPLERS.register("mr1")
def _mr1_sampler(model: Any, processor: Any, prompt_batch: dict[str, Any], decoding: Any) -> list[list[int]]:
    """models/sampling.py's cached loop: prompt prefilled once per group, stops when every sequence is done."""
    from mr1cli.models.sampling import sample_completions

    return sample_completions(model, processor, prompt_batch, decoding)


@SAMPLERS.register("transformers")
def _transformers_sampler(
    model: Any, processor: Any, prompt_batch: dict[str, Any], decoding: Any
) -> list[list[int]]:
    """`model.generate(num_return_sequences=G)`: the reference implementation."""
    from mr1cli.models.batching import generate

    return generate(model, processor, prompt_batch, decoding)
