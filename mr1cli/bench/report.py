"""`mr1 bench` output: the environment it ran in, json + markdown files, and rich tables."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from mr1cli.files import atomic_write_text

PACKAGES = ("mr1cli", "torch", "transformers", "trl", "accelerate")
PHASE_LABELS = {
    "generation": "generation",
    "reference": "reference log-probs",
    "update": "policy update",
    "other": "other (data, rewards)",
}


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model from /proc/cpuinfo (else platform.processor())."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def environment(device: torch.device) -> dict[str, Any]:
    """Device, thread count and package versions, recorded beside every number."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "device": device.type,
        "device_name": device_name(device),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # 1, 5, 15 min: a busy machine is slower
        "python": platform.python_version(),
        "versions": versions,
    }


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _spread(stats: dict[str, float]) -> str:
    return f"IQR {stats['q1']:.3f}–{stats['q3']:.3f}, range {stats['min']:.3f}–{stats['max']:.3f}"


def grpo_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, mr1, TRL) rows shared by the markdown file and the rich table."""
    mr1, trl = result["trainers"]["mr1"], result["trainers"]["trl"]
    memory_kind = "peak GPU memory allocated" if result["environment"]["device"] == "cuda" else "peak RSS"
    rows = [
        ("step time, median (s)", f"{mr1['step_s']['median']:.3f}", f"{trl['step_s']['median']:.3f}"),
        ("step time, spread (s)", _spread(mr1["step_s"]), _spread(trl["step_s"])),
        ("generated tokens / step", str(mr1["tokens_per_step"]), str(trl["tokens_per_step"])),
        ("tokens / s (whole step)", f"{mr1['tokens_per_s']:.1f}", f"{trl['tokens_per_s']:.1f}"),
        ("tokens / s (generation only)", f"{mr1['gen_tokens_per_s']:.1f}", f"{trl['gen_tokens_per_s']:.1f}"),
    ]
    for phase, label in PHASE_LABELS.items():
        a, b = mr1["split"][phase], trl["split"][phase]
        rows.append(
            (
                f"{label}, median s (share)",
                f"{a['median_s']:.3f} ({100 * a['fraction']:.0f} %)",
                f"{b['median_s']:.3f} ({100 * b['fraction']:.0f} %)",
            )
        )
    rows += [
        (memory_kind, _gib(mr1["peak_memory_bytes"]), _gib(trl["peak_memory_bytes"])),
        (
            f"{memory_kind} above step start",
            _gib(mr1["peak_memory_above_step_start_bytes"]),
            _gib(trl["peak_memory_above_step_start_bytes"]),
        ),
    ]
    return rows


def roofline_lines(result: dict[str, Any]) -> list[str]:
    r = result["roofline"]
    lines = [
        f"decoder weights read per decode step: {_gib(r['decoder_weight_bytes'])}; KV cache "
        f"{r['kv_bytes_per_token']} B/token at a mean context of {r['mean_context_tokens']:.0f} tokens; "
        f"decode batch {r['decode_batch']}",
    ]
    if "bound_tokens_per_s" not in r:
        lines.append(r.get("note", "no roofline"))
        return lines
    mr1, trl = (result["trainers"][name]["gen_tokens_per_s"] for name in ("mr1", "trl"))
    lines.append(
        f"bandwidth roofline at {r['bandwidth_gbps']:.0f} GB/s: {r['bound_tokens_per_s']:.0f} tokens/s; "
        f"measured generation: mr1 {mr1:.0f} tokens/s ({100 * r['mr1_fraction_of_bound']:.1f} % of the "
        f"bound), TRL {trl:.0f} tokens/s ({100 * r['trl_fraction_of_bound']:.1f} %)"
    )
    return lines


def grpo_markdown(result: dict[str, Any]) -> str:
    env, s = result["environment"], result["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = [
        f"# mr1 bench grpo — profile `{result['profile']}`",
        "",
        f"{result['description']}.",
        "",
        f"- device: {env['device_name']} ({env['device']}, {env['cpu_cores']} CPU cores, "
        f"{env['torch_threads']} torch threads); Python {env['python']}; {versions}",
        f"- model: `{result['model']}` ({s['dtype']})",
        f"- work per step: {s['prompts_per_step']} prompts × G={s['num_generations']} completions × "
        f"{s['completion_length']} tokens, micro-batch {s['micro_batch']} prompts, β = {s['beta']} "
        f"(GRPO-D schedule with β_min = β_max, TRL `beta`), AdamW lr {s['learning_rate']}, "
        f"gradient checkpointing {'on' if s['gradient_checkpointing'] else 'off'}",
        f"- mr1 paths: rollout sampler `{s['mr1_sampler']}`, shared-prompt forward "
        f"{'on' if s['mr1_shared_prompt_forward'] else 'off'} (policy update: "
        f"{'shared' if s['mr1_update_shares_prompts'] else 'full sequences'}); TRL: `model.generate`, "
        "full sequences, its own defaults otherwise",
        f"- {s['measured_steps']} measured steps per trainer after {s['warmup_steps']} warm-up steps, "
        "alternating TRL step k / mr1 step k in one process",
        f"- fixed completion length: {result['fixed_length']['how']}; every measured step generated "
        f"{result['fixed_length']['expected_tokens_per_step']} tokens: "
        f"{'yes' if result['fixed_length']['ok'] else 'NO (see tokens / step)'}",
        "",
        f"**mr1 : TRL speed-up (median TRL step time / median mr1 step time): {result['speedup']:.2f}×**",
        "",
        "| measure | mr1 | TRL GRPOTrainer |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in grpo_rows(result)],
        "",
        "Step split: mr1 times its generate call, reference forward and update (forward, backward, clip, "
        "AdamW) itself; TRL's are timed by wrapping `_generate_single_turn`, "
        "`_get_per_token_logps_and_entropies` (no-grad calls) and `training_step` minus `_prepare_inputs` "
        "plus the optimizer step. Memory: both trainers live in one process, so the peak includes both "
        "models; the row below it is the growth within the trainer's own steps.",
        "",
        "## Decoding roofline",
        "",
        *[f"- {line}" for line in roofline_lines(result)],
        "",
    ]
    return "\n".join(lines)


def _write_report(report: dict[str, Any], out_dir: Path, stem: str, markdown: str) -> list[Path]:
    """`<stem>.json` (everything measured) and `<stem>.md` (for people), each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    atomic_write_text(json_path, json.dumps(report, indent=1, default=str) + "\n")
    atomic_write_text(md_path, markdown)
    return [json_path, md_path]


def write_grpo_report(result: dict[str, Any], out_dir: Path) -> list[Path]:
    return _write_report(result, out_dir, result["profile"], grpo_markdown(result))


def grpo_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"mr1 bench grpo ({result['profile']}, {result['environment']['device_name']}): "
        f"mr1 is {result['speedup']:.2f}× TRL's speed",
        caption="\n".join(roofline_lines(result)),
    )
    table.add_column("measure")
    table.add_column("mr1", justify="right")
    table.add_column("TRL GRPOTrainer", justify="right")
    for row in grpo_rows(result):
        table.add_row(*row)
    return table


def eval_markdown(report: dict[str, Any]) -> str:
    env, s = report["environment"], report["settings"]
    return "\n".join(
        [
            f"# mr1 bench eval — profile `{report['profile']}`",
            "",
            f"- device: {env['device_name']} ({env['device']}); model `{report['model']}`",
            f"- {s['examples']} test examples, batch {s['batch_size']}, {s['decoding']}",
            f"- **{report['examples_per_s']:.2f} examples/s**, {report['tokens_per_s']:.1f} generated "
            f"tokens/s ({report['generated_tokens']} tokens in {report['seconds']:.2f} s; "
            f"accuracy {report['accuracy']} %)",
            "",
        ]
    )


def write_eval_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    return _write_report(report, out_dir, f"eval-{report['profile']}", eval_markdown(report))


def eval_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"mr1 bench eval ({report['profile']}, {report['environment']['device_name']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("test examples", str(report["settings"]["examples"]))
    table.add_row("examples / s", f"{report['examples_per_s']:.2f}")
    table.add_row("generated tokens / s", f"{report['tokens_per_s']:.1f}")
    table.add_row("seconds", f"{report['seconds']:.2f}")
    table.add_row("model", Path(report["model"]).parent.name + "/" + Path(report["model"]).name)
    table.add_row("accuracy", f"{report['accuracy']:.1f} %")
    load = report["environment"].get("load_average")
    if load:
        table.add_row(
            "machine load (1/5/15 min)",
            f"{load[0]} / {load[1]} / {load[2]} on {report['environment']['cpu_cores']} cores",
        )
    return table
