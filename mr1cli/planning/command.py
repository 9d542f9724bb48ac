"""`mr1 plan`: resolve the config, find the GPU description, build the plan and its report."""

from __future__ import annotations

import torch
from rich.console import Group

from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.planning.for_config import make_plan, resolve_gpu
from mr1cli.planning.report import plan_renderable


def detected_gpus() -> list[tuple[str, int]]:
    """(name, total memory in bytes) of every CUDA device torch sees."""
    if not torch.cuda.is_available():
        return []
    return [
        (torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory)
        for i in range(torch.cuda.device_count())
    ]


def plan_command(
    method: str, task: str, profile: str, gpu: str | None, gpus: int, fsdp: bool, overrides: list[str]
) -> Group:
    """The plan of `mr1 plan`'s arguments, ready to print."""
    cfg = load_config(method=method, task=task, profile=profile, overrides=overrides)
    kind, found = resolve_gpu(gpu, [] if gpu else detected_gpus())
    if gpus < 0:
        raise ConfigError(f"--gpus must be >= 0 (0 = the detected count), got {gpus}")
    count = gpus or found or 1
    plan = make_plan(cfg, kind, gpus=count, fsdp=fsdp)
    where = f"{count} × {kind.label}" + (", FSDP2" if fsdp else "")
    title = f"mr1 plan: {method} {task} ({profile} profile, {cfg.model.name_or_path}) on {where}"
    return plan_renderable(plan, title)
