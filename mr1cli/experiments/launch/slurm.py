"""`--launcher slurm`: one SLURM job per unit, submitted through submitit (`pip install mr1[slurm]`).

Resources come from the profile's `launch.slurm` section, then `--slurm KEY=VALUE` flags (KEYS).
A run on more than one GPU starts `accelerate launch` inside its allocation (launch/worker.py); with
`nodes=2` each node runs one task and takes its machine rank from SLURM_NODEID. Job ids and logs
are recorded in each run directory (launch/<tag>.json), so a later `mr1 reproduce` collects finished
jobs, waits for running ones and resubmits failed, cancelled or pre-empted ones (they resume from
their newest checkpoint). The queue is read with `squeue`, so no accounting database is needed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from mr1cli.config_loading import profile_path
from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import did_you_mean
from mr1cli.experiments.launch.accelerate_cmd import worker_command
from mr1cli.experiments.launch.base import (
    LAUNCHERS,
    LaunchOptions,
    Outcome,
    last_step,
    log_of,
    read_record,
    write_record,
)
from mr1cli.experiments.launch.display import Board, status_table
from mr1cli.experiments.launch.worker import write_job
from mr1cli.experiments.units import Unit, unit_done

# --slurm KEY=VALUE → submitit's SlurmExecutor parameter
KEYS = {
    "cpus": "cpus_per_task",
    "mem": "mem",
    "time": "time",
    "partition": "partition",
    "account": "account",
    "nodes": "nodes",
    "sbatch": "additional_parameters",  # extra sbatch options: sbatch=qos:high,constraint:a100
}
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING"}


def slurm_parameters(options: LaunchOptions, profile: str, gpus_per_run: int) -> dict[str, Any]:
    """submitit parameters: the profile's `launch.slurm`, then the --slurm flags.

    >>> slurm_parameters(LaunchOptions(slurm={"cpus": "4", "sbatch": "qos:high"}), "tiny", 2)["additional_parameters"]
    {'qos': 'high'}
    """
    launch = (yaml.safe_load(profile_path(profile).read_text(encoding="utf-8")) or {}).get("launch") or {}
    chosen = {**{k: str(v) for k, v in (launch.get("slurm") or {}).items()}, **options.slurm}
    params: dict[str, Any] = {"ntasks_per_node": 1, "cpus_per_task": 1}
    if gpus_per_run:
        params["gpus_per_node"] = gpus_per_run
    for key, value in chosen.items():
        if key not in KEYS:
            raise ConfigError(f"unknown --slurm key '{key}'{did_you_mean(key, list(KEYS))}")
        if key == "sbatch":
            pairs = [item.split(":", 1) for item in value.split(",") if item]
            params[KEYS[key]] = {name: text for name, text in pairs}
        else:
            params[KEYS[key]] = int(value) if value.isdigit() and key in ("cpus", "nodes") else value
    return params


def sbatch_flags(params: dict[str, Any]) -> str:
    """The sbatch options the parameters become (what --dry-run shows).

    >>> sbatch_flags({"gpus_per_node": 2, "cpus_per_task": 8, "additional_parameters": {"qos": "high"}})
    '--gpus-per-node=2 --cpus-per-task=8 --qos=high'
    """
    flat = {k: v for k, v in params.items() if k != "additional_parameters" and v not in (0, None)}
    flat.update(params.get("additional_parameters") or {})
    return " ".join(f"--{key.replace('_', '-')}={value}" for key, value in flat.items())


def queue_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id → (state, node list) for the jobs squeue still knows."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T %N"], capture_output=True, text=True
        ).stdout
    except FileNotFoundError:  # no SLURM client here: nothing is known to be queued
        return {}
    return {
        parts[0]: (parts[1], parts[2] if len(parts) > 2 else "")
        for parts in map(str.split, out.splitlines())
        if len(parts) >= 2
    }


@LAUNCHERS.register("slurm")
class SlurmLauncher:
    def __init__(self, options: LaunchOptions) -> None:
        self.options = options
        self.gpus_per_run = options.gpus_per_run or 0

    def _params(self, unit: Unit) -> dict[str, Any]:
        return {
            **slurm_parameters(self.options, unit.profile, self.gpus_per_run),
            "job_name": f"mr1-{unit.name}",
        }

    def where(self, units: list[Unit]) -> dict[str, str]:
        return {unit.name: "slurm job" for unit in units if not unit_done(unit)}

    def dry_run(self, units: list[Unit], console: Console) -> None:
        rows = [(u.name, sbatch_flags(self._params(u)), str(u.log)) for u in units if not unit_done(u)]
        console.print(status_table("SLURM jobs to submit", ("run", "sbatch parameters", "log"), rows))

    def run(self, units: list[Unit], console: Console) -> Outcome:
        todo = [unit for unit in units if not unit_done(unit)]
        recorded = {unit.name: str(read_record(unit).get("job_id", "")) for unit in todo}
        queued = queue_states([job for job in recorded.values() if job])
        jobs: dict[str, str] = {}
        for unit in todo:
            job_id = recorded[unit.name]
            if job_id and queued.get(job_id, ("",))[0] in ACTIVE:
                jobs[unit.name] = job_id  # still queued or running: wait for it, never twice
            else:
                jobs[unit.name] = self._submit(unit, console, again=bool(job_id))
        if self.options.detach:
            return Outcome(pending=list(jobs))
        return self._wait(todo, jobs, console)

    def _submit(self, unit: Unit, console: Console, *, again: bool) -> str:
        if importlib.util.find_spec("submitit") is None:
            raise ConfigError("--launcher slurm needs submitit: pip install 'mr1[slurm]' (or submitit)")
        import submitit

        params = self._params(unit)
        threads = int(params["cpus_per_task"])  # the job's CPUs, all of them for torch
        job_file = write_job(
            unit, threads=threads, gpus_per_run=self.gpus_per_run, distributed=self.options.distributed
        )
        executor = submitit.SlurmExecutor(folder=unit.home / "launch" / "slurm", max_num_timeout=0)
        executor.update_parameters(**params, stderr_to_stdout=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MR1_THREADS": str(threads)}
        command = submitit.helpers.CommandFunction(worker_command(job_file), cwd=os.getcwd(), env=env)
        job = executor.submit(command)
        log = Path(job.paths.stdout)
        write_record(
            unit,
            launcher="slurm",
            job_id=str(job.job_id),
            log=str(log),
            where=f"slurm job {job.job_id}",
            state="submitted",
        )
        console.print(
            f"{'re' if again else ''}submitted {unit.name}: job {job.job_id} (log {log})",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
        return str(job.job_id)

    def _wait(self, units: list[Unit], jobs: dict[str, str], console: Console) -> Outcome:
        outcome, waiting = Outcome(), {unit.name: unit for unit in units}
        columns = ("job", "run", "state", "node", "step", "log")
        with Board(console, f"{len(jobs)} SLURM jobs", columns) as board:
            while waiting:
                states = queue_states([jobs[name] for name in waiting])
                rows = []
                for name, unit in list(waiting.items()):
                    state, node = states.get(jobs[name], ("GONE", ""))
                    if state in ACTIVE:
                        write_record(
                            unit, state=state.lower(), where=f"slurm job {jobs[name]} on {node or '?'}"
                        )
                        step, _ = last_step(unit)
                        rows.append(
                            (
                                jobs[name],
                                name,
                                state,
                                node,
                                "—" if step is None else str(step),
                                str(log_of(unit)),
                            )
                        )
                        continue
                    del waiting[name]
                    if unit_done(unit):
                        write_record(unit, state="done")
                        board.event(f"job {jobs[name]}: {name} done")
                    else:
                        write_record(unit, state="failed")
                        outcome.failed[name] = log_of(unit)
                        board.event(
                            f"job {jobs[name]}: {name} ended unfinished ({state.lower()}); log {log_of(unit)}"
                        )
                board.show(rows)
                if waiting:
                    time.sleep(2)
        return outcome
