"""Kill, resume and scale-out: a run killed with SIGKILL and resumed ends exactly where an
uninterrupted run ends; two processes under accelerate match one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import TINY_GRPO_OVERRIDES, mini_workspace, same_tables, write_mini_experiment

from mr1cli.experiments.launch.accelerate_cmd import accelerate_config

pytestmark = pytest.mark.slow

TIMING_KEYS = ("perf/",)


def train_command(model_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mr1cli",
        "train",
        "--method",
        "grpo-d",
        "--task",
        "counting",
        "--output",
        str(out),
        f"model.name_or_path={model_dir}",
        *TINY_GRPO_OVERRIDES,
        "train.max_steps=8",
        "train.save_every=1",
        *extra,
    ]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "MR1_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith(TIMING_KEYS)} for row in rows]


def assert_same_weights(a: Path, b: Path, atol: float = 0.0) -> None:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name], atol=atol), name


def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tiny_model_dir, tmp_path, env):
    reference = tmp_path / "reference"
    subprocess.run(train_command(tiny_model_dir, reference), env=env, check=True, capture_output=True)
    killed = tmp_path / "killed"
    kills = 0
    for steps, delay in (
        (2, 0.05),
        (4, 0.15),
        (6, 0.1),
    ):  # of 8; a little into the next step or its checkpoint
        resume = ["--resume"] if (killed / "config.json").exists() else []  # --resume needs a run
        process = subprocess.Popen(
            train_command(tiny_model_dir, killed, *resume),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_steps(process, killed, steps)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        for checkpoint in (killed / "checkpoints").glob("step-*"):
            assert (checkpoint / "manifest.json").is_file()  # nothing half-written looks complete
    resume = ["--resume"] if (killed / "config.json").exists() else []
    finished = subprocess.run(
        train_command(tiny_model_dir, killed, *resume), env=env, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr
    assert kills == 3
    assert_same_weights(reference / "final", killed / "final")
    assert metrics(killed) == metrics(reference)


def test_two_processes_match_one(answering_model_dir, tmp_path, env):
    """DDP on CPU: the config `--distributed ddp --gpus-per-run 2` generates, 2 processes and gloo
    (`accelerate launch --cpu` would start one process: training/distributed.py)."""
    launcher = str(Path(sys.executable).parent / "accelerate")
    config = tmp_path / "ddp.yaml"
    config.write_text(json.dumps(accelerate_config("ddp", 2)))
    extra = ("train.max_steps=3", "reward.weights.format=0", "train.learning_rate=3e-4")
    single = tmp_path / "single"
    subprocess.run(
        train_command(answering_model_dir, single, *extra), env=env, check=True, capture_output=True
    )
    double = tmp_path / "double"
    command = [launcher, "launch", "--config_file", str(config), "-m", "mr1cli"]
    command += train_command(answering_model_dir, double, *extra)[3:]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((double / "env.json").read_text())["processes"] == 2
    assert [row["train/skipped"] for row in metrics(double)] == [0.0, 0.0, 0.0]  # every step updates
    for one, two in zip(metrics(single), metrics(double), strict=True):
        for key in ("reward/mean", "reward/accuracy", "reward/format", "kl/beta", "completion/length"):
            assert one[key] == pytest.approx(two[key], abs=1e-6), key
        for key in ("loss/total", "kl/mean"):
            assert one[key] == pytest.approx(two[key], abs=1e-4), key
    assert_same_weights(single / "final", double / "final", atol=1e-4)


def logged_steps(folder: Path, pattern: str = "metrics.jsonl") -> int:
    """Metric rows in the files matching `pattern` under `folder` (one row per logged step)."""
    return sum(len(log.read_text().splitlines()) for log in folder.glob(pattern) if log.is_file())


def wait_for_steps(
    process: subprocess.Popen,
    folder: Path,
    steps: int,
    pattern: str = "metrics.jsonl",
    timeout_s: float = 300.0,
) -> None:
    """Until `steps` steps are logged under `folder` (or the process ended, or the bound ran out)."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        if logged_steps(folder, pattern) >= steps:
            return
        time.sleep(0.05)


def test_kill_soak_ten_sigkills_at_seeded_random_moments(tiny_model_dir, tmp_path, env):
    """≥ 10 SIGKILLs (during start-up, steps and checkpoint writes), a resume after each; the end
    state equals an uninterrupted run's and no checkpoint ever looks complete without being so."""
    import random

    from mr1cli.training.checkpoints import verify_checkpoint

    extra = ("train.max_steps=60", "rl.max_completion_length=16")
    reference = tmp_path / "reference"
    subprocess.run(train_command(tiny_model_dir, reference, *extra), env=env, check=True, capture_output=True)
    soak = tmp_path / "soak"
    rng = random.Random(1234)
    kills = 0
    while kills < 10:
        # Kill moments are tied to the run's own progress, not to the clock, so a fast or a loaded
        # machine sees the same soak: every third start is killed during start-up, the others
        # 1 to 3 logged steps after the last checkpoint and a little into the next step.
        done = max(
            (int(c.name.removeprefix("step-")) for c in (soak / "checkpoints").glob("step-*")), default=0
        )
        resume = ["--resume"] if (soak / "config.json").exists() else []  # --resume needs a run
        process = subprocess.Popen(
            train_command(tiny_model_dir, soak, *resume, *extra),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if kills % 3 == 0:
            time.sleep(rng.uniform(0.3, 2.0))
        else:
            wait_for_steps(process, soak, done + rng.randint(1, 3))
            time.sleep(rng.uniform(0.0, 0.2))
        assert process.poll() is None, "the run finished before 10 kills: give it more steps"
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        for checkpoint in (soak / "checkpoints").glob("step-*"):
            verify_checkpoint(checkpoint)  # every complete-looking checkpoint is complete
    assert kills >= 10, f"only {kills} kills landed before the run finished"
    resume = ["--resume"] if (soak / "config.json").exists() else []
    subprocess.run(
        train_command(tiny_model_dir, soak, *resume, *extra), env=env, check=True, capture_output=True
    )
    assert_same_weights(reference / "final", soak / "final")
    assert metrics(soak) == metrics(reference)


def test_reproduce_killed_mid_grid_completes_with_the_clean_tables(tiny_model_dir, tmp_path, env):
    import random

    train = "max_steps: 12, save_every: 2, prompts_per_step: 4, micro_batch: 4, learning_rate: 1.0e-3"
    specs = write_mini_experiment(tmp_path, tiny_model_dir, train=train)
    command = [sys.executable, "-m", "mr1cli", "reproduce", "exp3-same-task", "--profile", "mini"]

    def workspace(name):
        return mini_workspace(tmp_path / name, specs, env)

    clean, clean_env = workspace("clean")
    subprocess.run(command, cwd=clean, env=clean_env, check=True, capture_output=True)
    killed, killed_env = workspace("killed")
    rng = random.Random(7)
    kills = 0
    for _ in range(4):  # each kill lands 1 to 3 logged steps into the grid's 24: progress, not the clock
        before = logged_steps(killed, "runs/*/metrics.jsonl")
        process = subprocess.Popen(
            command, cwd=killed, env=killed_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_steps(process, killed, before + rng.randint(1, 3), pattern="runs/*/metrics.jsonl")
        time.sleep(rng.uniform(0.0, 0.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    subprocess.run(command, cwd=killed, env=killed_env, check=True, capture_output=True)
    assert kills >= 2
    same_tables(killed, clean)
