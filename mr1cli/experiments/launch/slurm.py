"""`--launcher slurm`: one SLURM job per unit, submitted through submitit (`pip install mr1[slurm]`).

Each job's resources depend on its unit's kind (a training run gets the run's GPUs, an evaluation of
the base model one) and scale per GPU, from defaults, the profile's `launch.slurm` section and the
`--slurm KEY=VALUE` flags (launch/slurm_resources.py). A run on more than one GPU starts `accelerate launch` inside its allocation (launch/worker.py); with
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

from rich.console import Console

from mr1cli.config_loading import profile_content
from mr1cli.core.errors import ConfigError
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
from mr1cli.experiments.launch.slurm_resources import (
    job_parameters,
    resource_settings,
    sbatch_flags,
    training_gpus,
)
from mr1cli.experiments.launch.worker import write_job
from mr1cli.experiments.units import Unit, unit_done

ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING"}


def profile_slurm(profile: str) -> dict[str, Any]:
    """The profile's `launch: {slurm: {...}}` section ({} without one)."""
    return (profile_content(profile).get("launch") or {}).get("slurm") or {}


def unit_gpus(settings: dict[str, str], options: LaunchOptions, unit: Unit) -> int:
    """A training unit's GPUs; an evaluation unit's: one, or none when training runs on CPUs."""
    gpus = training_gpus(settings, options.gpus_per_run)
    return gpus if unit.config is not None else min(1, gpus)


def slurm_parameters(options: LaunchOptions, unit: Unit) -> dict[str, Any]:
    """submitit parameters of the job that runs `unit` (launch/slurm_resources.py).

    >>> from pathlib import Path
    >>> unit = Unit("base/counting", "tiny", Path("base"), ("counting",))
    >>> slurm_parameters(LaunchOptions(slurm={"cpus": "4", "sbatch": "qos:high"}), unit)["additional_parameters"]
    {'qos': 'high'}
    """
    settings = resource_settings(profile_slurm(unit.profile), options.slurm)
    gpus = unit_gpus(settings, options, unit)
    return {**job_parameters(settings, gpus, evaluation=unit.config is None), "job_name": f"mr1-{unit.name}"}


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

    def where(self, units: list[Unit]) -> dict[str, str]:
        return {unit.name: "slurm job" for unit in units if not unit_done(unit)}

    def dry_run(self, units: list[Unit], console: Console) -> None:
        rows = []
        for unit in units:
            if not unit_done(unit):
                params = {k: v for k, v in slurm_parameters(self.options, unit).items() if k != "job_name"}
                kind = "train + eval" if unit.config is not None else "eval"
                rows.append((unit.name, kind, sbatch_flags(params), str(unit.log)))
        columns = ("run", "kind", "sbatch parameters", "log")
        console.print(status_table("SLURM jobs to submit", columns, rows))

    def run(self, units: list[Unit], console: Console) -> Outcome:
        todo = [unit for unit in units if not unit_done(unit)]
        recorded = {unit.name: str(read_record(unit).get("job_id", "")) for unit in todo}
        queued = queue_states([job for job in recorded.values() if job])
        jobs: dict[str, str] = {}
        adopted: set[str] = set()
        for unit in todo:
            job_id = recorded[unit.name]
            if job_id and queued.get(job_id, ("",))[0] in ACTIVE:
                jobs[unit.name] = job_id  # still queued or running: wait for it, never twice
                adopted.add(unit.name)
            else:
                jobs[unit.name] = self._submit(unit, console, again=bool(job_id))
        if self.options.detach:
            return Outcome(pending=list(jobs))
        return self._wait(todo, jobs, console, adopted)

    def _submit(self, unit: Unit, console: Console, *, again: bool) -> str:
        if importlib.util.find_spec("submitit") is None:
            raise ConfigError("--launcher slurm needs submitit: pip install 'mr1[slurm]' (or submitit)")
        import submitit

        params = slurm_parameters(self.options, unit)
        gpus = int(params.get("gpus_per_node", 0))
        threads = max(
            1, int(params["cpus_per_task"]) // max(1, gpus)
        )  # the job's CPUs, shared by its processes
        job_file = write_job(unit, threads=threads, gpus_per_run=gpus, distributed=self.options.distributed)
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

    def _wait(self, units: list[Unit], jobs: dict[str, str], console: Console, adopted: set[str]) -> Outcome:
        """Wait for the jobs; one found in the queue from an earlier call (`adopted`) that ends
        unfinished is resubmitted once, as a rerun a moment later would have done: a job just
        cancelled still shows as COMPLETING for a few seconds."""
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
                    if not unit_done(unit) and name in adopted:
                        adopted.discard(name)
                        board.event(f"job {jobs[name]}: {name} ended unfinished ({state.lower()})")
                        jobs[name] = self._submit(unit, console, again=True)
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
