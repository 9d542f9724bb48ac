"""A worker process: `python -m mr1cli.experiments.launch.worker JOB.json` runs one unit of the grid.

The job file names the unit (its resolved config, its eval tasks), the CPU threads and the GPUs per
run. With more than one GPU per run the worker re-executes itself under `accelerate launch` (the
machine rank from SLURM's environment on a multi-node allocation); every rank trains, rank 0
evaluates. Exit status: 0 done, 130/143 interrupted (a checkpoint was written), 1-3 failed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from mr1cli.core.errors import Mr1Error
from mr1cli.experiments.launch.accelerate_cmd import accelerate_config, slurm_machine, worker_command
from mr1cli.experiments.units import Unit, run_unit
from mr1cli.files import atomic_write_text
from mr1cli.training.progress import log_to_console


def write_job(unit: Unit, *, threads: int, gpus_per_run: int, distributed: str) -> Path:
    """The job file for `unit` in its home's launch/ folder."""
    path = unit.home / "launch" / f"{unit.tag}.job.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    job = {
        "unit": unit.to_json(),
        "threads": threads,
        "gpus_per_run": gpus_per_run,
        "distributed": distributed,
    }
    atomic_write_text(path, json.dumps(job, indent=1))
    return path


def _under_accelerate(job_file: Path, job: dict[str, Any], unit: Unit) -> None:
    nodes, rank, main_ip = slurm_machine(os.environ)
    cfg = accelerate_config(
        job["distributed"], job["gpus_per_run"], num_machines=nodes, machine_rank=rank, main_ip=main_ip
    )
    config_file = unit.home / "launch" / f"accelerate-{unit.tag}-node{rank}.yaml"
    atomic_write_text(config_file, json.dumps(cfg, indent=1))  # JSON is YAML
    command = worker_command(job_file, accelerate_file=config_file)
    os.execv(command[0], command)


def main(argv: list[str]) -> int:
    import torch  # here, not at the top: the parent imports write_job and must start without torch

    job_file = Path(argv[0])
    job = json.loads(job_file.read_text())
    unit = Unit.from_json(job["unit"])
    if job["gpus_per_run"] > 1 and "LOCAL_RANK" not in os.environ:
        _under_accelerate(job_file, job, unit)
    threads = int(os.environ.get("MR1_THREADS") or job["threads"] or 0)
    if threads:
        torch.set_num_threads(threads)
    console = Console(stderr=True)
    log_to_console(console)
    try:
        run_unit(unit, evaluate=os.environ.get("RANK", "0") == "0")
    except Mr1Error as error:
        console.print(f"{error.label}: {error}", markup=False, highlight=False, soft_wrap=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
