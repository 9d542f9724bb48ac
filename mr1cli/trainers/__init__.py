"""Training recipes: `run_training(config)` dispatches to the method's trainer."""

from __future__ import annotations

from pathlib import Path

from mr1cli.config import RunConfig
from mr1cli.errors import NotAvailableYet


def run_training(cfg: RunConfig, *, output_dir: Path | None = None, resume: bool = False) -> Path:
    raise NotAvailableYet(
        f"`mr1 train --method {cfg.method}` is not available yet: the trainers arrive with issues 4 and 5"
    )
