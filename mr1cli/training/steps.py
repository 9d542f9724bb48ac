"""Pieces both trainers share: step counts, data order, seeds, optimizer and LR schedule.

Everything random is derived from (seed, step) so that a run resumed from the checkpoint
at step k draws exactly what an uninterrupted run draws from step k on.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from mr1cli.config import TrainConfig
from mr1cli.models.precision import check_master_weights


def total_steps(num_examples: int, train: TrainConfig) -> int:
    """Optimizer steps of the run: `max_steps` if set, else ceil(epochs · N / prompts per step).

    >>> from mr1cli.config import TrainConfig
    >>> total_steps(100, TrainConfig(epochs=2, prompts_per_step=16))
    13
    """
    if train.max_steps > 0:
        return train.max_steps
    return max(1, math.ceil(train.epochs * num_examples / train.prompts_per_step))


def step_indices(num_examples: int, step: int, prompts_per_step: int, seed: int) -> list[int]:
    """The example indices of optimizer step `step`: a fresh seeded permutation every epoch.

    >>> sorted(step_indices(4, 0, 2, seed=0) + step_indices(4, 1, 2, seed=0))
    [0, 1, 2, 3]
    """
    start = step * prompts_per_step
    indices: list[int] = []
    position = start
    while len(indices) < prompts_per_step:
        epoch, offset = divmod(position, num_examples)
        order = np.random.default_rng([seed, epoch]).permutation(num_examples)
        take = min(prompts_per_step - len(indices), num_examples - offset)
        indices.extend(int(i) for i in order[offset : offset + take])
        position += take
    return indices


def shard(items: list, process_index: int, num_processes: int) -> list:
    """This process's contiguous share; the batch must split evenly (groups stay whole)."""
    if len(items) % num_processes:
        raise ValueError(f"{len(items)} prompts per step do not split evenly over {num_processes} processes")
    size = len(items) // num_processes
    return items[process_index * size : (process_index + 1) * size]


def seed_step(seed: int, step: int, position: int = 0) -> None:
    """Seed every generator from (seed, step, position in the step's batch) before sampling."""
    value = (seed * 1_000_003 + step * 7919 + position * 104_729) % (2**31 - 1)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def prompt_seed(seed: int, step: int, position: int) -> int:
    """The seed of the generator that samples the completions of the prompt at `position` in step
    `step`'s batch (over all processes): one prompt's draws do not depend on how prompts are batched.

    >>> prompt_seed(42, 3, 5) == prompt_seed(42, 3, 5) != prompt_seed(42, 3, 6)
    True
    """
    return int(np.random.SeedSequence([seed, step, position]).generate_state(1, np.uint64)[0] >> 1)


def build_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the weights that require grad, which must be float32 master weights (models/precision.py)."""
    params = [p for p in model.parameters() if p.requires_grad]
    check_master_weights(params)
    return torch.optim.AdamW(
        params, lr=train.learning_rate, weight_decay=train.weight_decay, betas=(0.9, 0.999)
    )


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, train: TrainConfig, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = int(train.warmup_ratio * steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, steps - warmup)
        if train.lr_scheduler == "linear":
            return max(0.0, 1.0 - progress)
        if train.lr_scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
