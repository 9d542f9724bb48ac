"""The sections of the GPU check (`scripts/gpu-check.sh`, driven by bench/gpu_check.py), in order.

Each section runs mr1 through its config and CLI, as a user would, so it checks whatever the recipe
does at the time, and returns its numbers; a failed assertion raises `CheckFailed` with them. With
`--cpu-smoke` every section runs the same control flow on CPU with the tiny model (the GPU-only
assertions, memory against the plan, become "control flow only").

- precision: one SFT step at lr 1e-6 (the paper's rate) with model.dtype=bfloat16 changes as many
  weights as with float32 (bf16 weights alone change ~1 %: the update rounds away);
- cpu-parity: a tiny GRPO-D run in float32 on the GPU samples the same completions as on the CPU;
- memory: peak `torch.cuda.max_memory_allocated` of paper-shaped GRPO-D against `mr1 plan`;
- sharded: FSDP2 on 2 GPUs against the cpu-parity run on 1 (skipped with fewer than 2 GPUs);
- rollout-speed: generation tokens/s of the paper-shaped run against the decode roofline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from mr1cli.bench.measure import MemoryMeter, decode_roofline
from mr1cli.bench.runner import bench_config, prepare_model
from mr1cli.config_loading import load_config
from mr1cli.core.registry import Registry
from mr1cli.experiments.launch.accelerate_cmd import accelerate_config
from mr1cli.planning.command import detected_gpus
from mr1cli.planning.for_config import make_plan, resolve_gpu
from mr1cli.planning.gpus import GIB, gpu_kind
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir
from mr1cli.zoo.builds import resolve_model

# Tolerances, each with where it comes from.
CHANGED_RATIO = 0.9  # bf16 compute must change ≥ 90 % of the weights float32 changes (bf16 weights: ~2 %)
LOSS_RTOL = 1e-3  # CPU 1 vs 2 processes agree to 1e-7 over 20 steps (tests/integration/test_sharded.py)
PLAN_RTOL = 0.25  # |plan / measured − 1|, as the CPU plan test (tests/integration/test_plan_measured.py)
TINY_GRPO = (  # the tiny GRPO-D run of the sharded CPU tests: non-chaotic at lr 3e-4
    "data.train=synthetic:counting-warmup-16",
    "data.train_limit=0",
    "data.probe_size=0",
    "train.prompts_per_step=4",
    "train.micro_batch=1",
    "rl.num_generations=4",
    "rl.max_completion_length=12",
    "train.learning_rate=3e-4",
    "reward.weights.format=0",
    "train.save_every=0",
    "model.dtype=float32",
)


class CheckFailed(Exception):
    def __init__(self, message: str, numbers: dict[str, Any]) -> None:
        super().__init__(message)
        self.numbers = numbers


def require(condition: bool, message: str, numbers: dict[str, Any]) -> dict[str, Any]:
    if not condition:
        raise CheckFailed(message, numbers)
    return numbers


@dataclass
class Context:
    device: torch.device
    work: Path
    cpu_smoke: bool
    shared: dict[str, Any] = field(default_factory=dict)  # what two sections share (runs, models)

    @property
    def grpo_steps(self) -> int:
        return 6 if self.cpu_smoke else 10

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]


Section = Callable[[Context], dict[str, Any]]
SECTIONS: Registry[Section] = Registry("gpu check section")


# ---------------------------------------------------------------- (a) precision


@SECTIONS.register("precision")
def precision(ctx: Context) -> dict[str, Any]:
    """One SFT step at lr 1e-6 changes as many weights with model.dtype=bfloat16 as with float32."""
    base = Path(resolve_model("tiny"))
    start = load_file(str(base / "model.safetensors"))
    changed = {}
    for dtype in ("float32", "bfloat16"):
        overrides = [
            f"model.name_or_path={base}",
            f"model.dtype={dtype}",
            "data.train=synthetic:counting-warmup-64",
            "data.train_limit=0",
            "data.probe_size=0",
            "train.learning_rate=1e-6",
            "train.lr_scheduler=constant",
            "train.warmup_ratio=0",
            "train.max_steps=1",
            "train.prompts_per_step=16",
            "train.micro_batch=16",
            "train.save_every=0",
        ]
        cfg = load_config(method="sft", task="counting", profile="tiny", overrides=overrides)
        final = run_training(cfg, output_dir=ctx.work / f"precision-{dtype}")
        after = load_file(str(final / "model.safetensors"))
        # against the start as the run stores it (a checkpoint saved in bf16 rounds every weight)
        moved = sum(int((after[k] != start[k].to(after[k].dtype)).sum()) for k in start)
        changed[dtype] = moved / sum(t.numel() for t in start.values())
    ratio = changed["bfloat16"] / max(changed["float32"], 1e-12)
    numbers = {"changed_float32": changed["float32"], "changed_bfloat16": changed["bfloat16"], "ratio": ratio}
    numbers["threshold"] = CHANGED_RATIO
    return require(
        ratio >= CHANGED_RATIO, f"bf16 compute changed {ratio:.1%} of what float32 changed", numbers
    )


# ---------------------------------------------------------------- (b) GPU against CPU


def answering_model(ctx: Context) -> str:
    """The tiny model after 30 SFT steps on counting answers: its GRPO rollouts earn reward."""
    overrides = [
        f"model.name_or_path={resolve_model('tiny')}",
        "data.train=synthetic:counting-warmup-64",
        "data.train_limit=0",
        "data.probe_size=0",
        "train.learning_rate=3e-3",
        "train.prompts_per_step=16",
        "train.micro_batch=8",
        "train.max_steps=30",
        "sft.eval_wording_frac=0",
        "model.dtype=float32",
    ]
    cfg = load_config(method="sft", task="counting", profile="tiny", overrides=overrides)
    return str(run_training(cfg, output_dir=ctx.work / "answering"))


def grpo_run(ctx: Context, name: str, *, gpus: int) -> list[dict[str, Any]]:
    """The tiny GRPO-D run as `mr1 train` in a subprocess: on the CPU (gpus=0), one GPU, or FSDP2."""
    model = ctx.once("answering", lambda: answering_model(ctx))
    out = ctx.work / name
    args = ["train", "--method", "grpo-d", "--task", "counting", "--output", str(out)]
    args += [f"model.name_or_path={model}", *TINY_GRPO, f"train.max_steps={ctx.grpo_steps}"]
    # float32 means float32 on the GPU too: no TF32 in cuBLAS or cuDNN (PyTorch lets cuDNN convolutions,
    # the vision patch embedding, use TF32 by default)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, range(gpus))), "NVIDIA_TF32_OVERRIDE": "0"}
    command = [sys.executable, "-m", "mr1cli", *args]
    if gpus > 1:  # FSDP2, as `mr1 reproduce --gpus-per-run 2` launches it (on CPU in the smoke)
        config = ctx.work / "fsdp2.yaml"
        config.write_text(json.dumps(accelerate_config("fsdp2", 2)))
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
        command += ["-m", "mr1cli", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise CheckFailed(f"{name}: mr1 train failed: {done.stderr[-1500:]}", {})
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in RunDir(out).read_metrics()]


def compare_runs(reference: list[dict], other: list[dict]) -> dict[str, Any]:
    """The first step where the two runs' completions (rewards, lengths) or losses part, if any."""
    numbers: dict[str, Any] = {"steps": len(reference), "first_divergence": None, "max_loss_rel": 0.0}
    for a, b in zip(reference, other, strict=True):
        sampled = all(abs(a[k] - b[k]) <= 1e-6 for k in ("reward/mean", "completion/length"))
        loss_rel = abs(a["loss/total"] - b["loss/total"]) / max(abs(a["loss/total"]), 1e-5)
        numbers["max_loss_rel"] = max(numbers["max_loss_rel"], loss_rel)
        if numbers["first_divergence"] is None and not (sampled and loss_rel <= LOSS_RTOL):
            numbers["first_divergence"] = a["step"]
    numbers["rewards"] = [round(row["reward/mean"], 4) for row in reference]
    numbers["loss_rtol"] = LOSS_RTOL
    return numbers


@SECTIONS.register("cpu-parity")
def cpu_parity(ctx: Context) -> dict[str, Any]:
    """Tiny GRPO-D in float32, GPU against CPU: the same completions every step, losses within 1e-3."""
    cpu = ctx.once("grpo-cpu", lambda: grpo_run(ctx, "grpo-cpu", gpus=0))
    gpu = ctx.once("grpo-gpu", lambda: grpo_run(ctx, "grpo-gpu", gpus=0 if ctx.cpu_smoke else 1))
    numbers = compare_runs(cpu, gpu)
    return require(numbers["first_divergence"] is None, "the GPU run left the CPU run's trajectory", numbers)


# ---------------------------------------------------------------- (c) memory, (d) sharded, (e) rollout speed


def paper_shaped_run(ctx: Context) -> dict[str, Any]:
    """3 GRPO-D steps of the paper's settings on the paper-shaped model (the smoke: 2 tiny steps), with
    the plan of the same config on this GPU."""
    profile, steps = ("tiny", 2) if ctx.cpu_smoke else ("paper-shaped", 3)
    overrides = ["rl.max_completion_length=8"] if ctx.cpu_smoke else []
    cfg = bench_config(profile, steps, overrides=["train.save_minutes=0", *overrides])
    model = prepare_model(cfg)
    meter = MemoryMeter(ctx.device)
    meter.begin()
    run_training(cfg, base_model=model, output_dir=ctx.work / "paper-shaped")
    peak = meter.end()["peak_bytes"]
    rows = [row for row in RunDir(ctx.work / "paper-shaped").read_metrics() if "perf/step_seconds" in row]
    on_gpu = ctx.device.type == "cuda"
    gpu = resolve_gpu(None, detected_gpus())[0] if on_gpu else gpu_kind("h100-80gb")
    plan = make_plan(bench_config(profile, steps, model=model, overrides=overrides), gpu, gpus=1)
    shape, w = plan.workload.shape, plan.workload
    roofline = decode_roofline(
        weight_bytes=shape.text_params() * w.dtype_bytes,
        bandwidth_bytes_per_s=gpu.bandwidth_gbps * 1e9,
        batch=w.sequences,
        kv_bytes_per_token=2 * shape.layers * shape.kv_dim * w.dtype_bytes,
        mean_context=w.prompt_tokens + w.completion_tokens / 2,
    )
    return {
        "profile": profile,
        "steps": len(rows),
        "peak_gib": round(peak / GIB, 3),
        "plan_peak_gib": round(plan.peak_bytes / GIB, 3),
        "memory_meter": "cuda max_memory_allocated" if on_gpu else "process RSS (cpu smoke)",
        "gen_tokens_per_s": round(max(row["perf/gen_tokens_per_s"] for row in rows[1:] or rows), 1),
        "roofline_tokens_per_s": round(roofline.tokens_per_s, 1),
        "step_seconds": round(sum(row["perf/step_seconds"] for row in rows) / len(rows), 3),
        "plan_step_seconds": round(plan.time.total_s, 3),
    }


@SECTIONS.register("memory")
def memory(ctx: Context) -> dict[str, Any]:
    """Peak memory of paper-shaped GRPO-D within 25 % of `mr1 plan` (the smoke: control flow only)."""
    run = ctx.once("paper-shaped", lambda: paper_shaped_run(ctx))
    numbers = {key: run[key] for key in ("profile", "steps", "peak_gib", "plan_peak_gib", "memory_meter")}
    numbers["plan_over_measured"] = round(run["plan_peak_gib"] / max(run["peak_gib"], 1e-9), 3)
    if ctx.cpu_smoke:  # a process's RSS is not what the plan counts
        return require(run["peak_gib"] > 0 and run["plan_peak_gib"] > 0, "no memory measured", numbers)
    numbers["tolerance"] = PLAN_RTOL
    ok = abs(numbers["plan_over_measured"] - 1) <= PLAN_RTOL
    return require(ok, f"mr1 plan is {numbers['plan_over_measured']}× the measured peak", numbers)


@SECTIONS.register("sharded")
def sharded(ctx: Context) -> dict[str, Any]:
    """FSDP2 on 2 GPUs against 1 GPU: the same tiny GRPO-D trajectory (the smoke: 2 CPU processes)."""
    visible = torch.cuda.device_count()
    if not ctx.cpu_smoke and visible < 2:
        return {"skipped": f"{visible} GPU visible; the sharded check needs 2"}
    one = ctx.once("grpo-gpu", lambda: grpo_run(ctx, "grpo-gpu", gpus=0 if ctx.cpu_smoke else 1))
    two = grpo_run(ctx, "grpo-fsdp2", gpus=2)
    numbers = compare_runs(one, two)
    return require(numbers["first_divergence"] is None, "FSDP2 left the one-GPU trajectory", numbers)


@SECTIONS.register("rollout-speed")
def rollout_speed(ctx: Context) -> dict[str, Any]:
    """Generation tokens/s of the paper-shaped run, above zero and below the decode roofline."""
    run = ctx.once("paper-shaped", lambda: paper_shaped_run(ctx))
    keys = ("profile", "gen_tokens_per_s", "roofline_tokens_per_s", "step_seconds", "plan_step_seconds")
    numbers = {key: run[key] for key in keys}
    numbers["roofline_fraction"] = float(f"{run['gen_tokens_per_s'] / run['roofline_tokens_per_s']:.3g}")
    ok = 0 < numbers["roofline_fraction"] <= 1
    return require(ok, "tokens/s outside (0, roofline]: the measurement is wrong", numbers)


# The TRL engine's sections, `trl` and `trl-vllm`, are in bench/trl_gpu_check.py (registered after these).
