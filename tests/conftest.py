"""Shared fixtures. Tests never touch the network: the hub is offline before anything imports it."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that spin at every barrier wait there for a sibling the scheduler has taken off a
# busy CPU. Measured on 2 cores loaded by other jobs: the fast tests of test_trainers.py took 125 s
# spinning and 43 s with passive waits; the 2-thread toy test 193 s and 36 s. Set before torch is
# imported (libgomp reads it when it loads); subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import pytest

TINY_CORPUS = (
    "How many items are there in the image? There are 3 red cubes, 2 blue spheres and 1 green cylinder.",
    "How many different items are there in the image? I count the objects one by one: 1, 2, 3, 4, 5.",
    "As shown in the figure, in triangle ABC, ∠A = 40°, ∠B = 60°, then ∠C is equal to 80°.",
    "As shown in the figure, AB ∥ CD, the circle ⊙O has radius 5, so the area is 25π and √2 ≈ 1.41.",
    "Choices: A: 30° B: 45° C: 60° D: 90°. <think> The angles of a triangle sum to 180°. </think>",
    "<answer> 3 </answer> <answer> 140° </answer> <answer> C </answer>",
)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tests never read or write the user's cache (~/.cache/mr1): one fresh cache per session,
    inherited by the subprocesses tests start; a test may still point MR1_CACHE elsewhere."""
    root = tmp_path_factory.mktemp("user-cache")
    os.environ["XDG_CACHE_HOME"] = str(root)
    os.environ["MR1_CACHE"] = str(root / "mr1")
    return root / "mr1"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built, untrained tiny Qwen2-VL checkpoint folder (built once per test session)."""
    from mr1cli.zoo.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("models") / "tiny-qwen2-vl", corpus=TINY_CORPUS * 4, seed=0
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model and data cache (MR1_CACHE) for this test."""
    monkeypatch.setenv("MR1_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory):
    """A cache shared by the tests of one module (synthetic data is generated once)."""
    path = tmp_path_factory.mktemp("mr1-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MR1_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def mini_grid(tiny_model_dir, tmp_path_factory):
    """The mini exp3 grid (SFT and GRPO-D on counting, 8 steps, checkpoints every 2) reproduced once
    in one process: (root, specs folder, subprocess environment, the clean workspace)."""
    import subprocess
    import sys

    from support import mini_workspace, write_mini_experiment

    root = tmp_path_factory.mktemp("grid")
    train = "max_steps: 8, save_every: 2, prompts_per_step: 4, micro_batch: 4, learning_rate: 1.0e-3"
    specs = write_mini_experiment(root, tiny_model_dir, train=train)
    env = {**os.environ, "MR1_CACHE": str(root / "cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    clean, clean_env = mini_workspace(root / "clean", specs, env)
    command = [sys.executable, "-m", "mr1cli", "reproduce", "exp3-same-task", "--profile", "mini"]
    subprocess.run(command, cwd=clean, env=clean_env, check=True, capture_output=True)
    return root, specs, env, clean


@pytest.fixture(scope="session")
def answering_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model after 30 SFT steps on counting answers in the training wording: its GRPO rollouts
    earn some accuracy reward (a fresh model earns none, so every GRPO step would be skipped)."""
    from support import tiny_sft_config

    from mr1cli.training import run_training

    cfg = tiny_sft_config(tiny_model_dir, "train.max_steps=30", "sft.eval_wording_frac=0")
    return run_training(cfg, output_dir=tmp_path_factory.mktemp("answering") / "sft")
