"""`scripts/gpu-check.sh`: arguments parsed first, nothing installed, failures exit non-zero; and its
`--cpu-smoke`, every section's control flow on CPU with the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mr1cli.bench import gpu_check
from mr1cli.bench.gpu_sections import CheckFailed
from mr1cli.core.registry import Registry

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu-check.sh"
SECTIONS = ["precision", "cpu-parity", "memory", "sharded", "rollout-speed", "trl", "trl-vllm"]


def fake_python(folder: Path, missing: str) -> Path:
    """A `python` that logs every call and reports `missing` as not importable."""
    log = folder / "calls.log"
    script = folder / "python"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\ncase "$1" in -c) echo 3.11.0 ;; -) echo "{missing}" ;; esac\n'
    )
    script.chmod(0o755)
    return script


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=3600)


def test_help_and_bad_arguments_run_no_python_and_install_nothing(tmp_path):
    python = fake_python(tmp_path, missing="")
    env = {**os.environ, "PYTHON": str(python)}
    shown = run_script("--help", env=env)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: scripts/gpu-check.sh")
    assert (
        "--cpu-smoke" in shown.stdout and "precision,cpu-parity,memory,sharded,rollout-speed" in shown.stdout
    )
    bad = run_script("--cpu-smoke", "--bogus", env=env)
    assert bad.returncode == 2 and "unknown argument: --bogus" in bad.stderr
    assert run_script("--out", env=env).returncode == 2  # a flag without its value
    assert not (tmp_path / "calls.log").exists()  # the arguments were parsed before anything ran


def test_a_missing_package_is_named_and_nothing_is_installed(tmp_path):
    python = fake_python(tmp_path, missing="torch math_verify")
    done = run_script("--cpu-smoke", env={**os.environ, "PYTHON": str(python)})
    assert done.returncode == 2
    assert f"gpu-check: python: {python} (3.11.0)" in done.stderr
    assert "cannot import: torch math_verify" in done.stderr
    calls = (tmp_path / "calls.log").read_text()
    assert "pip" not in calls and "mr1cli.bench.gpu_check" not in calls  # it stopped before running


def test_a_failed_section_is_reported_and_exits_1_after_the_others_ran(tmp_path, monkeypatch):
    def fails(ctx):
        raise CheckFailed("plan is 2.0× the measured peak", {"plan_over_measured": 2.0})

    fake = Registry("gpu check section")
    fake.add("fails", fails)
    fake.add("crashes", lambda ctx: 1 / 0)
    fake.add("passes", lambda ctx: {"value": 1})
    fake.add("skips", lambda ctx: {"skipped": "1 GPU visible"})
    monkeypatch.setattr(gpu_check, "SECTIONS", fake)
    code = gpu_check.main(["--cpu-smoke", "--out", str(tmp_path), "--sections", "fails,crashes,passes,skips"])
    report = json.loads((tmp_path / "cpu-smoke.json").read_text())
    assert code == 1 and report["verdict"] == "FAILED: fails, crashes"
    statuses = {name: result["status"] for name, result in report["sections"].items()}
    assert statuses == {"fails": "failed", "crashes": "failed", "passes": "passed", "skips": "skipped"}
    assert report["sections"]["fails"]["plan_over_measured"] == 2.0
    assert report["sections"]["crashes"]["error"].startswith("ZeroDivisionError")
    assert "| fails | failed |" in (tmp_path / "cpu-smoke.md").read_text()


@pytest.mark.slow  # ~5 min on 2 cores: every section on the tiny model, the sharded one with 2 processes
def test_cpu_smoke_runs_every_section_and_writes_the_report(tmp_path):
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "MR1_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    done = run_script("--cpu-smoke", "--out", str(tmp_path / "gpu"), env=env)
    assert f"gpu-check: python: {sys.executable}" in done.stderr
    report = json.loads((tmp_path / "gpu" / "cpu-smoke.json").read_text())
    sections = report["sections"]
    assert list(sections) == SECTIONS
    failed = [name for name, result in sections.items() if result["status"] == "failed"]
    assert done.returncode == (1 if failed else 0), done.stderr[-3000:]
    for name in ("cpu-parity", "memory", "sharded", "rollout-speed", "trl"):
        assert sections[name]["status"] == "passed", (name, sections[name])
    assert "vLLM needs a CUDA GPU" in sections["trl-vllm"]["skipped"]
    assert sections["sharded"]["steps"] == sections["cpu-parity"]["steps"] == 6
    assert 0 < sections["rollout-speed"]["roofline_fraction"] <= 1
    # precision passes once the recipe keeps float32 master weights under bf16 compute (issue 21,
    # part 1); weights held in bf16 change ~2 % of what float32 changes, and the section says so.
    precision = sections["precision"]
    assert precision["changed_float32"] > 0.5
    assert (precision["status"] == "passed") == (precision["ratio"] >= precision["threshold"])
    assert "| sharded | passed |" in (tmp_path / "gpu" / "cpu-smoke.md").read_text()
