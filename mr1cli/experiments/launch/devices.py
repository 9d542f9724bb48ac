"""Worker slots on one machine: which GPUs (CUDA_VISIBLE_DEVICES) and how many CPU threads each
worker gets, so that N workers share the machine without oversubscribing it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mr1cli.core.errors import ConfigError


@dataclass(frozen=True)
class Slot:
    """One worker: its number (1-based), its GPUs (empty on CPU) and its CPU threads."""

    index: int
    gpus: tuple[str, ...]
    threads: int

    @property
    def device(self) -> str:
        """
        >>> Slot(1, ("2", "3"), 8).device
        'cuda 2,3'
        >>> Slot(2, (), 1).device
        'cpu'
        """
        return f"cuda {','.join(self.gpus)}" if self.gpus else "cpu"

    def env(self) -> dict[str, str]:
        """The environment a worker process starts with (threads fixed before torch is imported).

        >>> Slot(1, ("0", "1"), 4).env()["CUDA_VISIBLE_DEVICES"]
        '0,1'
        >>> Slot(2, (), 1).env()["OMP_NUM_THREADS"], Slot(2, (), 1).env()["OMP_WAIT_POLICY"]
        ('1', 'PASSIVE')
        """
        threads = str(self.threads)
        return {
            "CUDA_VISIBLE_DEVICES": ",".join(self.gpus),
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "MR1_THREADS": threads,
            # Idle OpenMP threads sleep instead of spinning: spinning threads made 2-thread runs 3–5×
            # slower on a loaded 2-core machine (measured on the test suite's toy runs).
            "OMP_WAIT_POLICY": "PASSIVE",
        }


def cpu_budget() -> int:
    """The threads this process may use: $OMP_NUM_THREADS when set, else the CPUs it may run on."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (none on a CPU machine)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        return [gpu for gpu in value.split(",") if gpu.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover - torch is a dependency
        return []


def make_slots(jobs: int, gpus_per_run: int, gpus: list[str], threads: int) -> list[Slot]:
    """`jobs` workers: each a disjoint slice of `gpus_per_run` GPUs (when there are GPUs) and an
    equal share of `threads` (at least one).

    >>> make_slots(2, 0, [], 2)
    [Slot(index=1, gpus=(), threads=1), Slot(index=2, gpus=(), threads=1)]
    >>> [s.gpus for s in make_slots(4, 2, [str(i) for i in range(8)], 32)]
    [('0', '1'), ('2', '3'), ('4', '5'), ('6', '7')]
    >>> make_slots(3, 0, [], 8)[0].threads
    2
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if gpus_per_run < 0:
        raise ConfigError(f"--gpus-per-run must be >= 0, got {gpus_per_run}")
    if gpus_per_run and jobs * gpus_per_run > len(gpus):
        raise ConfigError(
            f"--jobs {jobs} × --gpus-per-run {gpus_per_run} needs {jobs * gpus_per_run} GPUs; "
            f"{len(gpus)} visible ({','.join(gpus) or 'none'})"
        )
    share = max(1, threads // jobs)
    return [Slot(i + 1, tuple(gpus[i * gpus_per_run : (i + 1) * gpus_per_run]), share) for i in range(jobs)]


def default_jobs(gpus_per_run: int, gpus: list[str], threads: int) -> int:
    """As many workers as the machine holds: one per GPU slice, or one per CPU thread on CPU.

    >>> default_jobs(2, [str(i) for i in range(8)], 64), default_jobs(0, [], 2)
    (4, 2)
    """
    return max(1, len(gpus) // gpus_per_run) if gpus_per_run else max(1, threads)
