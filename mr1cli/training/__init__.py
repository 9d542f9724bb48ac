"""Training recipes: `run_training(config)` runs the method's recipe in its run directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mr1cli.config import RunConfig
from mr1cli.data.example import Example


def run_training(
    cfg: RunConfig,
    *,
    output_dir: Path | None = None,
    resume: bool = False,
    train_examples: Sequence[Example] | None = None,
    quiet: bool = False,
    describe: str | None = None,
) -> Path:
    """Train (or resume, or reuse a finished run) and return the final checkpoint folder."""
    from mr1cli.training.train import train_in_run_dir

    return train_in_run_dir(
        cfg,
        output_dir=output_dir,
        resume=resume,
        train_examples=train_examples,
        quiet=quiet,
        describe=describe,
    )
