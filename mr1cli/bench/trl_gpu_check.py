"""The TRL engine's section of the GPU check: `train.engine=trl` on the paper-shaped model (Qwen2-VL-2B's
architecture, random weights, bf16, G = 8, 512-token completions, gradient checkpointing), once with the
policy sampling its own rollouts (`rl.rollout_engine=hf`) and once with vLLM colocated on the same GPU
(`rl.rollout_engine=vllm`): step time, generated tokens/s, peak GPU memory and the reward after N steps.

Two sections of the check, `trl` and `trl-vllm`, after the five of bench/gpu_sections.py; a case
that cannot run there (trl or vllm not installed, no CUDA for vLLM) is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from mr1cli.bench.gpu_sections import SECTIONS, Context, require
from mr1cli.bench.measure import MemoryMeter
from mr1cli.bench.runner import bench_config, prepare_model
from mr1cli.planning.gpus import GIB
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir

CASES = {"hf": [], "vllm": ["rl.rollout_engine=vllm"]}
STEPS = 3  # on the GPU: the first warms up (kernels, vLLM's weight sync), two are timed


def _unavailable(case: str, device: torch.device) -> str:
    """Why `case` cannot run here ("" when it can)."""
    if importlib.util.find_spec("trl") is None:
        return "trl is not installed (pip install -e '.[trl]')"
    if case == "vllm" and (device.type != "cuda" or importlib.util.find_spec("vllm") is None):
        return "vLLM needs a CUDA GPU and the vllm extra (pip install -e '.[vllm]')"
    return ""


def trl_case(
    profile: str, steps: int, overrides: list[str], device: torch.device, work: Path, model: str | None = None
) -> dict[str, Any]:
    """`steps` TRL-engine GRPO steps at a fixed completion length; the per-step figures of metrics.jsonl."""
    fixed = ["train.engine=trl", "train.save_minutes=0", *overrides]
    cfg = bench_config(profile, steps, model=model, overrides=fixed)
    meter = MemoryMeter(device)
    meter.begin()
    run_dir = work / ("-".join(o.split("=")[-1] for o in overrides) or "hf")
    run_training(cfg, base_model=prepare_model(cfg), output_dir=run_dir)
    memory = meter.end()
    rows = [row for row in RunDir(run_dir).read_metrics() if "perf/step_seconds" in row]
    timed = rows[1:] or rows  # the first step warms up (kernels, vLLM's weight sync)
    return {
        "overrides": overrides,
        "steps": len(rows),
        "step_seconds": round(sum(r["perf/step_seconds"] for r in timed) / len(timed), 3),
        "gen_tokens_per_s": round(max(r["perf/gen_tokens_per_s"] for r in timed), 1),
        "tokens_per_step": rows[-1]["completion/tokens"],
        "peak_gib": round(memory["peak_bytes"] / GIB, 3),
        "reward_last_step": rows[-1]["reward/mean"],
        "memory_meter": "cuda max_memory_allocated" if device.type == "cuda" else "process RSS (cpu smoke)",
    }


def trl_section(ctx: Context, case: str) -> dict[str, Any]:
    """`case`'s rollouts under the TRL engine; skipped, with the reason, where it cannot run."""
    reason = _unavailable(case, ctx.device)
    if reason:
        return {"skipped": reason}
    profile, steps = ("tiny", 2) if ctx.cpu_smoke else ("paper-shaped", STEPS)
    small = ["rl.max_completion_length=8"] if ctx.cpu_smoke else []
    model = "tiny" if ctx.cpu_smoke else None  # the smoke: the untrained tiny model the other sections build
    numbers = trl_case(profile, steps, [*small, *CASES[case]], ctx.device, ctx.work / f"trl-{case}", model)
    ok = numbers["steps"] == steps and numbers["gen_tokens_per_s"] > 0 and numbers["peak_gib"] > 0
    return require(ok, f"the TRL engine ran {numbers['steps']} of {steps} steps", numbers)


@SECTIONS.register("trl")
def trl_hf(ctx: Context) -> dict[str, Any]:
    """`train.engine=trl`, the policy sampling its own rollouts."""
    return trl_section(ctx, "hf")


@SECTIONS.register("trl-vllm")
def trl_vllm(ctx: Context) -> dict[str, Any]:
    """`train.engine=trl` with vLLM colocated on the same GPU (`rl.rollout_engine=vllm`)."""
    return trl_section(ctx, "vllm")
