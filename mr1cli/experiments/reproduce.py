"""`mr1 reproduce`: plan an experiment's grid, train what is not done, evaluate, report.

Every training run lives in its own config-hashed run directory, so a finished run is reused by
any experiment that asks for the same config (exp2 and exp3 share their models), and a killed
reproduce continues where it stopped (runs resume from their checkpoints, finished evaluations are
kept). Outputs: results/<name>/records.jsonl, curves/, table.csv, table.md, figures/, and
results/summary.md (each claim of the paper beside ours, with its verdict).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mr1cli.core.errors import ConfigError, RunsFailed
from mr1cli.experiments.launch.base import LaunchOptions
from mr1cli.experiments.launch.devices import cpu_budget
from mr1cli.experiments.launch.plugins import LAUNCHERS
from mr1cli.experiments.plan_status import plan_work
from mr1cli.experiments.specs import PlannedRun, list_experiments, load_spec, plan
from mr1cli.experiments.units import (
    Unit,
    base_folder,
    evaluate_cached,
    evaluation_fields,
    grid_units,
    unit_done,
)
from mr1cli.files import atomic_write_text
from mr1cli.reporting.figures import write_report
from mr1cli.reporting.reports import experiments_with_results
from mr1cli.reporting.summary import write_summary
from mr1cli.training.run_dir import default_run_dir
from mr1cli.zoo.builds import resolve_model

logger = logging.getLogger(__name__)


def execute(planned: list[PlannedRun], profile: str) -> list[dict[str, Any]]:
    """Train and evaluate every planned run (reusing finished work); return the records."""
    from mr1cli.training.train import run_training  # torch: not for a dry run or a typo

    records = []
    total = sum(1 for run in planned if run.config is not None)
    done = 0
    for run in planned:
        if run.config is None:
            model, folder = base_folder(profile, run.eval_tasks[0])
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
            evaluate_cached(model, folder, profile, eval_task, run.train_task)
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
                    **evaluation_fields(folder, profile, eval_task, run.train_task),
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
    planned_names = {row["run"] for row in index}
    for stale in curves.glob("*.jsonl"):  # copies from runs no longer planned (a changed spec or profile)
        if stale.name != "index.jsonl" and stale.stem not in planned_names:
            stale.unlink()  # the run itself stays in its run directory
    rows = [{"experiment": name, **record} for record in records]
    atomic_write_text(out / "records.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    atomic_write_text(out / "spec.json", json.dumps(spec, indent=1))
    return out


def describe_plan(planned: list[PlannedRun], states: list[str]) -> list[tuple[str, ...]]:
    """One table row per planned run; the base model's rows say "untrained" and have no seed."""
    rows = []
    for run, state in zip(planned, states, strict=True):
        trained = run.config is not None
        rows.append(
            (
                run.grid,
                run.method,
                run.train_task or "(untrained)",
                json.dumps(run.setting) if run.setting else "",
                str(run.seed) if trained else "",
                "→ " + ", ".join(run.eval_tasks),
                state,
            )
        )
    return rows


def show_plan(
    console: Console,
    planned: dict[str, list[PlannedRun]],
    profile: str,
    results_root: Path,
    where: dict[str, str] | None,
) -> None:
    """A table per experiment (each run, what is done, where it runs), then the estimate of the
    time left: one line, from times measured on earlier runs (see plan_status.py)."""
    work = plan_work([run for runs in planned.values() for run in runs], profile, results_root)
    states = iter(work.states)
    for experiment, runs in planned.items():
        table = Table(title=f"{experiment} ({profile} profile)")
        columns = ("grid", "method", "train", "setting", "seed", "eval", "status")
        for column in (*columns, "where") if where is not None else columns:
            table.add_column(column)
        for run, row in zip(runs, describe_plan(runs, [next(states) for _ in runs]), strict=True):
            table.add_row(*row, *((where.get(unit_name(run), "—"),) if where is not None else ()))
        console.print(table)
    console.print(work.summary(), soft_wrap=True, highlight=False)


def unit_name(run: PlannedRun) -> str:
    """The grid unit that trains or evaluates `run` (see experiments/units.py)."""
    return run.name if run.config is not None else f"base/{run.eval_tasks[0]}"


def build_shared_models(units: list[Unit]) -> None:
    """Build the named models the runs start from (the tiny base) here, with every CPU thread, before
    the workers start; otherwise the first worker builds it on its share of the threads while the
    others wait for it."""
    import torch

    seen: set[str] = set()
    for unit in units:
        if unit.config is None or unit.config.model.name_or_path in seen or unit_done(unit):
            continue
        seen.add(unit.config.model.name_or_path)
        threads = torch.get_num_threads()
        torch.set_num_threads(cpu_budget())
        try:
            resolve_model(unit.config.model.name_or_path, unit.config)
        finally:
            torch.set_num_threads(threads)


def refuse_other_profiles(results_root: Path, names: list[str], profile: str) -> None:
    """ConfigError if a results folder holds another profile's records: they would be overwritten,
    and summary.md would mix the two profiles' experiments."""
    for experiment in experiments_with_results(results_root):
        records = results_root / experiment / "records.jsonl"
        with records.open(encoding="utf-8") as lines:
            first = json.loads(next(lines, "{}") or "{}")
        found = first.get("profile")
        if found and found != profile:
            action = "overwrite" if experiment in names else "sit beside"
            raise ConfigError(
                f"{records} holds the {found} profile's results, which the {profile} profile's would "
                f"{action}; give it its own folder with --results (e.g. --results results/{profile})"
            )


def reproduce(
    name: str,
    *,
    profile: str,
    seeds: int,
    dry_run: bool,
    results_root: Path = Path("results"),
    launcher: str = "local",
    options: LaunchOptions | None = None,
    engine: str = "",
) -> list[Path]:
    """Run one experiment (or all three); return the output folders. With `--jobs N` or another
    launcher, the units of every named experiment are dispatched first, then tables are written
    from the finished runs in plan order (so they equal an in-process run's, byte for byte)."""
    console = Console(stderr=True)
    options = options or LaunchOptions()
    names = list_experiments() if name == "all" else [name]
    if not dry_run:
        refuse_other_profiles(results_root, names, profile)
    plans = {experiment: load_spec(experiment) for experiment in names}
    planned = {experiment: plan(spec, profile, seeds, engine) for experiment, spec in plans.items()}
    chosen = LAUNCHERS.get(launcher)(options) if launcher != "local" or options.jobs > 1 else None
    units = grid_units([run for runs in planned.values() for run in runs], profile) if chosen else []
    show_plan(console, planned, profile, results_root, chosen.where(units) if chosen else None)
    if dry_run:
        if chosen:
            chosen.dry_run(units, console)
        return []
    failed: dict[str, Path] = {}
    if chosen:
        if launcher == "local":  # not on a SLURM submit host: there the first job builds it
            build_shared_models(units)
        outcome = chosen.run(units, console)
        if outcome.pending:
            console.print(
                f"{len(outcome.pending)} jobs submitted; run the same command again to collect them"
            )
            return []
        failed = outcome.failed
    outputs = []
    for experiment, spec in plans.items():
        if any(unit_name(run) in failed for run in planned[experiment]):
            console.print(f"{experiment}: no tables (some of its runs failed)")
            continue
        records = execute(planned[experiment], profile)
        out = write_results(experiment, spec, planned[experiment], records, results_root)
        written = write_report(results_root, experiment)
        console.print(f"{experiment}: wrote {out} ({len(written)} tables and figures)")
        outputs.append(out)
    summary = write_summary(results_root) if outputs else None
    if summary is not None:
        console.print(f"wrote {summary} (the paper's claims beside ours)")
    if failed:
        logs = "; ".join(f"{run} (log {log})" for run, log in failed.items())
        raise RunsFailed(f"{len(failed)} of {len(units)} runs failed: {logs}; rerun to retry them")
    return outputs
