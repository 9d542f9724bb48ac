"""`mr1 reproduce`: plan an experiment's grid, train what is not done, evaluate, report.

Every training run lives in its own config-hashed run directory, so a finished run is reused by
any experiment that asks for the same config (exp2 and exp3 share their models), and a killed
reproduce continues where it stopped (runs resume from their checkpoints, finished evaluations are
kept). Outputs: results/<name>/records.jsonl, curves/, table.csv, table.md, figures/.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mr1cli.config import RunConfig
from mr1cli.config_loading import load_config
from mr1cli.data.files import atomic_write_text
from mr1cli.experiments.evaluations import evaluate_checkpoint
from mr1cli.experiments.figures import make_figures
from mr1cli.experiments.specs import PlannedRun, list_experiments, load_spec, plan
from mr1cli.experiments.tables import write_tables
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir, default_run_dir
from mr1cli.zoo.builds import resolve_model

logger = logging.getLogger(__name__)


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
    cfg = _eval_config(profile, eval_task)
    out_dir = folder / "eval" / f"{eval_task}-test-{_eval_key(cfg)}"
    metrics = out_dir / "metrics.json"
    if not metrics.is_file():
        evaluate_checkpoint(cfg, model, split="test", output=out_dir)
    return json.loads(metrics.read_text())


def _base_folder(profile: str) -> tuple[str, Path]:
    """The profile's base model and where its evaluations are kept (keyed by the resolved model)."""
    cfg = _eval_config(profile, "counting")
    resolved = resolve_model(cfg.model.name_or_path, cfg)
    key = hashlib.sha256(
        str(Path(resolved).resolve() if Path(resolved).exists() else resolved).encode()
    ).hexdigest()[:10]
    return resolved, default_run_dir(cfg).parent / f"base-{key}"


def execute(planned: list[PlannedRun], profile: str) -> list[dict[str, Any]]:
    """Train and evaluate every planned run (reusing finished work); return the records."""
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
            base_model = resolve_model(run.config.model.name_or_path, run.config)
            final = run_training(run.config, base_model=base_model, resume=True)
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
    console = Console(stderr=True)
    names = list_experiments() if name == "all" else [name]
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
        written = write_tables(results_root, experiment, spec["table"]) + make_figures(
            results_root, experiment
        )
        console.print(f"{experiment}: wrote {out} ({len(written)} tables and figures)")
        outputs.append(out)
    return outputs
