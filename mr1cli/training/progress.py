"""Training progress for people: a rich bar on a terminal, plain lines everywhere else.

Under nohup, SLURM or `| tee` a live bar is drawn only at exit, so off a terminal we print one
plain line every `every_steps` steps or `every_seconds` seconds (whichever comes first):

    [grpo-d counting] step 12/60 (20%)  0.85 steps/s  ETA 0:00:56  reward 1.34  train_reward_acc 37.5% ...

Metric names are spelled so that none is ambiguous: `train_reward_acc` is the accuracy reward on
the training rollouts, `test_acc` the greedy accuracy on the test set (train.eval_every), `probe_acc`
on the held-out probe (data.probe_size).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

# metric key → the name shown beside the bar and in plain lines (in this order)
LABELS = {
    "loss": "loss",
    "loss/total": "loss",
    "reward/mean": "reward",
    "reward/accuracy": "train_reward_acc",
    "eval/accuracy": "test_acc",
    "probe/accuracy": "probe_acc",
    "kl/beta": "beta",
    "kl/mean": "kl",
}
DEFAULT_EVERY_SECONDS = 30.0
MIN_TIMED_STEPS = 2  # steps timed after the first before a rate and an ETA are shown


# accuracies are shown as percentages, one convention for all: the metric's unit → percent
PERCENT = {"reward/accuracy": 100.0, "eval/accuracy": 1.0, "probe/accuracy": 1.0}


def metrics_text(metrics: dict[str, float]) -> str:
    """The labelled metrics of one step; every accuracy in percent (`reward/accuracy` is logged as a
    fraction, the greedy evaluations as percentages).

    >>> metrics_text({"reward/accuracy": 0.375, "probe/accuracy": 50.0, "kl/beta": 0.04, "perf/x": 1.0})
    'train_reward_acc 37.5%  probe_acc 50.0%  beta 0.04'
    """
    return "  ".join(_shown(k, metrics[k]) for k in LABELS if metrics.get(k) is not None)


def _shown(key: str, value: float) -> str:
    if key in PERCENT:
        return f"{LABELS[key]} {value * PERCENT[key]:.1f}%"
    return f"{LABELS[key]} {value:.3g}"


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss.

    >>> clock(3725.2)
    '1:02:05'
    """
    seconds = round(max(seconds, 0.0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainingProgress:
    """`with TrainingProgress(...) as p: p.update(done_steps, metrics)`; silent when not enabled."""

    def __init__(
        self,
        describe: str,
        *,
        total: int,
        start: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        every_steps: int | None = None,
        every_seconds: float | None = None,
    ) -> None:
        self.describe, self.total, self.start, self.enabled = describe, total, start, enabled
        self.stream = stream or sys.stdout
        self.terminal = Console(file=self.stream).is_terminal
        self.every_steps = every_steps or max(1, total // 20)
        env_seconds = os.environ.get("MR1_PROGRESS_SECONDS")
        self.every_seconds = every_seconds or (float(env_seconds) if env_seconds else DEFAULT_EVERY_SECONDS)
        self._bar: Progress | None = None
        self._task: Any = None
        self._first: tuple[int, float] | None = None  # when this process's first step ended
        self._last_line = (start, time.monotonic())

    def __enter__(self) -> TrainingProgress:
        if self.enabled and self.terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                TextColumn("{task.fields[status]}"),
                console=Console(file=self.stream),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                self.describe, total=self.total, completed=self.start, status="", eta="?"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def update(self, done_steps: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._first is None:
            self._first = (done_steps, now)
        if self._bar is not None:
            eta = self.timing(done_steps, now)[1]
            self._bar.update(self._task, completed=done_steps, status=metrics_text(metrics), eta=eta)
            return
        last_step, last_time = self._last_line
        due = (
            done_steps == self.start + 1
            or done_steps == self.total
            or done_steps - last_step >= self.every_steps
            or now - last_time >= self.every_seconds
        )
        if due:
            self._last_line = (done_steps, now)
            self.stream.write(self.line(done_steps, metrics, now) + "\n")
            self.stream.flush()

    def timing(self, done_steps: int, now: float) -> tuple[float, str]:
        """Steps per second and the ETA, timed from the end of the first step (which also loads,
        compiles and warms caches: a 13-minute build once showed an ETA of 1:35:26 after it);
        0 and "?" until MIN_TIMED_STEPS more steps are timed."""
        first_step, first_time = self._first or (done_steps, now)
        timed = done_steps - first_step
        if timed < MIN_TIMED_STEPS or now <= first_time:
            return 0.0, "?"
        rate = timed / (now - first_time)
        return rate, clock((self.total - done_steps) / rate)

    def line(self, done_steps: int, metrics: dict[str, float], now: float) -> str:
        rate, eta = self.timing(done_steps, now)
        percent = 100 * done_steps // max(self.total, 1)
        speed = f"{rate:.3g}" if rate else "?"
        head = f"[{self.describe}] step {done_steps}/{self.total} ({percent}%)  {speed} steps/s  ETA {eta}"
        text = metrics_text(metrics)
        return f"{head}  {text}" if text else head


# ---------------------------------------------------------------- log lines of long jobs


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each record (it can be replaced later)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _not_printed_already(record: logging.LogRecord) -> bool:
    """False for a record that a library's own handler prints too (huggingface_hub adds one to its
    logger when imported), so that no warning shows twice."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None and logger is not logging.root:
        if logger.handlers:
            return False
        logger = logger.parent if logger.propagate else None
    return True


def log_to_console(console: Console) -> None:
    """Progress lines from long jobs (which run is training, what is reused) on stderr."""

    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False, show_time=False)
    else:  # a log file (nohup, SLURM, | tee): whole lines with a time stamp, never wrapped at 80 columns
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(_not_printed_already)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler], force=True)
    for noisy in ("httpx", "urllib3", "accelerate", "transformers", "matplotlib", "mr1cli.models.loading"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
