"""The examples a run config names: `data.train`, `data.test`, `data.heldout` or `data.warmup`, with its limits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from mr1cli.config import RunConfig
from mr1cli.core.errors import ConfigError
from mr1cli.data.example import Example
from mr1cli.data.sources import load_split

logger = logging.getLogger(__name__)


def load_examples(cfg: RunConfig, which: str, task: str | None = None, limit: int = 0) -> list[Example]:
    """The first `limit` examples (0: data.train_limit or data.test_limit, else all) of `data.<which>`
    (train, test, heldout, validation or warmup) for the run's task (or `task`)."""
    d = cfg.data
    source = getattr(d, which)
    if not source:
        hint = (
            f" (e.g. data.validation=synthetic:{cfg.task}-heldout-2000[1000:2000])"
            if which == "validation"
            else ""
        )
        raise ConfigError(f"data.{which} is not set for profile '{cfg.profile}' and task '{cfg.task}'{hint}")
    limit = limit or {"train": d.train_limit, "test": d.test_limit}.get(which, 0) or None
    balance = which == "train" and d.balance_answers and limit
    loaded = load_split(
        source,
        task=task or cfg.task,
        image_root=Path(d.image_root) if d.image_root else None,
        skip_bad=d.skip_bad,
        limit=None if balance else limit,
        synthetic_seed=d.synthetic_seed,
        synthetic_image_size=d.synthetic_image_size,
    )
    if loaded.skipped:
        logger.warning("%s: skipped %d bad rows (--skip-bad)", source, loaded.skipped)
    if balance:
        return balanced_by_answer(loaded.examples, limit)
    return list(loaded.examples)


def balanced_by_answer(examples: Sequence[Example], n: int) -> list[Example]:
    """`n` examples taken round-robin over the distinct answers (each answer's in file order), returned
    in file order: every answer appears min(its count, about n / #answers) times."""
    by_answer: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_answer.setdefault(ex.truth, []).append(i)
    queues = [iter(indices) for indices in by_answer.values()]
    chosen: list[int] = []
    while queues and len(chosen) < n:
        for queue in list(queues):
            index = next(queue, None)
            if index is None:
                queues.remove(queue)
            elif len(chosen) < n:
                chosen.append(index)
    return [examples[i] for i in sorted(chosen)]
