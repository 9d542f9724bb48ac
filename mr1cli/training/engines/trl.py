"""The TRL engine (`train.engine: trl`): GRPO and GRPO-D through TRL's `GRPOTrainer`, with mr1's data,
chat prompt, rewards and β schedule around it, writing mr1's run directory.

    mr1 config ──trl_mapping──▶ GRPOConfig          examples ──trl_data──▶ step-ordered dataset
    Mr1GRPOTrainer (trl_trainer): TRL's loop + prompt-length refusal, zero-advantage skip, β used
    callbacks (trl_callbacks): β(s) and seeds before each step; metrics.jsonl rows, probe, checkpoints

Checkpoints are TRL's (`checkpoints/checkpoint-N`: weights, optimizer, scheduler, RNG, trainer
state) sealed with mr1's manifest; `--resume` continues from the newest sealed one through TRL's
`resume_from_checkpoint`. The finished model is written to `final/` like mr1's engine's, so `mr1 eval`
and the experiment tables read it unchanged.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.core.errors import TrainingInterrupted
from mr1cli.core.kl_schedules import schedule_from_settings
from mr1cli.data.example import Example
from mr1cli.models.batching import forbidden_token_ids
from mr1cli.models.loading import load_for_config, quiet_progress_bars
from mr1cli.training.checkpoints import verify_checkpoint, write_checkpoint
from mr1cli.training.engines.trl_mapping import build_grpo_config, world_size
from mr1cli.training.loop import LoopHooks, StopRequest
from mr1cli.training.progress import TrainingProgress
from mr1cli.training.run_dir import RunDir
from mr1cli.training.train import evaluations_for, run_start

logger = logging.getLogger(__name__)


def initial_beta(cfg: RunConfig, steps: int) -> float:
    """The β TRL is built with: positive whenever β(s) can be positive at some step, so that TRL loads
    the reference model (it loads none when built with β = 0), as mr1's engine does; 0 when β ≡ 0.

    >>> from mr1cli.config import RLConfig
    >>> cfg = RunConfig(method="grpo-d", rl=RLConfig(kl={"name": "dynamic", "beta_min": 0.0,
    ...     "beta_max": 0.1, "explore_frac": 1.0}))
    >>> initial_beta(cfg, 11)  # β(0) = 0.05, falling to 0 at the last step: the largest β is used
    0.05
    """
    schedule = schedule_from_settings(cfg.rl.kl)
    return max(schedule(s, steps) for s in range(steps)) if schedule.can_be_positive(steps) else 0.0


def build_trainer(cfg: RunConfig, examples: Sequence[Example], base_path: str, output_dir: Path, steps: int):
    """The GRPOTrainer for `cfg` on the run's step-ordered prompts, the policy loaded from `base_path`."""
    from accelerate import PartialState

    from mr1cli.training.engines.trl_data import reward_functions, step_order, trl_dataset
    from mr1cli.training.engines.trl_trainer import Mr1GRPOTrainer

    device = PartialState().device
    policy = load_for_config(base_path, cfg.model, device=str(device), trainable=True)
    processor = policy.processor
    processor.tokenizer.padding_side = "left"  # TRL re-encodes the prompts for the forward passes
    args = build_grpo_config(
        cfg,
        output_dir=str(output_dir),
        total_steps=steps,
        beta=initial_beta(cfg, steps),
        num_processes=world_size(),
        forbidden_tokens=forbidden_token_ids(processor),
    )
    with quiet_progress_bars():  # TRL loads the reference model (when β can be positive) from base_path
        trainer = Mr1GRPOTrainer(
            model=policy.model,
            reward_funcs=reward_functions(cfg),
            args=args,
            train_dataset=trl_dataset(cfg, examples, step_order(cfg, len(examples), steps)),
            processing_class=processor,
            mr1_config=cfg,
        )
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints TRL's log dicts; mr1 writes metrics.jsonl
    return trainer, processor


def resume_checkpoint(run: RunDir) -> Path | None:
    from mr1cli.training.engines.trl_callbacks import latest_sealed

    checkpoint = latest_sealed(run.checkpoints)
    if checkpoint is not None:
        verify_checkpoint(checkpoint)  # a corrupt newest checkpoint is reported, not skipped
    return checkpoint


def train_with_trl(
    cfg: RunConfig,
    run: RunDir,
    resume: bool,
    train_examples: Sequence[Example] | None,
    base_path: str,
    describe: str,
) -> Path:
    """The TRL engine: train (or resume, or reuse) the run in `run` and return its final/ folder."""
    from mr1cli.training.engines.trl_callbacks import BetaSchedule, RunLog

    checkpoint, examples, steps = run_start(cfg, run, resume, train_examples, resume_checkpoint)
    start = int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint is not None else 0
    if checkpoint is None:
        shutil.rmtree(run.checkpoints, ignore_errors=True)  # an attempt that left no sealed checkpoint
        run.clear_metrics()
    else:
        run.truncate_metrics(start)
    trainer, processor = build_trainer(cfg, examples, base_path, run.checkpoints, steps)
    recipe = SimpleNamespace(accelerator=trainer.accelerator, model=trainer.model, processor=processor)
    hooks = LoopHooks(evaluations=evaluations_for(cfg, recipe))
    is_main = trainer.accelerator.is_main_process
    if is_main:
        logger.info("%s (TRL GRPOTrainer): steps %d→%d into %s", describe, start, steps, run.path)
    stop = StopRequest()
    try:
        with TrainingProgress(describe, total=steps, start=start, enabled=is_main) as progress:
            log = RunLog(trainer, cfg, run, hooks, steps, stop, progress)
            trainer.add_callback(
                BetaSchedule(trainer, schedule_from_settings(cfg.rl.kl), steps, cfg.train.seed)
            )
            trainer.add_callback(log)
            with warnings.catch_warnings():  # transformers 5's renames, raised inside TRL's code
                warnings.simplefilter("ignore", FutureWarning)
                trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    finally:
        stop.restore()
    if log.stopped_at:
        raise TrainingInterrupted(
            f"stopped after step {log.stopped_at}/{steps}; checkpoint written: {resume_checkpoint(run)}",
            signal_number=stop.signal_number,
        )
    extra = {"final_metrics": log.last_row, "base_model": base_path, "train_examples": len(examples)}
    return finish(trainer, run, steps, extra)


def finish(trainer: Any, run: RunDir, steps: int, extra: dict[str, Any]) -> Path:
    """`final/` as mr1's engine writes it (weights, processor, manifest), then done.json last."""
    staging = run.path / ".tmp-trl-final"
    with quiet_progress_bars():
        trainer.save_model(str(staging))  # on every process: a sharded model is gathered
    if trainer.accelerator.is_main_process:
        (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle nothing here reads

        def copy_model(folder: Path) -> None:
            shutil.copytree(staging, folder, dirs_exist_ok=True)

        meta = {"run": run.path.name, "engine": "trl"}
        final = write_checkpoint(run.checkpoints, steps, copy_model, {"step": steps}, meta)
        shutil.rmtree(run.final, ignore_errors=True)
        final.replace(run.final)
        run.mark_done({"steps": steps, "engine": "trl", **extra})
        shutil.rmtree(run.checkpoints, ignore_errors=True)  # final/ is the model; resume points no longer
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return run.final
