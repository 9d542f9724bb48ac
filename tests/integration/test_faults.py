"""Faults that once lost work or misled (issue 24, section 3): each one ends in one line, the right
exit code and nothing left behind that looks complete."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_data import COUNT_QUESTION, write_png
from support import sigint_as_at_a_terminal

from mr1cli.cli import main
from mr1cli.config_loading import load_config
from mr1cli.core.errors import CheckpointError, DataError
from mr1cli.data.sources import load_split
from mr1cli.training.checkpoints import list_checkpoints, verify_checkpoint, write_checkpoint
from mr1cli.training.loop import resume_point
from mr1cli.training.run_dir import RunDir

TRAIN = ["train", "--method", "grpo-d", "--task", "counting"]


def small(model_dir: Path, steps: int, *extra: str) -> list[str]:
    return [
        f"model.name_or_path={model_dir}",
        "data.train=synthetic:counting-warmup-8",
        "data.test=synthetic:counting-test-8",
        "data.train_limit=0",
        "train.prompts_per_step=2",
        "train.micro_batch=2",
        "rl.num_generations=2",
        "rl.max_completion_length=6",
        "train.eval_every=0",
        "data.probe_size=0",
        f"train.max_steps={steps}",
        *extra,
    ]


def one_line(capsys, code: int, exit_code: int = 2, *, after_logs: bool = False) -> str:
    """The one error line (after the run's time-stamped log lines, where `after_logs`)."""
    err = capsys.readouterr().err.strip()
    assert code == exit_code, err
    lines = err.splitlines()
    assert "Traceback" not in err and (after_logs or len(lines) == 1), err
    assert not any(line.startswith("error") for line in lines[:-1]), err
    return lines[-1]


# ------------------------------------------------------------------ Ctrl-C during `mr1 eval`


def test_ctrl_c_during_eval_exits_130_and_writes_nothing(tiny_model_dir, tmp_path):
    out = tmp_path / "eval-out"
    argv = [sys.executable, "-m", "mr1cli", "eval", "--checkpoint", str(tiny_model_dir), "--task", "counting"]
    argv += ["--output", str(out), "data.test=synthetic:counting-test-300", "eval.batch_size=4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    seen = []
    while not any("evaluating" in line for line in seen):  # the line before the first batch
        line = process.stderr.readline()
        assert line, f"eval ended before it started evaluating: {seen}"
        seen.append(line)
    process.send_signal(signal.SIGINT)
    out_text, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: stopped after ") and "of 300 examples; nothing was written" in last
    assert "Traceback" not in err and out_text == ""
    assert not (out / "metrics.json").exists() and not (out / "predictions.jsonl").exists()


# ------------------------------------------------------------------ a full disk during a checkpoint


def _safetensors_full(*args, **kwargs):
    from safetensors import SafetensorError

    raise SafetensorError(
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
    )


def _os_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("fault", [_safetensors_full, _os_full], ids=["SafetensorError", "OSError"])
def test_disk_full_while_saving_weights_is_one_line_and_keeps_the_previous_checkpoint(
    fault, tiny_model_dir, tmp_path, cache, capsys, monkeypatch
):
    import transformers.modeling_utils as modeling

    real_save, calls = modeling.safe_save_file, []

    def full_on_second(*args, **kwargs):
        calls.append(1)
        return fault(*args, **kwargs) if len(calls) == 2 else real_save(*args, **kwargs)

    monkeypatch.setattr(modeling, "safe_save_file", full_on_second)
    run = tmp_path / "run"
    code = main([*TRAIN, "--output", str(run), *small(tiny_model_dir, 4, "train.save_every=1")])
    err = one_line(capsys, code, after_logs=True)
    assert err == f"error: could not write checkpoint {run}/checkpoints/step-000002: No space left on device"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-000001"]  # no .tmp-step-*
    verify_checkpoint(run / "checkpoints" / "step-000001")
    assert not (run / "final").exists() and not RunDir(run).is_done()


# ------------------------------------------------------------------ a bit-flipped checkpoint


def _checkpoints(model_dir: Path, run: Path, steps: int) -> list[Path]:
    """`steps` real checkpoints of `model_dir` (its files, a manifest) in an unfinished run folder."""
    run.mkdir()
    overrides = [f"model.name_or_path={model_dir}", "data.test=synthetic:counting-test-8"]
    cfg = load_config(method="sft", task="counting", overrides=overrides)
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    (run / "env.json").write_text("{}")
    save = lambda folder: shutil.copytree(model_dir, folder, dirs_exist_ok=True)  # noqa: E731
    return [write_checkpoint(run / "checkpoints", s, save, {"step": s}, {}) for s in range(1, steps + 1)]


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_eval_refuses_a_bit_flipped_checkpoint_and_names_the_previous_one(tiny_model_dir, tmp_path, capsys):
    older, newest = _checkpoints(tiny_model_dir, tmp_path / "run", 2)
    _flip_a_bit(newest / "model.safetensors")
    argv = ["eval", "--checkpoint", str(newest), "--task", "counting", "--output", str(tmp_path / "ev")]
    err = one_line(capsys, main(argv), after_logs=True)
    assert err == (
        f"error: checkpoint file corrupt (checksum mismatch): {newest}/model.safetensors; "
        f"the previous checkpoint verifies: --checkpoint {older}"
    )
    assert not (tmp_path / "ev").exists()
    with pytest.raises(CheckpointError, match=f"delete {newest} to resume from step-000001, which verifies"):
        resume_point(RunDir(tmp_path / "run"))
    _flip_a_bit(
        older / "model.safetensors"
    )  # nothing left to fall back on: the error says only what is wrong
    with pytest.raises(CheckpointError) as error:
        resume_point(RunDir(tmp_path / "run"))
    assert str(error.value) == f"checkpoint file corrupt (checksum mismatch): {newest}/model.safetensors"
    assert list_checkpoints(tmp_path / "run" / "checkpoints") == [older, newest]


# ------------------------------------------------------------------ the hub out of reach

COUNT_CONNECTS = """
import socket, sys
attempts = []
real_connect = socket.socket.connect
def counted(self, address):
    attempts.append(address)
    return real_connect(self, address)
socket.socket.connect = counted
from mr1cli.cli import main
from mr1cli.config_loading import load_config
codes = [main(argv) for argv in ({argvs})]
print(len(attempts), *codes)
"""


def _closed_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on: connections are refused at once
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_paper_profile_with_the_hub_out_of_reach_probes_once_and_says_so_once(tmp_path):
    """HF_HUB_OFFLINE unset, the hub unreachable: a hub dataset (the paper profile's training set)
    then a hub model cost one connection attempt in all (it was five retries per file, each warning
    printed twice, about 25 s) and one warning line, and each fails with its one-line error."""
    argvs = [
        [*TRAIN, "--profile", "paper", "--output", str(tmp_path / "run")],
        ["export", "--checkpoint", "Qwen/Qwen2-VL-2B-Instruct", "--out", str(tmp_path / "exported")],
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env |= {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", "HF_HOME": str(tmp_path / "hf")}
    script = COUNT_CONNECTS.format(argvs=", ".join(map(repr, argvs)))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    attempts, *codes = done.stdout.split()
    lines = done.stderr.strip().splitlines()
    assert (attempts, codes) == ("1", ["2", "2"]), done.stderr
    assert [line for line in lines if "cannot be reached; using the local" in line] == [lines[0]], lines
    assert lines[0].endswith("the hub (127.0.0.1) cannot be reached; using the local Hugging Face cache only")
    assert lines[1:] == [
        "error: dataset leonardPKU/clevr_cogen_a_train is not in the local Hugging Face cache, and the hub "
        "(127.0.0.1) cannot be reached from here; download it on a machine with network or pass a local path",
        "error: Qwen/Qwen2-VL-2B-Instruct: not a local folder, not in the local Hugging Face cache, and the hub "
        "(127.0.0.1) cannot be reached from here; download it on a machine with network or pass a local "
        "checkpoint folder",
    ]
    assert not (tmp_path / "run").exists() and not (tmp_path / "exported").exists()


# ------------------------------------------------------------------ bytes that are not UTF-8


def test_a_row_that_is_not_utf8_is_named_and_skippable(tmp_path, capsys):
    write_png(tmp_path / "images" / "a.png", (32, 32))
    rows = [
        json.dumps({"image_path": "./images/a.png", "question": COUNT_QUESTION, "ground_truth": n}).encode()
        for n in (1, 2, 3)
    ]
    rows[1] = rows[1].replace(b"How many", b"How m\xffny")
    data = tmp_path / "test.jsonl"
    data.write_bytes(b"\n".join(rows) + b"\n")
    with pytest.raises(DataError) as error:
        load_split(str(data), task="counting")
    assert str(error.value) == f"{data}: row 2: field 'question': not UTF-8 text (byte 0xff at character 6)"
    loaded = load_split(str(data), task="counting", skip_bad=True)
    assert [ex.truth for ex in loaded.examples] == ["1", "3"] and loaded.skipped == 1
    assert main(["data", "check", str(data), "--task", "counting", "--skip-bad"]) == 0
    assert "skipped 1 bad rows (--skip-bad)" in capsys.readouterr().err


# ------------------------------------------------------------------ MR1_CACHE naming a file


@pytest.mark.parametrize("below", [False, True], ids=["the-file", "below-the-file"])
def test_mr1_cache_naming_a_file_is_an_error_naming_mr1_cache(below, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cache = blocker / "cache" if below else blocker
    monkeypatch.setenv("MR1_CACHE", str(cache))
    err = one_line(capsys, main(["data", "check", "synthetic:counting-test-4", "--task", "counting"]))
    where = f"cannot be created: {blocker} is a file" if below else "is a file"
    assert (
        err
        == f"error: MR1_CACHE={cache} {where}; point MR1_CACHE at a folder (or unset it for the default cache)"
    )
    assert blocker.read_text() == "x"
