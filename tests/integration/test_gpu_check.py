"""`scripts/gpu-check.sh --cpu-smoke`: the GPU check's control flow on CPU with the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu-check.sh"


@pytest.mark.slow  # ~1 min: three short runs and a one-step bench
def test_cpu_smoke_writes_a_report_with_every_check(tmp_path):
    pytest.importorskip("trl", reason="the bench step needs trl (make setup-bench)")
    env = {**os.environ, "PYTHON": sys.executable, "MR1_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [str(SCRIPT), "--cpu-smoke", "--out", str(tmp_path / "gpu")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "gpu" / "gpu-check-cpu-smoke.json").read_text())
    assert set(report["cases"]) == {"sdpa", "lora"}
    for case in report["cases"].values():
        assert case["steps"] == 2 and case["peak_gib"] > 0 and case["plan_peak_gib"] > 0
        assert 0 < case["roofline_fraction"] < 1
    assert report["bench"]["speedup"] > 0
    assert "| sdpa |" in (tmp_path / "gpu" / "gpu-check-cpu-smoke.md").read_text()
