"""A task = prompt templates + ground-truth parsing + answer scoring, registered by name."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mr1cli.core.registry import Registry

SCORING_MODES = ("r1v", "strict")
SCORING_HELP = (
    "r1v: exactly as R1-V's published evaluation scripts score (comparable with the paper); "
    "strict: only the single <answer> span counts (numbers quoted in the reasoning cannot score)"
)


class Task(ABC):
    """One task. Subclasses set the class attributes and implement the three methods."""

    name: str
    description: str
    train_template: str
    eval_template: str
    eval_max_new_tokens: int
    chance_accuracy_note: str = ""

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


TASKS: Registry[Task] = Registry("task")


def check_mode(mode: str) -> None:
    if mode not in SCORING_MODES:
        raise ValueError(f"unknown scoring mode '{mode}' (choose from: {', '.join(SCORING_MODES)})")
