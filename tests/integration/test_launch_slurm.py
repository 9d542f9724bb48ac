"""`mr1 reproduce --launcher slurm` against a real single-node SLURM (Debian's slurm-wlm and munge,
started by tests/slurm_cluster.py): the mini grid's tables equal the local ones; a job cancelled with
scancel mid-run is resubmitted by the next `mr1 reproduce` and finishes from its checkpoint.
Skipped where SLURM is not installed or the test is not root (the daemons start as root)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from slurm_cluster import SlurmCluster, slurm_available
from support import mini_workspace, same_tables

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(slurm_available()), reason=slurm_available() or "ok")]

COMMAND = [
    sys.executable,
    "-m",
    "mr1cli",
    "reproduce",
    "exp3-same-task",
    "--profile",
    "mini",
    "--launcher",
    "slurm",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def test_slurm_grid_equals_the_local_one_and_a_cancelled_job_is_resubmitted(mini_grid, cluster):
    root, specs, env, clean = mini_grid
    env = {**env, "SLURM_CONF": cluster["SLURM_CONF"]}
    folder, folder_env = mini_workspace(root / "slurm", specs, env)
    dry = subprocess.run([*COMMAND, "--dry-run", "--slurm", "mem=1G"], cwd=folder, env=folder_env, capture_output=True, text=True, check=True)  # fmt: skip
    assert "--cpus-per-task=1" in dry.stderr and "--mem=1G" in dry.stderr
    done = subprocess.run(COMMAND, cwd=folder, env=folder_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    same_tables(folder, clean)
    record = json.loads(next((folder / "runs").glob("*/launch/run.json")).read_text())
    assert record["job_id"] and record["state"] == "done" and record["log"].endswith("_log.out")

    cancelled, cancelled_env = mini_workspace(root / "cancelled", specs, env)
    detached = subprocess.run([*COMMAND, "--detach"], cwd=cancelled, env=cancelled_env, capture_output=True, text=True, check=True)  # fmt: skip
    assert "jobs submitted" in detached.stderr and not (cancelled / "results").exists()
    deadline, victim = time.monotonic() + 300, None
    while victim is None and time.monotonic() < deadline:
        for path in (cancelled / "runs").glob("*/launch/run.json"):
            if (path.parent.parent / "metrics.jsonl").is_file():
                victim = json.loads(path.read_text())["job_id"]
                break
        time.sleep(0.2)
    assert victim is not None, "no job reached a training step"
    subprocess.run(["scancel", victim], env=cancelled_env, check=True)
    rerun = subprocess.run(
        COMMAND, cwd=cancelled, env=cancelled_env, capture_output=True, text=True, timeout=900
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "resubmitted" in rerun.stderr
    same_tables(cancelled, clean)
