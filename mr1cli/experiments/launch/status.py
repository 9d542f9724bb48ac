"""`mr1 status`: every unit of an experiment's grid with its state (done, running, partial, failed,
not started), its newest step and metrics, where it runs (worker or SLURM job) and its log."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.table import Table

from mr1cli.experiments.launch.base import last_step, log_of, read_record
from mr1cli.experiments.launch.slurm import ACTIVE, queue_states
from mr1cli.experiments.specs import list_experiments, load_spec, plan
from mr1cli.experiments.units import Unit, grid_units, unit_done
from mr1cli.training.progress import metrics_text
from mr1cli.training.run_dir import RunDir

COLUMNS = ("run", "seed", "state", "step", "last metrics", "where", "log")
TABLE_COLUMNS = 5  # run … last metrics; each log goes on a line of its own below (copied whole)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running(record: dict[str, Any], queued: dict[str, tuple[str, str]]) -> bool:
    if record.get("job_id"):
        return queued.get(str(record["job_id"]), ("",))[0] in ACTIVE
    return record.get("state") == "running" and _alive(int(record.get("pid", 0)))


def unit_state(unit: Unit, record: dict[str, Any], queued: dict[str, tuple[str, str]]) -> str:
    if unit_done(unit):
        return "done"
    if record and _running(record, queued):
        return "running"
    if record.get("state") == "failed":
        return "failed"
    if unit.config is not None and RunDir(unit.home).has_progress():
        return "partial"
    return "not started"


def status_rows(name: str, *, profile: str, seeds: int, engine: str = "") -> list[tuple[str, ...]]:
    """One row per unit of the experiment (or of all of them), in plan order."""
    names = list_experiments() if name == "all" else [name]
    planned = [run for experiment in names for run in plan(load_spec(experiment), profile, seeds, engine)]
    units = grid_units(planned, profile)
    records = {unit.name: read_record(unit) for unit in units}
    queued = queue_states([str(r["job_id"]) for r in records.values() if r.get("job_id")])
    rows = []
    for unit in units:
        record = records[unit.name]
        step, metrics = last_step(unit)
        state = unit_state(unit, record, queued)
        where = record.get("where", "—") if state in ("running", "failed", "done") else "—"
        log = str(log_of(unit)) if record else "—"
        seed = str(unit.config.train.seed) if unit.config is not None else "—"
        shown_step = "—" if step is None else str(step)
        rows.append((unit.name, seed, state, shown_step, metrics_text(metrics), where, log))
    return rows


def print_status(console: Console, title: str, rows: list[tuple[str, ...]]) -> None:
    """The table (run names never broken across lines), then `run (where): log` per run that has a
    log, one line each and never wrapped, so that a name or a path can be copied whole."""
    table = Table(title=title)
    for column in COLUMNS[:TABLE_COLUMNS]:
        table.add_column(column, no_wrap=column != "last metrics", overflow="fold")
    for row in rows:
        table.add_row(*row[:TABLE_COLUMNS])
    console.print(table)
    for row in rows:
        run, where, log = row[0], row[5], row[6]
        if log != "—":
            place = f" ({where})" if where != "—" else ""
            console.print(f"{run}{place}: {log}", soft_wrap=True, markup=False, highlight=False)
