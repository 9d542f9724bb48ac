"""`mr1 train`: one run from a resolved config, with its base model built or found first."""

from __future__ import annotations

import shlex
from pathlib import Path

from mr1cli.config import RunConfig
from mr1cli.core.errors import TrainingInterrupted
from mr1cli.training.run_dir import default_run_dir, require_resumable
from mr1cli.zoo.builds import resolve_model


def train_one(
    cfg: RunConfig, *, output: Path | None, resume: bool, rerun: list[str], overrides: list[str]
) -> Path:
    """Train `cfg` into `output` (default: its config-hashed run directory) and return final/.

    Every check that needs no model runs before the base model is built or loaded. `rerun` is the
    command line (options, then `overrides`) that made this run; an interrupted run says how to resume it with `--resume`.
    """
    run_dir = output or default_run_dir(cfg)
    if resume:
        require_resumable(run_dir)
    from mr1cli.training.loop import check_optional_packages  # torch, after the checks that need none
    from mr1cli.training.train import run_training

    check_optional_packages(cfg)
    base_model = resolve_model(cfg.model.name_or_path, cfg)
    try:
        return run_training(cfg, base_model=base_model, output_dir=run_dir, resume=resume)
    except TrainingInterrupted as stopped:
        again = [*rerun, "--output", str(run_dir), "--resume", *overrides]
        raise TrainingInterrupted(
            f"{stopped}; resume with: {shlex.join(again)}", signal_number=stopped.exit_code - 128
        ) from None
