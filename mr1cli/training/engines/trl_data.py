"""What TRL's GRPOTrainer is fed: mr1's examples in mr1's step order, with the task's chat prompt,
and mr1's reward functions.

The dataset holds one row per prompt of every optimizer step, step after step (`step_indices`, the
order mr1's engine draws), read lazily: a row's image is loaded when TRL asks for it. TRL repeats
each row G times and renders the user turn as image-then-text in the model's chat template, which is
token for token the prompt mr1's `chat_prompt` builds (tests/integration/test_trl_engine.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.data.example import Example
from mr1cli.tasks import get_task
from mr1cli.tasks.rewards import REWARDS
from mr1cli.training.steps import step_indices


def step_order(cfg: RunConfig, num_examples: int, total_steps: int) -> list[int]:
    """The example index of every prompt of the run, step by step (what mr1's loop draws)."""
    p, seed = cfg.train.prompts_per_step, cfg.train.seed
    return [i for step in range(total_steps) for i in step_indices(num_examples, step, p, seed)]


def trl_dataset(cfg: RunConfig, examples: Sequence[Example], order: Sequence[int]) -> Any:
    """A `datasets.Dataset` of the prompts in `order`: conversational `prompt`, `image`, `truth`."""
    from datasets import Dataset

    task, m = get_task(cfg.task), cfg.model

    def rows(batch: dict[str, list[int]]) -> dict[str, list[Any]]:
        chosen = [examples[i] for i in batch["index"]]
        return {
            "prompt": [[{"role": "user", "content": task.train_prompt(ex.question)}] for ex in chosen],
            "image": [ex.load_image(max_pixels=m.max_pixels, min_pixels=m.min_pixels) for ex in chosen],
            "truth": [ex.truth for ex in chosen],
        }

    return Dataset.from_dict({"index": list(order)}).with_transform(rows)


def reward_functions(cfg: RunConfig) -> list[Callable[..., list[float]]]:
    """One TRL reward function per mr1 reward in `reward.weights` (TRL weights them with
    `reward_weights` in the same order and sums): the same scorer and scoring mode as mr1's engine."""

    def component(name: str) -> Callable[..., list[float]]:
        score = REWARDS.get(name)

        def reward(prompts, completions, truth, **kwargs) -> list[float]:
            return [
                score(c[0]["content"], t, task=cfg.task, scoring=cfg.reward.scoring)
                for c, t in zip(completions, truth, strict=True)
            ]

        reward.__name__ = name  # TRL logs rewards/<name>/mean
        return reward

    return [component(name) for name in cfg.reward.weights]
