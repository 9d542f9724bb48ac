"""`accelerate launch` for a run on more than one GPU: a config generated from the shipped
experiments/accelerate/*.yaml (FSDP2 by default, DDP on request), sized to the run's GPUs, and the
machine rank taken from SLURM's environment when the run spans several nodes.

Only configs that a test runs are shipped: FSDP2 and DDP run on CPU with 2 processes and gloo
(tests/integration/test_sharded.py, test_resilience.py). DeepSpeed ZeRO-3 was dropped: DeepSpeed
does not install here, so nothing could check that its generation, steps and checkpoints are right."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mr1cli.config import EXPERIMENTS_DIR
from mr1cli.core.registry import Registry

WORKER_MODULE = "mr1cli.experiments.launch.worker"

# --distributed NAME → the shipped accelerate config it starts from
DISTRIBUTED: Registry[str] = Registry("distributed mode")
DISTRIBUTED.add("fsdp2", "fsdp2.yaml")
DISTRIBUTED.add("ddp", "8gpu.yaml")


def accelerate_config(
    distributed: str, gpus_per_node: int, *, num_machines: int = 1, machine_rank: int = 0, main_ip: str = ""
) -> dict[str, Any]:
    """The shipped config for `distributed`, sized to `gpus_per_node` GPUs on `num_machines` nodes.

    >>> cfg = accelerate_config("ddp", 4)
    >>> cfg["distributed_type"], cfg["num_processes"], cfg["gpu_ids"]
    ('MULTI_GPU', 4, 'all')
    >>> cfg = accelerate_config("fsdp2", 8, num_machines=2, machine_rank=1, main_ip="node01")
    >>> cfg["num_processes"], cfg["machine_rank"], cfg["main_process_ip"], cfg["fsdp_config"]["fsdp_version"]
    (16, 1, 'node01', 2)
    """
    template = EXPERIMENTS_DIR / "accelerate" / DISTRIBUTED.get(distributed)
    cfg = yaml.safe_load(template.read_text(encoding="utf-8"))
    cfg.update(
        num_processes=gpus_per_node * num_machines, num_machines=num_machines, machine_rank=machine_rank
    )
    cfg["gpu_ids"] = "all"  # the worker's CUDA_VISIBLE_DEVICES slice
    if num_machines > 1:
        cfg.update(main_process_ip=main_ip, main_process_port=29500, rdzv_backend="static", same_network=True)
    else:  # several runs on one machine (--jobs 2 --gpus-per-run 4) must not all rendezvous on 29500
        cfg["main_process_port"] = free_local_port()
    return cfg


def free_local_port() -> int:
    """A TCP port no process on this machine listens on now.

    >>> 1024 <= free_local_port() <= 65535
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def slurm_machine(env: Mapping[str, str]) -> tuple[int, int, str]:
    """(number of nodes, this node's rank, the first node's name) from SLURM's environment.

    >>> slurm_machine({"SLURM_NNODES": "2", "SLURM_NODEID": "1", "MASTER_ADDR": "gpu-a1"})
    (2, 1, 'gpu-a1')
    >>> slurm_machine({})
    (1, 0, '')
    """
    nodes, rank = int(env.get("SLURM_NNODES", "1")), int(env.get("SLURM_NODEID", "0"))
    main_ip = env.get("MASTER_ADDR", "")
    if nodes > 1 and not main_ip:
        names = subprocess.run(
            ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        main_ip = names[0]
    return nodes, rank, main_ip


def worker_command(job_file: Path, *, accelerate_file: Path | None = None) -> list[str]:
    """The worker's command line: plain, or under `accelerate launch` with the given config.

    >>> worker_command(Path("j.json"))[1:]
    ['-m', 'mr1cli.experiments.launch.worker', 'j.json']
    >>> worker_command(Path("j.json"), accelerate_file=Path("a.yaml"))[1:6]
    ['-m', 'accelerate.commands.launch', '--config_file', 'a.yaml', '-m']
    """
    worker = ["-m", WORKER_MODULE, str(job_file)]
    if accelerate_file is None:
        return [sys.executable, *worker]
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(accelerate_file),
        *worker,
    ]
