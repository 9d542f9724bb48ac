"""What every launcher shares: its options, its outcome, the launch record kept in each run
directory (launch/<tag>.json: where the unit runs, its log, its job id, its state), and the
LAUNCHERS registry (`--launcher local|slurm`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from mr1cli.core.registry import Registry
from mr1cli.experiments.units import Unit
from mr1cli.files import atomic_write_text


@dataclass(frozen=True)
class LaunchOptions:
    """`mr1 reproduce`'s dispatch options; `slurm` holds resource keys (see launch/slurm.py)."""

    jobs: int = 1
    gpus_per_run: int | None = None  # None: 1 where GPUs are visible, else 0
    distributed: str = "fsdp2"  # experiments/accelerate/<this>.yaml, see launch/accelerate_cmd.py
    detach: bool = False
    slurm: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """Which units finished, which failed (name → log) and which still run elsewhere (detached)."""

    failed: dict[str, Path] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)


class Launcher(Protocol):
    def where(self, units: list[Unit]) -> dict[str, str]:
        """unit name → where it will run (for the plan table)."""
        ...

    def dry_run(self, units: list[Unit], console: Console) -> None:
        """Print what would be started, with its resources."""
        ...

    def run(self, units: list[Unit], console: Console) -> Outcome:
        """Run every unit not done yet; return when all ended (or at once when detached)."""
        ...


LAUNCHERS: Registry[type] = Registry("launcher")  # filled by local.py and slurm.py: import it from plugins.py


def record_path(unit: Unit) -> Path:
    return unit.home / "launch" / f"{unit.tag}.json"


def read_record(unit: Unit) -> dict[str, Any]:
    path = record_path(unit)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_record(unit: Unit, **fields: Any) -> dict[str, Any]:
    """Update the unit's launch record (state, where, log, job id…) with a time stamp."""
    record = {**read_record(unit), **fields, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    record_path(unit).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record_path(unit), json.dumps(record, indent=1, sort_keys=True))
    return record


def log_of(unit: Unit) -> Path:
    """The unit's newest log: the one its launch record names, else launch/<tag>.log."""
    return Path(read_record(unit).get("log") or unit.log)


def last_step(unit: Unit) -> tuple[int | None, dict[str, Any]]:
    """The newest logged step of the unit's run and its metrics (None when nothing is logged)."""
    metrics = unit.home / "metrics.jsonl"
    if unit.config is None or not metrics.is_file():
        return None, {}
    lines = metrics.read_text().splitlines()
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        return row.get("step"), row
    return None, {}
