"""From a resolved config to a finished run directory: data, model, recipe, loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.core.methods import METHODS
from mr1cli.data.example import Example
from mr1cli.data.for_config import load_examples
from mr1cli.evaluation.evaluate import evaluate_model
from mr1cli.models.precision import check_launcher_precision, resolve_precision
from mr1cli.training.distributed import launched_rank, make_accelerator
from mr1cli.training.engines import trainer_for
from mr1cli.training.loop import (
    Evaluation,
    LoopHooks,
    check_optional_packages,
    finish_run,
    restore_trainer_state,
    resume_point,
    run_loop,
)
from mr1cli.training.recipes import RECIPES
from mr1cli.training.run_dir import RunDir, default_run_dir
from mr1cli.training.steps import total_steps
from mr1cli.training.trackers import accelerator_kwargs

logger = logging.getLogger(__name__)


def _accelerator(cfg: RunConfig, run: RunDir) -> Any:
    accelerator = make_accelerator(**accelerator_kwargs(cfg, run))
    check_launcher_precision(
        str(accelerator.mixed_precision), resolve_precision(cfg.model.dtype, accelerator.device)
    )
    return accelerator


def run_training(
    cfg: RunConfig,
    *,
    base_model: str | None = None,
    output_dir: Path | None = None,
    resume: bool = False,
    train_examples: Sequence[Example] | None = None,
    describe: str | None = None,
) -> Path:
    """Train (or resume, or reuse a finished run) and return the final checkpoint folder.

    `base_model` is the checkpoint folder or hub id to start from; by default `model.name_or_path`
    as it stands (a name the model zoo builds, such as `tiny-base`, is resolved by the caller).
    """
    check_optional_packages(cfg)
    run = RunDir(output_dir or default_run_dir(cfg))
    writer = launched_rank() == 0  # of several processes, only the first holds the lock and writes
    created = writer and not run.path.exists()
    base_path = base_model or cfg.model.name_or_path
    try:
        with run if writer else nullcontext(run):
            if writer:
                run.bind_config(cfg, resume=resume)
            if run.is_done():
                logger.info("%s already finished; reusing it", run.path)
                return run.final
            try:
                train = trainer_for(cfg.train.engine)
                return train(
                    cfg, run, resume, train_examples, base_path, describe or f"{cfg.method} {cfg.task}"
                )
            except BaseException:
                if writer:
                    run.discard_stub()
                raise
    finally:
        if created and run.path.is_dir() and not any(run.path.iterdir()):
            run.path.rmdir()


def train_with_mr1(
    cfg: RunConfig,
    run: RunDir,
    resume: bool,
    train_examples: Sequence[Example] | None,
    base_path: str,
    describe: str,
) -> Path:
    """mr1's engine (train.engine=mr1): the recipe of the method in mr1's loop."""
    checkpoint, examples, steps = run_start(cfg, run, resume, train_examples, resume_point)
    accelerator = _accelerator(cfg, run)
    recipe = _build_recipe(cfg, examples, base_path, checkpoint, steps, accelerator)
    start = 0
    if checkpoint is not None:
        start = restore_trainer_state(recipe, checkpoint)
        if accelerator.is_main_process:
            run.truncate_metrics(start)
    elif accelerator.is_main_process:
        run.clear_metrics()
    if accelerator.is_main_process and start < steps:
        logger.info("%s: steps %d→%d into %s; %s", describe, start, steps, run.path, _checkpoint_plan(cfg))
    hooks = LoopHooks(evaluations=evaluations_for(cfg, recipe))
    last = (
        run_loop(
            recipe,
            cfg,
            run,
            num_examples=len(examples),
            total_steps=steps,
            start_step=start,
            hooks=hooks,
            describe=describe,
        )
        if start < steps
        else {}
    )
    return finish_run(recipe, run, last, steps, {"base_model": base_path, "train_examples": len(examples)})


def run_start(
    cfg: RunConfig,
    run: RunDir,
    resume: bool,
    train_examples: Sequence[Example] | None,
    find_checkpoint: Callable[[RunDir], Path | None],
) -> tuple[Path | None, list[Example], int]:
    """What every engine starts from: the checkpoint `--resume` continues (None: step 0), the training
    examples and the number of optimizer steps."""
    checkpoint = find_checkpoint(run) if resume else None
    if resume and checkpoint is None and run.has_progress():
        logger.warning("%s has no checkpoint yet: starting again from step 0", run.path)
    examples = list(train_examples) if train_examples is not None else load_examples(cfg, "train")
    return checkpoint, examples, total_steps(len(examples), cfg.train)


def _checkpoint_plan(cfg: RunConfig) -> str:
    t = cfg.train
    when = [f"every {t.save_every} steps"] if t.save_every else []
    when += [f"every {t.save_minutes:g} min"] if t.save_minutes else []
    if not when:
        return "no intermediate checkpoints (train.save_every=0, train.save_minutes=0): a killed run restarts at step 0"
    return f"a resumable checkpoint {' and '.join(when)}, on Ctrl-C and at the end"


def _build_recipe(
    cfg: RunConfig, examples, base_path: str, checkpoint: Path | None, steps: int, accelerator: Any
):
    policy_path = str(checkpoint) if checkpoint is not None else base_path
    build = RECIPES.get(METHODS.get(cfg.method).recipe)
    return build(
        cfg,
        examples,
        policy_path=policy_path,
        base_path=base_path,
        total_steps=steps,
        accelerator=accelerator,
    )


def evaluations_for(cfg: RunConfig, recipe: Any) -> tuple[Evaluation, ...]:
    """Test accuracy every train.eval_every steps (figure 1), and the held-out probe every
    train.probe_every steps (default: the same steps) plus step 0 (the base) and the last step
    (learning curves)."""
    every = cfg.train.eval_every
    evaluations = []
    if every:
        test = load_examples(cfg, "test")
        evaluations.append(Evaluation(_greedy_accuracy(cfg, recipe, test, "eval"), every=every))
    if cfg.data.probe_size:
        probe = load_examples(cfg, "heldout", limit=cfg.data.probe_size)
        evaluate = _greedy_accuracy(cfg, recipe, probe, "probe")
        probe_every = cfg.train.probe_every or every
        evaluations.append(Evaluation(evaluate, every=probe_every, at_start=True, at_end=True))
    return tuple(evaluations)


def _greedy_accuracy(cfg: RunConfig, recipe: Any, examples: Sequence[Example], prefix: str):
    """`<prefix>/accuracy` and `<prefix>/format_rate` (percent) of the current policy's greedy answers."""

    def evaluate(step: int) -> dict[str, float]:
        model = recipe.accelerator.unwrap_model(recipe.model)
        result = evaluate_model(model, recipe.processor, examples, cfg)
        model.train()
        return {
            f"{prefix}/accuracy": result.summary["accuracy"],
            f"{prefix}/format_rate": result.summary["format_rate"],
        }

    return evaluate
