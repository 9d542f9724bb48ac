"""Callbacks that put TRL's training loop under mr1's run contract.

`BetaSchedule` sets β(s) (Eq. 3 for GRPO-D) and the step's seeds before optimizer step s;
`RunLog` writes mr1's metrics.jsonl rows (mr1's names, the β each loss used), runs the held-out probe
and test evaluations when due, asks for checkpoints on mr1's cadence (train.save_every,
train.save_minutes, Ctrl-C / SIGTERM) and seals each checkpoint with mr1's manifest of checksums.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mr1cli.config import RunConfig
from mr1cli.core.errors import TrainingHalted
from mr1cli.core.kl_schedules import KLSchedule
from mr1cli.training.checkpoints import MANIFEST, sha256_file
from mr1cli.training.engines.trl_mapping import mr1_metrics
from mr1cli.training.engines.trl_trainer import StepRecord
from mr1cli.training.loop import LoopHooks
from mr1cli.training.progress import metrics_text
from mr1cli.training.run_dir import RunDir
from mr1cli.training.steps import seed_step

logger = logging.getLogger(__name__)
TRL_CHECKPOINT_PREFIX = "checkpoint-"  # transformers' PREFIX_CHECKPOINT_DIR


class BetaSchedule(TrainerCallback):
    """β(s) into TRL before every optimizer step s, and every RNG seeded from (seed, s, process): a run
    resumed at step s samples exactly what an uninterrupted run samples there."""

    def __init__(self, trainer: Any, schedule: KLSchedule, total_steps: int, seed: int) -> None:
        self.trainer, self.schedule, self.total_steps, self.seed = trainer, schedule, total_steps, seed

    def on_step_begin(self, args, state, control, **kwargs):
        step = state.global_step
        beta = self.schedule(step, self.total_steps)  # β(s), Eq. 3 for GRPO-D
        self.trainer.beta = beta
        self.trainer.step_record = StepRecord(beta=beta)
        seed_step(self.seed, step, self.trainer.accelerator.process_index)


def step_row(logs: dict[str, Any], record: StepRecord, cfg: RunConfig) -> dict[str, float]:
    """mr1's metrics for one TRL step: TRL's own figures under mr1's names, the β actually used, and
    what a skipped step logs in mr1's engine (zero loss, KL and clipping)."""
    completions = cfg.train.prompts_per_step * cfg.rl.num_generations
    row = mr1_metrics(logs, list(cfg.reward.weights), completions)
    used = set(record.betas_used)
    if len(used) > 1:  # every micro-batch of a step must see the same β(s)
        raise TrainingHalted(f"the step's micro-batches used different β: {sorted(used)}")
    row["kl/beta"] = used.pop() if used else record.beta
    row["train/skipped"] = float(record.skipped)
    if record.skipped:
        row |= {"loss/total": 0.0, "kl/mean": 0.0, "train/clip_fraction": 0.0}
    row["perf/generation_s"] = record.generation_s
    row["perf/gen_tokens_per_s"] = record.generated_tokens / max(record.generation_s, 1e-9)
    return row


class RunLog(TrainerCallback):
    def __init__(
        self,
        trainer: Any,
        cfg: RunConfig,
        run: RunDir,
        hooks: LoopHooks,
        total_steps: int,
        stop: Any,
        progress: Any,
    ) -> None:
        self.trainer, self.cfg, self.run, self.hooks = trainer, cfg, run, hooks
        self.total_steps, self.stop, self.progress = total_steps, stop, progress
        self.is_main = trainer.accelerator.is_main_process
        self.pending: dict[str, float] = {}
        self.started = 0.0
        self.last_save = time.monotonic()
        self.stopped_at = 0  # the step after which a signal stopped training (0: not stopped)
        self.last_row: dict[str, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:  # the base model's row; a resumed run keeps the one it logged
            base = self.hooks.run_due(0, self.total_steps)
            if self.is_main and base:
                logger.info("before training: %s", metrics_text(base))
                self.run.log_metrics({"step": 0, **base})

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        step, train = state.global_step, self.cfg.train
        elapsed = time.perf_counter() - self.started
        self.pending = {"perf/step_seconds": elapsed, "perf/steps_per_s": 1.0 / max(elapsed, 1e-9)}
        self.pending |= self.hooks.run_due(step, self.total_steps)
        minutes = (time.monotonic() - self.last_save) / 60
        if self.stop.signal_number:
            control.should_save = control.should_training_stop = True
            self.stopped_at = step
        elif step < self.total_steps and (
            (train.save_every and step % train.save_every == 0)
            or (train.save_minutes and minutes >= train.save_minutes)
        ):
            control.should_save = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:  # the end-of-training summary is not a step
            return
        step = state.global_step
        row = step_row(logs, self.trainer.step_record, self.cfg) | self.pending
        for key in ("loss/total", "reward/mean"):
            if not math.isfinite(row.get(key, 0.0)):
                raise TrainingHalted(
                    f"step {step}: {key} is {row[key]}; stopped, the last good checkpoint is kept "
                    "(lower the learning rate?)"
                )
        evaluated = any(key.startswith(("probe/", "eval/")) for key in self.pending)
        due = step % self.cfg.train.log_every == 0 or step == self.total_steps or evaluated
        if self.is_main and due:
            self.run.log_metrics({"step": step, **row})
        self.progress.update(step, row)
        self.last_row = row

    def on_save(self, args, state, control, **kwargs):
        if self.is_main:
            seal_checkpoint(Path(args.output_dir) / f"{TRL_CHECKPOINT_PREFIX}{state.global_step}")
        self.last_save = time.monotonic()


def seal_checkpoint(folder: Path) -> None:
    """mr1's manifest (sha256 of every file), written last and atomically: a checkpoint that a kill cut
    short has none, and `latest_sealed` never resumes from it."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    step = int(folder.name[len(TRL_CHECKPOINT_PREFIX) :])
    manifest = {"step": step, "files": {str(p.relative_to(folder)): sha256_file(p) for p in files}}
    staging = folder / (MANIFEST + ".tmp")
    staging.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(staging, folder / MANIFEST)


def latest_sealed(root: Path) -> Path | None:
    """The newest TRL checkpoint with a manifest (checked by `verify_checkpoint` before use)."""
    if not root.is_dir():
        return None
    sealed = [
        p
        for p in root.iterdir()
        if p.name.startswith(TRL_CHECKPOINT_PREFIX)
        and p.name[len(TRL_CHECKPOINT_PREFIX) :].isdigit()
        and (p / MANIFEST).is_file()
    ]
    return max(sealed, key=lambda p: int(p.name[len(TRL_CHECKPOINT_PREFIX) :]), default=None)
