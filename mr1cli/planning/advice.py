"""The verdict (fits or not) and, when it does not fit, the knobs that make it fit.

Each knob is a registered change to a `Workload` with the config key or launcher setting a user
would change; knobs are tried one at a time, then cumulatively in registration order (cheapest for
the experiment first: memory-only settings before LoRA, G and max_pixels, which change the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mr1cli.core.registry import Registry
from mr1cli.planning.gpus import GpuKind
from mr1cli.planning.memory import memory_terms, peak_bytes
from mr1cli.planning.workload import LoraShape, Workload

# Share of a GPU's memory the planner lets the estimate use: the CUDA context, NCCL buffers and the
# caching allocator's fragmentation take the rest.
USABLE_FRACTION = 0.9


@dataclass(frozen=True)
class Knob:
    setting: str  # what the user changes, e.g. "model.gradient_checkpointing=true"
    changes_result: bool  # False: memory/speed only; True: a different experiment
    apply: Callable[[Workload], Workload | None]  # None: not applicable (already set, or one GPU)


KNOBS: Registry[Knob] = Registry("memory knob")
KNOBS.add(
    "gradient checkpointing",
    Knob(
        "model.gradient_checkpointing=true",
        False,
        lambda w: None if w.gradient_checkpointing else w.with_(gradient_checkpointing=True),
    ),
)
KNOBS.add(
    "micro-batch 1",
    Knob("train.micro_batch=1", False, lambda w: w.with_(micro_batch=1) if w.micro_batch > 1 else None),
)
KNOBS.add(
    "rollout batch 1",
    Knob(
        "rl.rollout_batch=1",
        False,  # each prompt samples from its own seeded generator: the same draws, batched or not
        lambda w: w.with_(rollout_batch=1) if w.rollouts and w.rollout_batch > 1 else None,
    ),
)
KNOBS.add(
    "FSDP2",
    Knob(
        "FSDP2 (mr1 reproduce --gpus-per-run K, or accelerate launch --config_file "
        "experiments/accelerate/fsdp2.yaml)",
        False,
        lambda w: w.with_(fsdp=True) if w.gpus > 1 and not w.fsdp else None,
    ),
)
KNOBS.add(
    "LoRA",
    Knob("model.lora.enabled=true", True, lambda w: None if w.lora else w.with_(lora=LoraShape())),
)
KNOBS.add(
    "half G",
    Knob(
        "rl.num_generations=G/2",
        True,
        lambda w: w.with_(generations=w.generations // 2) if w.rollouts and w.generations >= 4 else None,
    ),
)
KNOBS.add(
    "half max_pixels",
    Knob(
        "model.max_pixels=max_pixels/2",
        True,
        lambda w: w.with_(max_pixels=w.max_pixels // 2) if w.max_pixels >= 2 * 28 * 28 * 16 else None,
    ),
)


def fits(w: Workload, gpu: GpuKind) -> bool:
    return peak_bytes(memory_terms(w)) <= USABLE_FRACTION * gpu.memory_bytes


@dataclass(frozen=True)
class Fix:
    knobs: tuple[str, ...]
    settings: tuple[str, ...]
    peak_bytes: float
    changes_result: bool


def fixes(w: Workload, gpu: GpuKind) -> list[Fix]:
    """Single knobs that make `w` fit; if none does, the cumulative set (in order) that does, or []."""
    found: list[Fix] = []
    for name in KNOBS.names():
        knob = KNOBS.get(name)
        changed = knob.apply(w)
        if changed is not None and fits(changed, gpu):
            found.append(
                Fix((name,), (knob.setting,), peak_bytes(memory_terms(changed)), knob.changes_result)
            )
    if found:
        return found
    current, names, settings, changes = w, [], [], False
    for name in KNOBS.names():
        knob = KNOBS.get(name)
        changed = knob.apply(current)
        if changed is None:
            continue
        current, changes = changed, changes or knob.changes_result
        names.append(name)
        settings.append(knob.setting)
        if fits(current, gpu):
            return [Fix(tuple(names), tuple(settings), peak_bytes(memory_terms(current)), changes)]
    return []
