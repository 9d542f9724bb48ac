"""The loop every recipe shares: run directory, resume, progress, logging, checkpoints.

A recipe (SFT or GRPO) supplies `train_step(step, indices) -> metrics` over its own model
and optimizer; this module owns everything around it, so both trainers resume, log and
stop in the same way.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from mr1cli.config import RunConfig
from mr1cli.core.errors import CheckpointError, ConfigError, TrainingHalted, TrainingInterrupted
from mr1cli.models.loading import quiet_progress_bars
from mr1cli.training.checkpoints import (
    check_checkpoint,
    latest_checkpoint,
    load_trainer_state,
    prune_checkpoints,
    write_checkpoint,
    write_failure,
)
from mr1cli.training.distributed import agree, checkpoint_state, load_optimizer_state
from mr1cli.training.engines import check_engine_packages
from mr1cli.training.progress import TrainingProgress, metrics_text
from mr1cli.training.run_dir import RunDir
from mr1cli.training.steps import shard, step_indices
from mr1cli.training.trackers import check_trackers, start_trackers

KEEP_CHECKPOINTS = 2
logger = logging.getLogger(__name__)


class Recipe(Protocol):
    model: torch.nn.Module
    processor: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    accelerator: Any

    def train_step(self, step: int, indices: list[int]) -> dict[str, float]: ...


@dataclass(frozen=True)
class Evaluation:
    """A greedy evaluation run inside the loop; its metrics join the row of the step it ran after.

    >>> probe = Evaluation(lambda step: {}, every=20, at_start=True, at_end=True)
    >>> [step for step in range(0, 51) if probe.due(step, total_steps=50)]
    [0, 20, 40, 50]
    """

    evaluate: Callable[[int], dict[str, float]]
    every: int  # 0 = only at the start / end steps asked for
    at_start: bool = False  # step 0: the model before any update
    at_end: bool = False

    def due(self, step: int, total_steps: int) -> bool:
        if step == 0:
            return self.at_start
        return bool(self.every and step % self.every == 0) or (self.at_end and step == total_steps)


@dataclass(frozen=True)
class LoopHooks:
    """Evaluations to run during training (test accuracy, the held-out probe)."""

    evaluations: tuple[Evaluation, ...] = ()

    def run_due(self, step: int, total_steps: int) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for evaluation in self.evaluations:
            if evaluation.due(step, total_steps):
                metrics.update(evaluation.evaluate(step))
        return metrics


def resume_point(run: RunDir) -> Path | None:
    """The newest checkpoint that verifies; a corrupt newest one is reported, not skipped silently."""
    checkpoint = latest_checkpoint(run.checkpoints)
    if checkpoint is not None:
        check_checkpoint(
            checkpoint, lambda older: f"delete {checkpoint} to resume from {older.name}, which verifies"
        )
    return checkpoint


def save_model_files(recipe: Recipe, directory: Path, weights: dict[str, torch.Tensor] | None = None) -> None:
    """The model (`weights`: its gathered state dict when sharded) and the processor, as a loadable
    Hugging Face checkpoint."""
    model = recipe.accelerator.unwrap_model(recipe.model)
    with quiet_progress_bars():
        model.save_pretrained(directory, safe_serialization=True, state_dict=weights)
        recipe.processor.save_pretrained(directory)


def save_checkpoint(recipe: Recipe, run: RunDir, step: int) -> Path | None:
    """Every process calls it (a sharded model is gathered first); the main process writes it and
    returns its path, the others None."""
    weights, optimizer = checkpoint_state(recipe.accelerator, recipe.model, recipe.optimizer)
    if not recipe.accelerator.is_main_process:
        return None
    state = {"optimizer": optimizer, "scheduler": recipe.scheduler.state_dict(), "step": step}
    path = write_checkpoint(
        run.checkpoints, step, lambda d: save_model_files(recipe, d, weights), state, {"run": run.path.name}
    )
    prune_checkpoints(run.checkpoints, KEEP_CHECKPOINTS)
    return path


def restore_trainer_state(recipe: Recipe, checkpoint: Path) -> int:
    state = load_trainer_state(checkpoint)
    load_optimizer_state(recipe.accelerator, recipe.model, recipe.optimizer, state["optimizer"])
    recipe.scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])


def _check_finite(step: int, metrics: dict[str, float]) -> None:
    for key in ("loss", "loss/total", "reward/mean"):
        value = metrics.get(key)
        if value is not None and not math.isfinite(value):
            raise TrainingHalted(
                f"step {step}: {key} is {value}; stopped, the last good checkpoint is kept (lower the learning rate?)"
            )


def run_loop(
    recipe: Recipe,
    cfg: RunConfig,
    run: RunDir,
    *,
    num_examples: int,
    total_steps: int,
    start_step: int,
    hooks: LoopHooks | None = None,
    describe: str = "training",
) -> dict[str, Any]:
    """Steps start_step … total_steps-1; checkpoints at save_every / save_minutes and at the end.
    The hooks' evaluations run after the steps they are due at, and at step 0 (before any update) on
    a fresh start.

    Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint and raises
    TrainingInterrupted (exit 130 / 143); a second Ctrl-C stops at once.
    """
    hooks = hooks or LoopHooks()
    accelerator = recipe.accelerator
    is_main = accelerator.is_main_process
    tracking = start_trackers(accelerator, cfg, run)
    train = cfg.train
    stop = StopRequest()
    last: dict[str, float] = {}
    last_save = time.monotonic()
    try:
        if start_step == 0:  # the base model's row; a resumed run keeps the one it logged
            base = hooks.run_due(0, total_steps)
            if is_main and base:
                logger.info("%s: before training: %s", describe, metrics_text(base))
                run.log_metrics({"step": 0, **base})
                if tracking:
                    accelerator.log(base, step=0)
        with TrainingProgress(describe, total=total_steps, start=start_step, enabled=is_main) as progress:
            for step in range(start_step, total_steps):
                started = time.perf_counter()
                indices = step_indices(num_examples, step, train.prompts_per_step, train.seed)
                mine = shard(indices, accelerator.process_index, accelerator.num_processes)
                metrics = recipe.train_step(step, mine)
                _check_finite(step, metrics)
                metrics["perf/step_seconds"] = time.perf_counter() - started
                metrics["perf/steps_per_s"] = 1.0 / max(metrics["perf/step_seconds"], 1e-9)
                done_steps = step + 1
                evaluated = hooks.run_due(done_steps, total_steps)
                metrics.update(evaluated)
                if is_main and (done_steps % train.log_every == 0 or done_steps == total_steps or evaluated):
                    run.log_metrics({"step": done_steps, **metrics})
                    if tracking:
                        accelerator.log(metrics, step=done_steps)
                last = metrics
                progress.update(done_steps, metrics)
                minutes = (time.monotonic() - last_save) / 60
                due = (train.save_every and done_steps % train.save_every == 0) or (
                    train.save_minutes and minutes >= train.save_minutes
                )
                # every process stops and checkpoints at the same step (saving gathers a sharded model)
                stopping, due = agree(accelerator, bool(stop.signal_number), bool(due))
                if stopping:
                    checkpoint = save_checkpoint(recipe, run, done_steps)
                    raise TrainingInterrupted(
                        f"stopped after step {done_steps}/{total_steps}; checkpoint written: {checkpoint}",
                        signal_number=stop.signal_number or signal.SIGTERM,
                    )
                if due and done_steps < total_steps:
                    save_checkpoint(recipe, run, done_steps)
                    last_save = time.monotonic()
                accelerator.wait_for_everyone()
    finally:
        stop.restore()
        if tracking:
            accelerator.end_training()
    return last


class StopRequest:
    """SIGINT / SIGTERM → finish the step, checkpoint, stop; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.signal_number = 0
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_number == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_number = signum
        logger.warning("stopping after this step and writing a checkpoint (Ctrl-C again to stop at once)")

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def check_optional_packages(cfg: RunConfig) -> None:
    """Fail before any model is loaded or any folder written when an optional package is missing."""
    if cfg.model.lora.enabled and importlib.util.find_spec("peft") is None:
        raise ConfigError("model.lora.enabled=true needs the peft package: pip install -e '.[lora]'")
    check_trackers(cfg.train.report_to)
    check_engine_packages(cfg)


def finish_run(
    recipe: Recipe, run: RunDir, final_metrics: dict[str, Any], total_steps: int, extra: dict[str, Any]
) -> Path:
    """Write `final/` (a loadable checkpoint), then done.json last."""
    final = save_checkpoint(recipe, run, total_steps)
    if final is not None:  # the main process
        staging = run.path / ".tmp-final"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(final, staging)
        except (OSError, shutil.Error) as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise CheckpointError(f"could not write {run.final}: {write_failure(error)}") from None
        shutil.rmtree(run.final, ignore_errors=True)
        os.replace(staging, run.final)
        run.mark_done({"steps": total_steps, "final_metrics": final_metrics, **extra})
        # final/ is the finished model; the resume checkpoints would only double the disk use.
        shutil.rmtree(run.checkpoints, ignore_errors=True)
    recipe.accelerator.wait_for_everyone()
    return run.final
