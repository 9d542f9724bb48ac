"""From a resolved config to a finished run directory: data, model, recipe, loop."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.data.example import Example
from mr1cli.training.loop import (
    LoopHooks,
    check_optional_packages,
    finish_run,
    restore_trainer_state,
    resume_point,
    run_loop,
)
from mr1cli.training.run_dir import RunDir, default_run_dir
from mr1cli.training.steps import total_steps

logger = logging.getLogger(__name__)


def load_examples(cfg: RunConfig, which: str, task: str | None = None) -> list[Example]:
    """The examples of `data.<which>` (train, test or warmup) for the run's task (or `task`)."""
    from mr1cli.core.errors import ConfigError
    from mr1cli.data.sources import load_split

    d = cfg.data
    source = getattr(d, which)
    if not source:
        raise ConfigError(f"data.{which} is not set for profile '{cfg.profile}' and task '{cfg.task}'")
    limit = {"train": d.train_limit, "test": d.test_limit}.get(which, 0) or None
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


def _accelerator() -> Any:
    from accelerate import Accelerator

    return Accelerator()


def train_in_run_dir(
    cfg: RunConfig,
    *,
    output_dir: Path | None,
    resume: bool,
    train_examples: Sequence[Example] | None,
    quiet: bool = False,
    describe: str | None = None,
) -> Path:
    check_optional_packages(cfg)
    run = RunDir(output_dir or default_run_dir(cfg))
    created = not run.path.exists()
    try:
        with run:
            run.bind_config(cfg, resume=resume)
            try:
                return _train(cfg, run, resume, train_examples, describe or f"{cfg.method} {cfg.task}")
            except BaseException:
                run.discard_stub()
                raise
    finally:
        if created and run.path.is_dir() and not any(run.path.iterdir()):
            run.path.rmdir()


def _train(
    cfg: RunConfig, run: RunDir, resume: bool, train_examples: Sequence[Example] | None, describe: str
) -> Path:
    from mr1cli.zoo.builds import resolve_model

    if run.is_done():
        logger.info("%s already finished; reusing it", run.path)
        return run.final
    checkpoint = resume_point(run) if resume else None
    if resume and checkpoint is None and run.has_progress():
        logger.warning("%s has no checkpoint yet: starting again from step 0", run.path)
    examples = list(train_examples) if train_examples is not None else load_examples(cfg, "train")
    steps = total_steps(len(examples), cfg.train)
    base_path = resolve_model(cfg.model.name_or_path, cfg)
    accelerator = _accelerator()
    recipe = _build_recipe(cfg, examples, base_path, checkpoint, steps, accelerator)
    start = 0
    if checkpoint is not None:
        start = restore_trainer_state(recipe, checkpoint)
        run.truncate_metrics(start)
    elif run.metrics_file.exists():
        run.truncate_metrics(0)
    if accelerator.is_main_process and start < steps:
        logger.info("%s: steps %d→%d into %s; %s", describe, start, steps, run.path, _checkpoint_plan(cfg))
    hooks = LoopHooks(evaluate=_eval_hook(cfg, recipe) if cfg.train.eval_every else None)
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
    if cfg.trainer == "sft":
        from mr1cli.training.recipes.sft import SFTRecipe

        return SFTRecipe(cfg, examples, policy_path, steps, accelerator)
    from mr1cli.training.recipes.grpo import GRPORecipe

    return GRPORecipe(cfg, examples, policy_path, base_path, steps, accelerator)


def _eval_hook(cfg: RunConfig, recipe: Any):
    """Test accuracy during training (figure 1): greedy answers on data.test."""
    from mr1cli.evaluation.evaluate import evaluate_model

    test = load_examples(cfg, "test")

    def evaluate(step: int) -> dict[str, float]:
        model = recipe.accelerator.unwrap_model(recipe.model)
        result = evaluate_model(
            model,
            recipe.processor,
            test,
            task_name=cfg.task,
            scoring=cfg.eval.scoring,
            max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            max_pixels=cfg.model.max_pixels,
            min_pixels=cfg.model.min_pixels,
        )
        model.train()
        return {
            "eval/accuracy": result.summary["accuracy"],
            "eval/format_rate": result.summary["format_rate"],
        }

    return evaluate
