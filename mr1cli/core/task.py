"""A task = prompt templates + ground-truth parsing + answer scoring + its synthetic generator and
per-task config defaults; and the scoring modes a task is judged under.

This is the base class only: the registry of tasks (`TASKS`) and the built-in tasks live one floor
up, in `mr1cli.tasks`, which every user of a task imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mr1cli.core.answer_format import has_think_answer_format
from mr1cli.core.r1v import r1v_accuracy_reward, r1v_format_reward
from mr1cli.core.registry import Registry

# R1-V's instruction, which every published prompt ends with (paper.md, "Prompts"); each task's
# templates put their own opening before it ("Output", "First output").
THINK_ANSWER_INSTRUCTION = (
    "the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags."
)


@dataclass(frozen=True)
class SyntheticGenerator:
    """Draws a spec (scene, problem) for a split, renders it, and types its ground truth."""

    sample: Callable[[Any, str], Any]  # (random.Random, split) -> spec with .question, .answer, .thinking
    render: Callable[[Any, int], Any]  # (spec, image_size) -> PIL image
    ground_truth: Callable[[str], object]  # the test jsonl's `ground_truth` value from the answer text


class Task(ABC):
    """One task. Subclasses set the class attributes and implement the three methods.

    `kl_defaults` maps a KL schedule's name to this task's parameters for it (paper: per-task β);
    `config_defaults` maps "*" (every profile) or a profile name to a config layer applied after the
    profile's `base` section. Data sources in profiles may name the task as `{task}`.
    """

    name: str
    train_template: str
    eval_template: str
    eval_max_new_tokens: int
    synthetic: ClassVar[SyntheticGenerator | None] = None
    kl_defaults: ClassVar[Mapping[str, Mapping[str, float]]] = {}
    config_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    in_tiny_base: ClassVar[bool] = False  # the tiny tokenizer and the tiny base learn this task too

    @abstractmethod
    def parse_truth(self, raw: object) -> str:
        """Normalise a dataset's ground truth to the canonical string; ValueError if unusable."""

    @abstractmethod
    def extract_answer(self, completion: str, mode: str) -> str | None:
        """The answer the scorer reads from a completion under `mode`, or None."""

    @abstractmethod
    def is_correct(self, completion: str, truth: str, mode: str) -> bool:
        """Whether the completion answers `truth` (a canonical string) under `mode`."""

    truth_kinds: tuple[str, ...] = ("value",)  # the classes `mr1 data check` counts ground truths in

    def truth_kind(self, truth: str) -> str:
        """Which of `truth_kinds` a canonical ground truth falls in ("text" = kept as text, exact match)."""
        return self.truth_kinds[0]

    def train_prompt(self, question: str) -> str:
        return self.train_template.format(question=question)

    def eval_prompt(self, question: str) -> str:
        return self.eval_template.format(question=question)


@dataclass(frozen=True)
class ScoringMode:
    """How a completion is judged under one scoring mode: accuracy(completion, truth, task) and
    format(completion), each 1.0 or 0.0; the training rewards and the evaluation read the same."""

    accuracy: Callable[[str, str, Task], float]
    format: Callable[[str], float]
    description: str


# The one list of scoring modes (`reward.scoring`, `eval.scoring`); a task's scorer takes one of them.
SCORING_MODES: Registry[ScoringMode] = Registry("scoring mode")
SCORING_MODES.add(
    "strict",
    ScoringMode(
        lambda completion, truth, task: float(task.is_correct(completion, truth, "strict")),
        lambda completion: float(has_think_answer_format(completion)),
        "ours: only the single <answer> span is scored; format = one think block, one answer block, "
        "whitespace around them allowed, no nested or repeated tags",
    ),
)
SCORING_MODES.add(
    "r1v",
    ScoringMode(
        lambda completion, truth, task: r1v_accuracy_reward(completion, truth),  # the same for every task
        r1v_format_reward,
        "R1-V's training rewards: math-verify on the whole completion, then exact match of the <answer> "
        "contents; format = fullmatch of <think>.*?</think>\\s*<answer>.*?</answer>",
    ),
)


def check_mode(mode: str) -> None:
    """ValueError unless `mode` is a registered scoring mode (a task's scorer calls this first).

    >>> check_mode("strict")
    >>> check_mode("lenient")
    Traceback (most recent call last):
    ...
    ValueError: unknown scoring mode 'lenient' (choose from: r1v, strict)
    """
    if mode not in SCORING_MODES:
        raise ValueError(
            f"unknown scoring mode '{mode}' (choose from: {', '.join(sorted(SCORING_MODES.names()))})"
        )
