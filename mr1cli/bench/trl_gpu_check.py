"""The TRL engine's section of the GPU check: `train.engine=trl` on the paper-shaped model (Qwen2-VL-2B's
architecture, random weights, bf16, G = 8, 512-token completions, gradient checkpointing), once with the
policy sampling its own rollouts (`rl.rollout_engine=hf`) and once with vLLM colocated on the same GPU
(`rl.rollout_engine=vllm`): step time, generated tokens/s, peak GPU memory and the reward after N steps.

The GPU check calls `trl_engine_section(out_dir, cpu_smoke=...)`, which writes
<out_dir>/trl-engine.{json,md} (trl-engine-cpu-smoke.* with the tiny model on CPU) and returns the
report; a case that cannot run there (trl or vllm not installed, no CUDA for vLLM) is reported as
skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from mr1cli.bench.measure import MemoryMeter
from mr1cli.bench.runner import bench_config, prepare_model
from mr1cli.core.errors import Mr1Error
from mr1cli.planning.gpus import GIB
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir

CASES = {"hf": [], "vllm": ["rl.rollout_engine=vllm"]}


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


def trl_engine_section(out_dir: Path, *, cpu_smoke: bool, model: str | None = None) -> dict[str, Any]:
    """Both rollout engines under the TRL engine; writes <out_dir>/trl-engine[-cpu-smoke].{json,md}.
    `model`: a checkpoint folder instead of the profile's built-in model (tests)."""
    device = torch.device("cpu" if cpu_smoke else "cuda")
    profile, steps = ("tiny", 2) if cpu_smoke else ("paper-shaped", 4)
    small = ["rl.max_completion_length=8"] if cpu_smoke else []
    report: dict[str, Any] = {"profile": profile, "cpu_smoke": cpu_smoke, "steps": steps, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="mr1-trl-gpu-check-") as tmp:
        for case, overrides in CASES.items():
            reason = _unavailable(case, device)
            try:
                args = (profile, steps, [*small, *overrides], device, Path(tmp), model)
                result = {"skipped": reason} if reason else trl_case(*args)
            except (Mr1Error, RuntimeError) as error:  # one case failing leaves the other's figures
                result = {"failed": str(error).splitlines()[0]}
            report["cases"][case] = result
    write_report(report, out_dir)
    return report


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "trl-engine-cpu-smoke" if report["cpu_smoke"] else "trl-engine"
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"# TRL engine — {report['profile']}, {report['steps']} steps",
        "",
        "| rollouts | step s | gen tok/s | tokens/step | peak GiB | reward, last step |",
        "|---|---|---|---|---|---|",
    ]
    for case, c in report["cases"].items():
        if "step_seconds" in c:
            lines.append(
                f"| {case} | {c['step_seconds']} | {c['gen_tokens_per_s']} | {c['tokens_per_step']:.0f} "
                f"| {c['peak_gib']} | {c['reward_last_step']:.3f} |"
            )
        else:
            lines.append(f"| {case} | {c.get('skipped') or c.get('failed')} | | | | |")
    md_path.write_text("\n".join(lines) + "\n")
    return [json_path, md_path]
