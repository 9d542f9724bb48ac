"""Checkpoints are atomic and checksummed; a run directory is locked and never overwritten."""

import json
import os
import subprocess
import sys

import pytest
import torch

from mr1cli.config_loading import load_config
from mr1cli.core.errors import CheckpointError, ConfigError
from mr1cli.training.checkpoints import (
    latest_checkpoint,
    load_trainer_state,
    prune_checkpoints,
    verify_checkpoint,
    write_checkpoint,
)
from mr1cli.training.run_dir import RunDir, RunLocked


def _save_weights(directory):
    (directory / "model.safetensors").write_bytes(b"weights" * 100)


def test_checkpoint_round_trip_and_corruption_detected(tmp_path):
    state = {"optimizer": {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": []}, "step": 5}
    path = write_checkpoint(tmp_path, 5, _save_weights, state, {"run": "x"})
    assert path.name == "step-000005"
    assert set(verify_checkpoint(path)["files"]) == {"model.safetensors", "trainer_state.pt", "meta.json"}
    assert torch.equal(load_trainer_state(path)["optimizer"]["state"][0]["exp_avg"], torch.ones(3))
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[10] ^= 0x01  # one flipped bit
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checksum mismatch.*model\.safetensors"):
        verify_checkpoint(path)
    weights.write_bytes(b"short")  # truncated
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        verify_checkpoint(path)


def test_failed_write_leaves_no_complete_looking_checkpoint(tmp_path):
    write_checkpoint(tmp_path, 1, _save_weights, {"step": 1}, {})

    def crash(directory):
        _save_weights(directory)
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError, match="No space left on device"):
        write_checkpoint(tmp_path, 2, crash, {"step": 2}, {})
    assert latest_checkpoint(tmp_path).name == "step-000001"
    verify_checkpoint(latest_checkpoint(tmp_path))
    assert not list(tmp_path.glob(".tmp-*"))


def test_staging_folder_without_manifest_is_ignored_and_pruned(tmp_path):
    write_checkpoint(tmp_path, 1, _save_weights, {"step": 1}, {})
    half = tmp_path / ".tmp-step-000002-999"
    half.mkdir()
    _save_weights(half)
    assert latest_checkpoint(tmp_path).name == "step-000001"
    for step in (2, 3, 4):
        write_checkpoint(tmp_path, step, _save_weights, {"step": step}, {})
    prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["step-000003", "step-000004"]


def test_trainer_state_refuses_pickled_code(tmp_path):
    path = write_checkpoint(tmp_path, 1, _save_weights, {"step": 1}, {})

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"step": Evil()}, path / "trainer_state.pt")
    with pytest.raises(CheckpointError, match=r"trainer_state\.pt"):
        load_trainer_state(path)


def test_run_dir_refuses_a_different_config(tmp_path):
    run = RunDir(tmp_path / "run")
    other = load_config(method="grpo", task="counting", overrides=["rl.kl.beta=0.07"])
    with run:
        run.bind_config(other, resume=False)  # a start that failed before its first step ...
        run.bind_config(load_config(method="grpo", task="counting"), resume=False)  # ... is taken over
        run.log_metrics({"step": 1, "loss": 0.5})
        with pytest.raises(ConfigError, match="different config"):
            run.bind_config(other, resume=False)
        with pytest.raises(ConfigError, match="--resume"):
            run.bind_config(load_config(method="grpo", task="counting"), resume=False)
        run.bind_config(load_config(method="grpo", task="counting"), resume=True)


def test_metrics_truncate_to_the_resumed_step(tmp_path):
    run = RunDir(tmp_path)
    for step in (1, 2, 3):
        run.log_metrics({"step": step, "loss": float(step)})
    with run.metrics_file.open("a") as handle:
        handle.write('{"step": 4, "lo')  # cut by a kill
    run.truncate_metrics(2)
    assert [row["step"] for row in run.read_metrics()] == [1, 2]
    run.log_metrics({"step": 3, "loss": float("nan")})
    assert json.loads(run.metrics_file.read_text().splitlines()[-1])["loss"] is None


def test_second_process_is_locked_out(tmp_path):
    run = RunDir(tmp_path / "run")
    with run:
        code = (
            "import sys; from pathlib import Path; from mr1cli.training.run_dir import RunDir, RunLocked\n"
            f"try:\n    RunDir(Path({str(tmp_path / 'run')!r})).acquire()\nexcept RunLocked as e:\n    print(e); sys.exit(7)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 7
        assert f"pid {os.getpid()}" in result.stdout
    RunDir(tmp_path / "run").acquire()  # free again once released
    assert RunLocked.exit_code == 2


def test_probe_runs_on_its_own_interval_without_a_test_pass(tmp_path, monkeypatch):
    """train.probe_every sets the probe's steps; with train.eval_every = 0 no full test pass runs."""
    from mr1cli.config_loading import load_config
    from mr1cli.training import train as train_module

    monkeypatch.setattr(train_module, "load_examples", lambda cfg, which, limit=None: [which] * (limit or 1))
    overrides = ["data.heldout=synthetic:counting-heldout-20", "data.probe_size=5", "train.eval_every=0"]
    cfg = load_config(method="grpo", task="counting", overrides=[*overrides, "train.probe_every=10"])
    (probe,) = train_module.evaluations_for(cfg, recipe=None)
    assert [s for s in range(0, 41) if probe.due(s, total_steps=40)] == [0, 10, 20, 30, 40]
    cfg = load_config(
        method="grpo",
        task="counting",
        overrides=[*overrides[:2], "train.eval_every=20", "train.probe_every=0"],
    )
    test, probe = train_module.evaluations_for(cfg, recipe=None)
    assert [s for s in range(0, 41) if test.due(s, total_steps=40)] == [20, 40]
    assert [s for s in range(0, 41) if probe.due(s, total_steps=40)] == [0, 20, 40]
