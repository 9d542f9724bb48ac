"""The options of `mr1 reproduce` that say where the grid runs, and `mr1 status` (kept out of cli.py,
which holds one thin function per command)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mr1cli.core.errors import ConfigError

Jobs = Annotated[
    int, typer.Option(help="worker processes on this machine (0: one per CPU thread, or per GPU slice)")
]
GpusPerRun = Annotated[
    int | None,
    typer.Option(
        help="GPUs per training run: each worker's CUDA_VISIBLE_DEVICES slice, or each SLURM training "
        "job's; > 1 starts `accelerate launch` (--distributed) (default: 1 where GPUs are visible, else 0; "
        "slurm: the profile's launch.slurm.gpus)",
        show_default=False,
    ),
]
Distributed = Annotated[
    str,
    typer.Option(
        help="multi-GPU runs: fsdp2 (weights, gradients, optimizer state sharded: the least memory) or ddp "
        "(a whole copy per GPU: faster where it fits; `mr1 plan --gpus K [--fsdp]` says which fits)"
    ),
]
Launcher = Annotated[
    str, typer.Option(help="local (worker processes here) or slurm (one job per run, submitit)")
]
Slurm = Annotated[
    list[str] | None,
    typer.Option(
        help="SLURM resources KEY=VALUE (over the profile's launch.slurm): gpus, cpus_per_gpu (8), "
        "mem_per_gpu (64G), time (24:00:00, training), eval_time (4:00:00), cpus, mem, partition, account, "
        "nodes, sbatch=qos:high,constraint:a100",
        show_default=False,
    ),
]
Detach = Annotated[bool, typer.Option(help="slurm: submit and return; rerun the command to collect")]
Engine = Annotated[
    str,
    typer.Option(
        help="training engine of the grid's GRPO / GRPO-D runs: mr1 or trl (train.engine; SFT always runs on "
        "mr1's; empty: each config's own)"
    ),
]


def launch_options(
    jobs: int, gpus_per_run: int | None, distributed: str, detach: bool, slurm: list[str] | None
):
    """The LaunchOptions the flags ask for (`--jobs 0`: as many workers as the machine holds)."""
    from mr1cli.experiments.launch.base import LaunchOptions
    from mr1cli.experiments.launch.devices import cpu_budget, default_jobs, visible_gpus

    if jobs < 0:
        raise ConfigError(f"--jobs must be >= 0, got {jobs}")
    pairs = [item.partition("=") for item in slurm or []]
    if any(not sep for _, sep, _ in pairs):
        raise ConfigError(f"--slurm takes KEY=VALUE, got {[item for item in slurm or [] if '=' not in item]}")
    if jobs == 0:
        gpus = visible_gpus()
        jobs = default_jobs(gpus_per_run if gpus_per_run is not None else int(bool(gpus)), gpus, cpu_budget())
    return LaunchOptions(jobs, gpus_per_run, distributed, detach, {k: v for k, _, v in pairs})


def status(
    experiment: Annotated[
        str, typer.Argument(help="exp1-format-reward, exp2-cross-task, exp3-same-task or all")
    ],
    profile: Annotated[str, typer.Option(help="the profile the grid was reproduced with")] = "tiny",
    seeds: Annotated[int, typer.Option(help="seeds per configuration (0: the profile's)")] = 0,
    engine: Engine = "",
) -> None:
    """Every run of an experiment: done, running, partial, failed or not started, with its step,
    last metrics, where it runs (worker or SLURM job) and its log."""
    from mr1cli.experiments.launch.status import print_status, status_rows

    rows = status_rows(experiment, profile=profile, seeds=seeds, engine=engine)
    print_status(Console(), f"{experiment} ({profile} profile)", rows)
