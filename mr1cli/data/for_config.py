"""The examples a run config names: `data.train`, `data.test`, `data.heldout` or `data.warmup`, with its limits."""

from __future__ import annotations

import logging
from pathlib import Path

from mr1cli.config import RunConfig
from mr1cli.core.errors import ConfigError
from mr1cli.data.example import Example
from mr1cli.data.sources import load_split

logger = logging.getLogger(__name__)


def load_examples(cfg: RunConfig, which: str, task: str | None = None, limit: int = 0) -> list[Example]:
    """The first `limit` examples (0: data.train_limit or data.test_limit, else all) of `data.<which>`
    (train, test, heldout or warmup) for the run's task (or `task`)."""
    d = cfg.data
    source = getattr(d, which)
    if not source:
        raise ConfigError(f"data.{which} is not set for profile '{cfg.profile}' and task '{cfg.task}'")
    limit = limit or {"train": d.train_limit, "test": d.test_limit}.get(which, 0) or None
    loaded = load_split(
        source,
        task=task or cfg.task,
        image_root=Path(d.image_root) if d.image_root else None,
        skip_bad=d.skip_bad,
        limit=limit,
        synthetic_seed=d.synthetic_seed,
        synthetic_image_size=d.synthetic_image_size,
    )
    if loaded.skipped:
        logger.warning("%s: skipped %d bad rows (--skip-bad)", source, loaded.skipped)
    return list(loaded.examples)
