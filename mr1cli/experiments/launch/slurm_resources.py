"""What each SLURM job asks for, by the kind of unit it runs.

A training unit gets the run's GPUs (`--gpus-per-run`, else the profile's `launch.slurm.gpus`); an
evaluation of the base model gets one GPU (mr1 evaluates in one process on one device, and one GPU
holds every model `mr1 plan` knows for inference), or none when the runs train on CPUs. CPUs and
memory scale with the job's GPUs; training and evaluation have their own time limits. Every value
comes from DEFAULTS, then the profile's `launch: {slurm: {...}}`, then `--slurm KEY=VALUE`; `cpus` and
`mem` set a fixed amount for every job instead of the per-GPU one.
"""

from __future__ import annotations

import re
from typing import Any

from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import did_you_mean

# --slurm KEY=VALUE and the profile's launch.slurm keys → what they set
KEYS = {
    "gpus": "GPUs of a training job (per node) when --gpus-per-run is not given",
    "cpus_per_gpu": "CPUs per GPU of a job",
    "mem_per_gpu": "host memory per GPU of a job (e.g. 64G)",
    "cpus": "CPUs of every job (instead of cpus_per_gpu; a CPU-only job gets 1 without it)",
    "mem": "host memory of every job (instead of mem_per_gpu; a CPU-only job asks none without it)",
    "time": "time limit of a training job",
    "eval_time": "time limit of an evaluation job",
    "partition": "partition",
    "account": "account",
    "nodes": "nodes of a training job (one task per node)",
    "sbatch": "extra sbatch options: sbatch=qos:high,constraint:a100",
}
# A cluster accepts these on an 8-GPU node of 64-128 cores and 0.5-2 TB: 8 CPUs and 64 GB per GPU.
DEFAULTS = {"cpus_per_gpu": "8", "mem_per_gpu": "64G", "time": "24:00:00", "eval_time": "4:00:00"}
_PASSED = {"partition": "partition", "account": "account"}  # taken as they are


def resource_settings(profile_slurm: dict[str, Any], flags: dict[str, str]) -> dict[str, str]:
    """DEFAULTS, then the profile's launch.slurm, then the --slurm flags; unknown keys refused.

    >>> resource_settings({"time": "8:00:00"}, {"cpus_per_gpu": "10"})["cpus_per_gpu"]
    '10'
    """
    chosen = {**DEFAULTS, **{k: str(v) for k, v in (profile_slurm or {}).items()}, **flags}
    for key in chosen:
        if key not in KEYS:
            raise ConfigError(f"unknown --slurm key '{key}'{did_you_mean(key, list(KEYS))}")
    return chosen


def training_gpus(settings: dict[str, str], gpus_per_run: int | None) -> int:
    """GPUs per training job: --gpus-per-run, else the profile's `gpus`, else 0 (CPUs).

    >>> training_gpus({"gpus": "8"}, None), training_gpus({"gpus": "8"}, 2), training_gpus({}, None)
    (8, 2, 0)
    """
    if gpus_per_run is not None:
        return gpus_per_run
    return _count(settings.get("gpus", "0"), "gpus")


def job_parameters(settings: dict[str, str], gpus: int, *, evaluation: bool) -> dict[str, Any]:
    """submitit parameters of one job with `gpus` GPUs per node.

    >>> p = job_parameters(DEFAULTS, 8, evaluation=False)
    >>> p["gpus_per_node"], p["cpus_per_task"], p["mem"], p["time"]
    (8, 64, '512G', '24:00:00')
    >>> p = job_parameters(DEFAULTS, 1, evaluation=True)
    >>> p["gpus_per_node"], p["cpus_per_task"], p["mem"], p["time"]
    (1, 8, '64G', '4:00:00')
    >>> sorted(job_parameters(DEFAULTS, 0, evaluation=False))
    ['cpus_per_task', 'ntasks_per_node', 'time']
    """
    params: dict[str, Any] = {"ntasks_per_node": 1}
    if gpus:
        params["gpus_per_node"] = gpus
    per_gpu = _count(settings["cpus_per_gpu"], "cpus_per_gpu")
    params["cpus_per_task"] = (
        _count(settings["cpus"], "cpus") if "cpus" in settings else max(1, per_gpu * gpus)
    )
    if "mem" in settings:
        params["mem"] = settings["mem"]
    elif gpus:
        params["mem"] = scale_memory(settings["mem_per_gpu"], gpus)
    params["time"] = settings["eval_time" if evaluation else "time"]
    if "nodes" in settings and not evaluation:
        params["nodes"] = _count(settings["nodes"], "nodes")
    params.update({_PASSED[k]: v for k, v in settings.items() if k in _PASSED})
    if settings.get("sbatch"):
        pairs = [item.split(":", 1) for item in settings["sbatch"].split(",") if item]
        params["additional_parameters"] = {name: text for name, text in pairs}
    return params


def scale_memory(per_gpu: str, gpus: int) -> str:
    """A SLURM memory amount times the GPU count.

    >>> scale_memory("64G", 8), scale_memory("80000M", 2)
    ('512G', '160000M')
    """
    match = re.fullmatch(r"(\d+)([KMGT]?)", per_gpu.strip().upper())
    if not match:
        raise ConfigError(f"--slurm mem_per_gpu={per_gpu}: expected a number with K, M, G or T (e.g. 64G)")
    return f"{int(match.group(1)) * gpus}{match.group(2)}"


def sbatch_flags(params: dict[str, Any]) -> str:
    """The sbatch options the parameters become (what --dry-run shows).

    >>> sbatch_flags({"gpus_per_node": 2, "cpus_per_task": 8, "additional_parameters": {"qos": "high"}})
    '--gpus-per-node=2 --cpus-per-task=8 --qos=high'
    """
    flat = {k: v for k, v in params.items() if k != "additional_parameters" and v not in (0, None)}
    flat.update(params.get("additional_parameters") or {})
    return " ".join(f"--{key.replace('_', '-')}={value}" for key, value in flat.items())


def _count(value: str, key: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"--slurm {key}={value}: expected a whole number")
    return int(value)
