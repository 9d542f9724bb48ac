"""`mr1 reproduce --jobs 2`: the mini grid on two worker processes writes the same tables as one
process, byte for byte; a worker killed with SIGKILL fails only its run (named with its log), and the
rerun finishes the grid with the same tables; `mr1 status` then lists every run as done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import mini_workspace, same_tables

pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "mr1cli", "reproduce", "exp3-same-task", "--profile", "mini"]


def test_two_workers_write_the_tables_of_one_process(mini_grid):
    root, specs, env, clean = mini_grid
    folder, folder_env = mini_workspace(root / "two", specs, env)
    done = subprocess.run(
        [*COMMAND, "--jobs", "2"], cwd=folder, env=folder_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    same_tables(folder, clean)
    assert "w1 cpu" in done.stderr and "w2 cpu" in done.stderr  # the plan says which worker runs what
    records = list((folder / "runs").glob("*/launch/*.json"))
    assert records and all(
        json.loads(p.read_text())["state"] == "done" for p in records if "job" not in p.name
    )
    status = subprocess.run(
        [sys.executable, "-m", "mr1cli", "status", "exp3-same-task", "--profile", "mini"],
        cwd=folder,
        env=folder_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout.count("done") >= 3 and "not started" not in status.stdout


def _running_worker(runs: Path) -> int | None:
    """The pid of a worker that has logged a training step (its run is mid-way)."""
    for record in runs.glob("*/launch/run.json"):
        data = json.loads(record.read_text())
        if data.get("state") == "running" and (record.parent.parent / "metrics.jsonl").is_file():
            return int(data["pid"])
    return None


def test_a_worker_killed_mid_run_fails_only_its_run_and_the_rerun_finishes(mini_grid):
    root, specs, env, clean = mini_grid
    folder, folder_env = mini_workspace(root / "killed", specs, env)
    parent = subprocess.Popen(
        [*COMMAND, "--jobs", "2"],
        cwd=folder,
        env=folder_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, victim = time.monotonic() + 300, None
    while victim is None and time.monotonic() < deadline and parent.poll() is None:
        victim = _running_worker(folder / "runs")
        time.sleep(0.2)
    assert victim is not None, "no worker reached a training step"
    os.kill(victim, signal.SIGKILL)
    _, stderr = parent.communicate(timeout=600)
    assert parent.returncode == 1, stderr
    assert "1 of 3 runs failed" in stderr and "launch/run.log" in stderr
    status = subprocess.run(
        [sys.executable, "-m", "mr1cli", "status", "exp3-same-task", "--profile", "mini"],
        cwd=folder,
        env=folder_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "failed" in status.stdout
    rerun = subprocess.run(
        [*COMMAND, "--jobs", "2"], cwd=folder, env=folder_env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    same_tables(folder, clean)
