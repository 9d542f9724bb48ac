"""`mr1 reproduce`: plan an experiment's grid, train what is not done, evaluate, report.

A spec (experiments/<name>.yaml) lists grids: methods × tasks × varied config keys × seeds,
and which task each trained model is evaluated on (`same` or `other`). Every training run
lives in its own config-hashed run directory, so a finished run is reused by any experiment
that asks for the same config (exp2 and exp3 share their models), and a killed reproduce
continues where it stopped (runs resume from their checkpoints, finished evaluations are
kept). Outputs: results/<name>/records.jsonl, curves/, table.csv, table.md, figures/.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mr1cli.config import EXPERIMENTS_DIR, RunConfig, load_config
from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import did_you_mean
from mr1cli.training.run_dir import RunDir, atomic_write_text, default_run_dir

logger = logging.getLogger(__name__)

SPECS_DIR = EXPERIMENTS_DIR
EXPERIMENTS = ("exp1-format-reward", "exp2-cross-task", "exp3-same-task")
TASKS = ("counting", "geometry")


@dataclass(frozen=True)
class PlannedRun:
    """One model to train (or the base model when method == 'base') and the tasks it is tested on."""

    grid: str
    method: str
    train_task: str | None
    seed: int
    setting: dict[str, Any]
    eval_tasks: tuple[str, ...]
    config: RunConfig | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.config.run_name() if self.config is not None else "base"


def specs_dir() -> Path:
    """experiments/, or $MR1_EXPERIMENTS_DIR to run your own specs under the same names."""
    return Path(os.environ.get("MR1_EXPERIMENTS_DIR") or SPECS_DIR)


def load_spec(name: str) -> dict[str, Any]:
    path = specs_dir() / f"{name}.yaml"
    if name not in EXPERIMENTS or not path.is_file():
        raise ConfigError(f"unknown experiment '{name}'{did_you_mean(name, [*EXPERIMENTS, 'all'])}")
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or not isinstance(spec.get("grids"), list):
        raise ConfigError(f"{path}: an experiment spec needs a 'grids' list")
    return spec


def _eval_tasks(train_task: str, evaluate_on: str) -> tuple[str, ...]:
    if evaluate_on == "same":
        return (train_task,)
    if evaluate_on == "other":
        return tuple(t for t in TASKS if t != train_task)
    raise ConfigError(f"evaluate_on must be 'same' or 'other', got '{evaluate_on}'")


def plan(spec: dict[str, Any], profile: str, seeds: int) -> list[PlannedRun]:
    """Every (grid, method, task, setting, seed) of the spec, with its resolved config."""
    profile_seeds = (spec.get("seeds") or {}).get(profile, 1)
    seed_values = range(seeds or profile_seeds)
    runs: list[PlannedRun] = []
    for grid in spec["grids"]:
        vary: dict[str, list[Any]] = grid.get("vary") or {}
        fixed = [f"{k}={v}" for k, v in (grid.get("overrides") or {}).items()]
        for task in grid["tasks"]:
            eval_tasks = _eval_tasks(task, grid.get("evaluate_on", "same"))
            if grid.get("include_base", True):
                for eval_task in eval_tasks:
                    runs.append(PlannedRun(grid["name"], "base", None, 0, {}, (eval_task,)))
            for method, values, seed in itertools.product(
                grid["methods"], itertools.product(*vary.values()), seed_values
            ):
                setting = dict(zip(vary, values, strict=True))
                overrides = (*fixed, *(f"{k}={v}" for k, v in setting.items()), f"train.seed={seed}")
                config = load_config(method=method, task=task, profile=profile, overrides=list(overrides))
                runs.append(
                    PlannedRun(grid["name"], method, task, seed, setting, eval_tasks, config, overrides)
                )
    return runs


def _eval_config(profile: str, eval_task: str) -> RunConfig:
    return load_config(method="sft", task=eval_task, profile=profile)


def _eval_key(cfg: RunConfig) -> str:
    content = {
        "test": cfg.data.test,
        "limit": cfg.data.test_limit,
        "eval": cfg.eval.__dict__,
        "pixels": [cfg.model.min_pixels, cfg.model.max_pixels],
        "image": cfg.data.synthetic_image_size,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]


def evaluate_cached(model: str, folder: Path, profile: str, eval_task: str) -> dict[str, Any]:
    """Evaluate `model` on the profile's test set of `eval_task`, once; reuse the saved summary."""
    from mr1cli.experiments.evaluations import evaluate_checkpoint

    cfg = _eval_config(profile, eval_task)
    out_dir = folder / "eval" / f"{eval_task}-test-{_eval_key(cfg)}"
    metrics = out_dir / "metrics.json"
    if not metrics.is_file():
        evaluate_checkpoint(cfg, model, split="test", output=out_dir)
    return json.loads(metrics.read_text())


def _base_folder(profile: str) -> tuple[str, Path]:
    """The profile's base model and where its evaluations are kept (keyed by the resolved model)."""
    from mr1cli.zoo.builds import resolve_model

    cfg = _eval_config(profile, "counting")
    resolved = resolve_model(cfg.model.name_or_path, cfg)
    key = hashlib.sha256(
        str(Path(resolved).resolve() if Path(resolved).exists() else resolved).encode()
    ).hexdigest()[:10]
    return resolved, default_run_dir(cfg).parent / f"base-{key}"


def execute(planned: list[PlannedRun], profile: str) -> list[dict[str, Any]]:
    """Train and evaluate every planned run (reusing finished work); return the records."""
    from mr1cli.training import run_training

    records = []
    total = sum(1 for run in planned if run.config is not None)
    done = 0
    for run in planned:
        if run.config is None:
            model, folder = _base_folder(profile)
        else:
            done += 1
            logger.info(
                "[%d/%d] %s %s %s %s",
                done,
                total,
                run.method,
                run.train_task,
                run.setting or "",
                f"seed {run.seed}",
            )
            final = run_training(run.config, resume=True)
            model, folder = str(final), final.parent
        for eval_task in run.eval_tasks:
            summary = evaluate_cached(model, folder, profile, eval_task)
            records.append(
                {
                    "grid": run.grid,
                    "method": run.method,
                    "train_task": run.train_task,
                    "eval_task": eval_task,
                    "seed": run.seed,
                    "setting": run.setting,
                    "run": run.name,
                    "profile": profile,
                    **{
                        k: summary[k]
                        for k in ("accuracy", "accuracy_r1v", "accuracy_strict", "format_rate", "scoring")
                    },
                }
            )
    return records


def write_results(
    name: str,
    spec: dict[str, Any],
    planned: list[PlannedRun],
    records: list[dict[str, Any]],
    results_root: Path,
) -> Path:
    out = results_root / name
    curves = out / "curves"
    curves.mkdir(parents=True, exist_ok=True)
    index = []
    for run in planned:
        if run.config is None:
            continue
        metrics = default_run_dir(run.config) / "metrics.jsonl"
        if metrics.is_file():
            shutil.copyfile(metrics, curves / f"{run.name}.jsonl")
        index.append(
            {
                "run": run.name,
                "method": run.method,
                "train_task": run.train_task,
                "setting": run.setting,
                "seed": run.seed,
                "grid": run.grid,
            }
        )
    atomic_write_text(curves / "index.jsonl", "".join(json.dumps(row) + "\n" for row in index))
    rows = [{"experiment": name, **record} for record in records]
    atomic_write_text(out / "records.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    atomic_write_text(out / "spec.json", json.dumps(spec, indent=1))
    return out


def describe_plan(planned: list[PlannedRun]) -> list[tuple[str, ...]]:
    rows = []
    for run in planned:
        status = "—"
        if run.config is not None:
            run_dir = RunDir(default_run_dir(run.config))
            status = (
                "done" if run_dir.is_done() else ("partial" if run_dir.metrics_file.exists() else "to train")
            )
        seed = str(run.seed) if run.config is not None else "—"
        rows.append(
            (
                run.grid,
                run.method,
                run.train_task or "—",
                json.dumps(run.setting) if run.setting else "",
                seed,
                "→ " + ", ".join(run.eval_tasks),
                status,
            )
        )
    return rows


def reproduce(
    name: str, *, profile: str, seeds: int, dry_run: bool, results_root: Path = Path("results")
) -> list[Path]:
    """Run one experiment (or all three); return the output folders."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    names = list(EXPERIMENTS) if name == "all" else [name]
    outputs = []
    for experiment in names:
        spec = load_spec(experiment)
        planned = plan(spec, profile, seeds)
        table = Table(title=f"{experiment} ({profile} profile)")
        for column in ("grid", "method", "train", "setting", "seed", "eval", "status"):
            table.add_column(column)
        for row in describe_plan(planned):
            table.add_row(*row)
        console.print(table)
        if dry_run:
            continue
        records = execute(planned, profile)
        out = write_results(experiment, spec, planned, records, results_root)
        from mr1cli.experiments.figures import make_figures
        from mr1cli.experiments.tables import write_tables

        written = write_tables(results_root, experiment) + make_figures(results_root, experiment)
        console.print(f"{experiment}: wrote {out} ({len(written)} tables and figures)")
        outputs.append(out)
    return outputs
