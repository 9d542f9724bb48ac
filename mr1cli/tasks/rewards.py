"""Reward functions (name → function registry) and their weighted combination.

A reward function scores one completion: `fn(completion, truth, *, task, scoring) -> float`
in [0, 1]. The training reward is Σ_k weight_k · reward_k (paper: accuracy + α · format);
a weight of 0 drops that reward from the total but it is still computed and logged.

`scoring` names a reward mode (REWARD_MODES) that decides how accuracy and format are judged:
`r1v` = R1-V's training `accuracy_reward` and `format_reward` (core/r1v.py), `strict` = ours
(the task's single-answer-span scorer; one think block then one answer block, no nested tags).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mr1cli.core.answer_format import has_think_answer_format
from mr1cli.core.r1v import r1v_accuracy_reward, r1v_format_reward
from mr1cli.core.registry import Registry
from mr1cli.core.task import get_task

RewardFn = Callable[..., float]
REWARDS: Registry[RewardFn] = Registry("reward")


@dataclass(frozen=True)
class RewardMode:
    """How a scoring mode judges a completion during training: accuracy(completion, truth, task), format(completion)."""

    accuracy: Callable[[str, str, str], float]
    format: Callable[[str], float]
    description: str


def _strict_accuracy(completion: str, truth: str, task: str) -> float:
    return float(get_task(task).is_correct(completion, truth, "strict"))


def _strict_format(completion: str) -> float:
    return float(has_think_answer_format(completion))


def _r1v_accuracy(completion: str, truth: str, task: str) -> float:
    return r1v_accuracy_reward(completion, truth)  # R1-V's reward is the same for every task


REWARD_MODES: Registry[RewardMode] = Registry("scoring mode")
REWARD_MODES.add(
    "strict",
    RewardMode(
        _strict_accuracy,
        _strict_format,
        "ours: only the single <answer> span is scored; format = one think block, one answer block, "
        "whitespace around them allowed, no nested or repeated tags",
    ),
)
REWARD_MODES.add(
    "r1v",
    RewardMode(
        _r1v_accuracy,
        r1v_format_reward,
        "R1-V's training rewards: math-verify on the whole completion, then exact match of the <answer> "
        "contents; format = fullmatch of <think>.*?</think>\\s*<answer>.*?</answer>",
    ),
)


@REWARDS.register("accuracy")
def accuracy_reward(completion: str, truth: str, *, task: str, scoring: str = "strict") -> float:
    """1 when the scoring mode's accuracy check finds the right answer, else 0.

    >>> accuracy_reward("<think>1 2 3</think><answer> 3 </answer>", "3", task="counting")
    1.0
    >>> accuracy_reward("There are 3.", "3", task="counting", scoring="r1v")  # R1-V: untagged earns 1
    1.0
    """
    return float(REWARD_MODES.get(scoring).accuracy(completion, truth, task))


@REWARDS.register("format")
def format_reward(completion: str, truth: str, *, task: str, scoring: str = "strict") -> float:
    """1 when the completion is `<think>…</think><answer>…</answer>` as the scoring mode reads it, else 0.

    >>> format_reward("<think> a </think><answer> 3 </answer>", "3", task="counting")
    1.0
    >>> format_reward(" <think> a </think><answer> 3 </answer>", "3", task="counting", scoring="r1v")
    0.0
    """
    return float(REWARD_MODES.get(scoring).format(completion))


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
