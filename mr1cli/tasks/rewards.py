"""Reward functions (name → function registry) and their weighted combination.

A reward function scores one completion: `fn(completion, truth, *, task, scoring) -> float`
in [0, 1]. The training reward is Σ_k weight_k · reward_k (paper: accuracy + α · format);
a weight of 0 drops that reward from the total but it is still computed and logged.

`scoring` names a scoring mode (core/task.py SCORING_MODES) that decides how accuracy and format are judged:
`r1v` = R1-V's training `accuracy_reward` and `format_reward` (core/r1v.py), `strict` = ours
(the task's single-answer-span scorer; one think block then one answer block, no nested tags).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mr1cli.core.registry import Registry
from mr1cli.core.task import SCORING_MODES
from mr1cli.tasks import get_task

RewardFn = Callable[..., float]
REWARDS: Registry[RewardFn] = Registry("reward")


@REWARDS.register("accuracy")
def accuracy_reward(completion: str, truth: str, *, task: str, scoring: str = "strict") -> float:
    """1 when the scoring mode's accuracy check finds the right answer, else 0.

    >>> accuracy_reward("<think>1 2 3</think><answer> 3 </answer>", "3", task="counting")
    1.0
    >>> accuracy_reward("There are 3.", "3", task="counting", scoring="r1v")  # R1-V: untagged earns 1
    1.0
    """
    return float(SCORING_MODES.get(scoring).accuracy(completion, truth, get_task(task)))


@REWARDS.register("format")
def format_reward(completion: str, truth: str, *, task: str, scoring: str = "strict") -> float:
    """1 when the completion is `<think>…</think><answer>…</answer>` as the scoring mode reads it, else 0.

    >>> format_reward("<think> a </think><answer> 3 </answer>", "3", task="counting")
    1.0
    >>> format_reward(" <think> a </think><answer> 3 </answer>", "3", task="counting", scoring="r1v")
    0.0
    """
    return float(SCORING_MODES.get(scoring).format(completion))


@dataclass(frozen=True)
class ScoredCompletion:
    """The weighted total and every component, so diagnostics travel with the number."""

    total: float
    components: dict[str, float]


def score_completion(
    completion: str, truth: str, *, task: str, weights: Mapping[str, float], scoring: str = "strict"
) -> ScoredCompletion:
    """All rewards named in `weights`, and their weighted sum.

    >>> score_completion("<answer> 3 </answer>", "3", task="counting", weights={"accuracy": 1.0, "format": 0.5})
    ScoredCompletion(total=1.0, components={'accuracy': 1.0, 'format': 0.0})
    """
    components = {name: REWARDS.get(name)(completion, truth, task=task, scoring=scoring) for name in weights}
    total = sum(weights[name] * value for name, value in components.items())
    return ScoredCompletion(total=float(total), components=components)


def max_total(weights: Mapping[str, float]) -> float:
    """The largest total reward a completion can earn (every component in [0, 1])."""
    return float(sum(weights.values()))
