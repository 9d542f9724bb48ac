"""The prepared GPU check (`scripts/gpu-check.sh`): one report of what only a GPU can tell.

On one GPU, with the paper-shaped model (Qwen2-VL-2B's architecture, random weights, bf16):
1. GRPO-D, 3 steps, G = 8, 512-token completions, gradient checkpointing, on sdpa and on
   flash-attention 2 when `flash_attn` imports: peak `torch.cuda.max_memory_allocated` against the
   `mr1 plan` estimate, and generation tokens/s against the decode roofline;
2. the same with LoRA: peak memory against full fine-tuning (and against its plan);
3. `mr1 bench grpo --profile paper-shaped` (mr1 against TRL's GRPOTrainer).
`--cpu-smoke` runs the same control flow with the tiny model on CPU in about a minute (peak = RSS).
Writes `<out>/gpu-check.json` and `<out>/gpu-check.md`.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

from mr1cli.bench.measure import MemoryMeter, decode_roofline
from mr1cli.bench.runner import bench_config, bench_grpo, prepare_model
from mr1cli.core.errors import ConfigError
from mr1cli.planning.command import detected_gpus
from mr1cli.planning.for_config import make_plan, resolve_gpu
from mr1cli.planning.gpus import GIB, gpu_kind
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir


def attention_kinds(device: torch.device) -> list[str]:
    flash = device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None
    return ["sdpa", "flash_attention_2"] if flash else ["sdpa"]


def run_case(
    profile: str, steps: int, overrides: list[str], device: torch.device, work: Path
) -> dict[str, Any]:
    """Train `steps` GRPO-D steps; peak memory, generation speed, and the plan for the same config."""
    cfg = bench_config(profile, steps, overrides=["train.save_minutes=0", *overrides])
    model_path = prepare_model(cfg)
    meter = MemoryMeter(device)
    meter.begin()
    run_dir = work / "-".join(o.split("=")[-1] for o in overrides)
    run_training(cfg, base_model=model_path, output_dir=run_dir)
    memory = meter.end()
    # the optimizer steps' rows (a probe or evaluation row has no perf/ figures)
    rows = [row for row in RunDir(run_dir).read_metrics() if "perf/step_seconds" in row]
    planned_cfg = bench_config(profile, steps, model=model_path, overrides=overrides)
    gpu, _ = resolve_gpu(None, detected_gpus()) if device.type == "cuda" else (gpu_kind("h100-80gb"), 0)
    plan = make_plan(planned_cfg, gpu, gpus=1, zero=0)
    shape, w = plan.workload.shape, plan.workload
    roofline = decode_roofline(
        weight_bytes=shape.text_params() * w.dtype_bytes,
        bandwidth_bytes_per_s=gpu.bandwidth_gbps * 1e9,
        batch=w.sequences,
        kv_bytes_per_token=2 * shape.layers * shape.kv_dim * w.dtype_bytes,
        mean_context=w.prompt_tokens + w.completion_tokens / 2,
    )
    measured_tps = max(row["perf/gen_tokens_per_s"] for row in rows[1:] or rows)
    return {
        "overrides": overrides,
        "steps": len(rows),
        "peak_gib": round(memory["peak_bytes"] / GIB, 3),
        "plan_peak_gib": round(plan.peak_bytes / GIB, 3),
        "plan_over_measured": round(plan.peak_bytes / max(memory["peak_bytes"], 1), 3),
        "gen_tokens_per_s": round(measured_tps, 1),
        "roofline_tokens_per_s": round(roofline.tokens_per_s, 1),
        "roofline_fraction": float(f"{measured_tps / roofline.tokens_per_s:.3g}"),
        "step_seconds": round(sum(row["perf/step_seconds"] for row in rows) / len(rows), 3),
        "plan_step_seconds": round(plan.time.total_s, 3),
        "memory_meter": "cuda max_memory_allocated" if device.type == "cuda" else "process RSS (cpu smoke)",
    }


def gpu_check(out_dir: Path, *, cpu_smoke: bool) -> dict[str, Any]:
    device = torch.device("cpu" if cpu_smoke else "cuda")
    profile, steps = ("tiny", 2) if cpu_smoke else ("paper-shaped", 3)
    small = ["rl.max_completion_length=8"] if cpu_smoke else []
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_smoke": cpu_smoke,
        "profile": profile,
        "torch": torch.__version__,
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="mr1-gpu-check-") as tmp:
        for attention in attention_kinds(device):
            case = [*small, f"model.attn_implementation={attention}"]
            report["cases"][attention] = run_case(profile, steps, case, device, Path(tmp))
        lora = [*small, "model.lora.enabled=true"]
        report["cases"]["lora"] = run_case(profile, steps, lora, device, Path(tmp))
    full, adapters = report["cases"]["sdpa"]["peak_gib"], report["cases"]["lora"]["peak_gib"]
    report["lora_over_full_memory"] = round(adapters / full, 3) if full else None
    try:
        bench = bench_grpo(profile, steps=1 if cpu_smoke else 3, warmup=1, overrides=small, out_dir=out_dir)
        report["bench"] = {key: bench[key] for key in ("speedup", "written") if key in bench}
    except ConfigError as error:  # trl not installed: the rest of the report still stands
        report["bench"] = {"skipped": str(error)}
    write_report(report, out_dir)
    return report


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "gpu-check-cpu-smoke" if report["cpu_smoke"] else "gpu-check"
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    lines = [
        f"# mr1 GPU check — {report['device']} ({report['profile']}{', CPU smoke' if report['cpu_smoke'] else ''})",
        "",
        "| case | peak GiB | plan GiB | plan/measured | gen tok/s | roofline tok/s | fraction | step s | plan step s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, c in report["cases"].items():
        lines.append(
            f"| {label} | {c['peak_gib']} | {c['plan_peak_gib']} | {c['plan_over_measured']} | {c['gen_tokens_per_s']} "
            f"| {c['roofline_tokens_per_s']} | {c['roofline_fraction']} | {c['step_seconds']} | {c['plan_step_seconds']} |"
        )
    lines += [
        "",
        f"LoRA / full peak memory: {report['lora_over_full_memory']}",
        f"bench: {report['bench']}",
        "",
    ]
    md_path.write_text("\n".join(lines))
    return [json_path, md_path]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/gpu"))
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU: the control flow only")
    args = parser.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        parser.error("no CUDA GPU visible: run with --cpu-smoke to test the control flow")
    report = gpu_check(args.out, cpu_smoke=args.cpu_smoke)
    return 0 if report["cases"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
