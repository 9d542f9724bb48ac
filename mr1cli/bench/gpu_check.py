"""The prepared GPU check (`scripts/gpu-check.sh`): what only a GPU can tell, in one report.

Runs the sections of bench/gpu_sections.py in order (precision, cpu-parity, memory, sharded,
rollout-speed), each to the end even when an earlier one failed, then writes
`<out>/<device>.json` and `<out>/<device>.md` and exits 1 if any section failed (0 otherwise;
a skipped section records why). `--cpu-smoke` runs the same control flow on CPU with the tiny model
(`<out>/cpu-smoke.json`).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from mr1cli.bench import trl_gpu_check  # noqa: F401  (registers the TRL engine's sections)
from mr1cli.bench.gpu_sections import SECTIONS, CheckFailed, Context


def say(line: str) -> None:
    Console(stderr=True).print(line, markup=False, highlight=False, soft_wrap=True)


def device_name(cpu_smoke: bool) -> str:
    return "cpu-smoke" if cpu_smoke else torch.cuda.get_device_name(0)


def slug(name: str) -> str:
    """A file name for a device name.

    >>> slug("NVIDIA H100 80GB HBM3")
    'nvidia-h100-80gb-hbm3'
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_sections(ctx: Context, names: list[str]) -> dict[str, dict[str, Any]]:
    """name → {"status": passed|failed|skipped, "seconds", numbers…, "error" when failed}."""
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.perf_counter()
        try:
            numbers = SECTIONS.get(name)(ctx)
            status = "skipped" if "skipped" in numbers else "passed"
        except CheckFailed as failure:
            numbers, status = {**failure.numbers, "error": str(failure)}, "failed"
        except Exception as error:  # a crash is a failed section, reported with its cause
            numbers, status = {"error": f"{type(error).__name__}: {error}"}, "failed"
            traceback.print_exc()
        results[name] = {"status": status, "seconds": round(time.perf_counter() - started, 1), **numbers}
        say(f"gpu-check: {name}: {status.upper()} {_summary(results[name])}")
    return results


def _summary(result: dict[str, Any]) -> str:
    return (
        result.get("error")
        or result.get("skipped")
        or json.dumps({k: v for k, v in result.items() if k not in ("status",)}, default=str)
    )


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = slug(report["device"])
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    lines = [
        f"# mr1 GPU check — {report['device']}",
        "",
        f"torch {report['torch']}, {report['python']}; {report['verdict']}",
        "",
        "| section | status | seconds | numbers |",
        "|---|---|---|---|",
    ]
    for name, result in report["sections"].items():
        numbers = {k: v for k, v in result.items() if k not in ("status", "seconds")}
        lines.append(
            f"| {name} | {result['status']} | {result['seconds']} | `{json.dumps(numbers, default=str)}` |"
        )
    md_path.write_text("\n".join(lines) + "\n")
    return [json_path, md_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/gpu"))
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU: the control flow only")
    parser.add_argument("--sections", default=",".join(SECTIONS.names()), help="comma-separated, in order")
    args = parser.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        parser.error("no CUDA GPU visible: run with --cpu-smoke to test the control flow")
    names = [name for name in args.sections.split(",") if name]
    for name in names:
        SECTIONS.get(name)  # an unknown name fails here, with "did you mean", before any work
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    with tempfile.TemporaryDirectory(prefix="mr1-gpu-check-") as tmp:
        results = run_sections(Context(device, Path(tmp), args.cpu_smoke), names)
    failed = [name for name, result in results.items() if result["status"] == "failed"]
    report = {
        "device": device_name(args.cpu_smoke),
        "torch": torch.__version__,
        "python": f"{sys.executable} {platform.python_version()}",
        "verdict": f"FAILED: {', '.join(failed)}" if failed else "all sections passed or skipped",
        "sections": results,
    }
    for path in write_report(report, args.out):
        say(f"gpu-check: wrote {path}")
    say(f"gpu-check: {report['verdict']}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
