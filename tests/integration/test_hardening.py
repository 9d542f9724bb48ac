"""Faults injected on purpose: full disks, non-finite numbers, hostile files. mr1 must stop
with one clear line, keep the last good checkpoint and results, and never run foreign code."""

from __future__ import annotations

import errno
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image
from support import tiny_grpo_config

from mr1cli.cli import main
from mr1cli.config_loading import load_config
from mr1cli.core.errors import CheckpointError, Mr1Error, TrainingHalted
from mr1cli.files import atomic_write_text
from mr1cli.training import run_training
from mr1cli.training.checkpoints import latest_checkpoint, verify_checkpoint
from mr1cli.training.run_dir import RunDir

SOURCE = Path(__file__).resolve().parents[2] / "mr1cli"


def tiny_grpo(model_dir, *extra):
    return tiny_grpo_config(
        model_dir,
        "train.micro_batch=4",
        "rl.num_generations=2",
        "rl.max_completion_length=8",
        "train.eval_every=0",
        *extra,
    )


# ------------------------------------------------------------------ disk faults


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(cache, tiny_model_dir, tmp_path, monkeypatch):
    from mr1cli.training import checkpoints as checkpoint

    real_save = checkpoint.torch.save
    calls = {"n": 0}

    def full_on_second(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", full_on_second)
    with pytest.raises(CheckpointError, match="No space left on device"):
        run_training(
            tiny_grpo(tiny_model_dir, "train.max_steps=4", "train.save_every=1"), output_dir=tmp_path / "run"
        )
    run = RunDir(tmp_path / "run")
    survivor = latest_checkpoint(run.checkpoints)
    assert survivor is not None and survivor.name == "step-000001"
    verify_checkpoint(survivor)
    assert not list(run.checkpoints.glob(".tmp-*")) and not run.is_done()


def test_disk_full_while_writing_results_keeps_the_old_file(tmp_path, monkeypatch):
    table = tmp_path / "table.md"
    atomic_write_text(table, "old results\n")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("mr1cli.training.run_dir.os.fsync", no_space)
    with pytest.raises(Mr1Error, match=r"could not write .*table\.md: No space left on device"):
        atomic_write_text(table, "new results\n")
    assert table.read_text() == "old results\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]


# ------------------------------------------------------------------ numerical faults


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("reward", "step 1: a reward is not finite"),
        ("logits", "step 1: the loss is not finite"),
        ("gradient", "step 1: the gradient is not finite"),
    ],
)
def test_non_finite_numbers_stop_grpo_with_the_step_named(
    cache, tiny_model_dir, tmp_path, monkeypatch, fault, message
):
    from mr1cli.tasks import rewards
    from mr1cli.training.recipes import grpo

    state = {"step": 0}
    original_step = grpo.GRPORecipe.train_step

    def tracking_step(self, step, indices):
        state["step"] = step
        return original_step(self, step, indices)

    monkeypatch.setattr(grpo.GRPORecipe, "train_step", tracking_step)
    if fault == "reward":
        accuracy = rewards.REWARDS.get("accuracy")
        monkeypatch.setitem(
            rewards.REWARDS._entries,
            "accuracy",
            lambda c, t, **kw: float("inf") if state["step"] == 1 else accuracy(c, t, **kw),
        )
    elif fault == "logits":
        real = grpo.sequence_log_probs

        def poisoned(model, batch, **kwargs):
            out = real(model, batch, **kwargs)
            return out * float("nan") if state["step"] == 1 and out.requires_grad else out

        monkeypatch.setattr(grpo, "sequence_log_probs", poisoned)
    else:
        real_clip = grpo.GRPORecipe._clip
        monkeypatch.setattr(
            grpo.GRPORecipe, "_clip", lambda self: float("nan") if state["step"] == 1 else real_clip(self)
        )
        accuracy = rewards.REWARDS.get("accuracy")
        flip = {"n": 0}

        def varied(c, t, **kw):  # guarantee non-zero advantages so that an update happens
            flip["n"] += 1
            return float(flip["n"] % 2)

        monkeypatch.setitem(rewards.REWARDS._entries, "accuracy", varied)
    if fault == "logits":
        monkeypatch.setitem(rewards.REWARDS._entries, "accuracy", lambda c, t, **kw: float(len(c) % 2))
    with pytest.raises(TrainingHalted, match=message):
        run_training(
            tiny_grpo(tiny_model_dir, "train.max_steps=3", "train.save_every=1"), output_dir=tmp_path / "run"
        )
    verify_checkpoint(latest_checkpoint(RunDir(tmp_path / "run").checkpoints))
    assert latest_checkpoint(RunDir(tmp_path / "run").checkpoints).name == "step-000001"


def test_non_finite_gradient_stops_sft(cache, tiny_model_dir, tmp_path, monkeypatch):
    from mr1cli.training.recipes import sft

    monkeypatch.setattr(sft.SFTRecipe, "_clip", lambda self: float("nan"))
    cfg = load_config(
        method="sft",
        task="counting",
        profile="tiny",
        overrides=[
            f"model.name_or_path={tiny_model_dir}",
            "data.train=synthetic:counting-warmup-8",
            "train.max_steps=2",
            "train.eval_every=0",
        ],
    )
    with pytest.raises(TrainingHalted, match="step 0: the gradient is not finite"):
        run_training(cfg, output_dir=tmp_path / "run")


# ------------------------------------------------------------------ bad input catalogue


def _png(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 90, 200)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _catalogue(tmp: Path, tiny_model_dir: Path) -> dict[str, tuple[list[str], str]]:
    """Every class of bad input → (command line, what its one-line error must say)."""
    _png(tmp / "images" / "ok.png", (64, 64))
    _png(tmp / "images" / "thin.png", (4000, 10))
    (tmp / "images" / "text.png").write_text("not an image")
    row = {
        "image_path": "./images/ok.png",
        "question": "How many items are there in the image?",
        "ground_truth": 3,
    }
    files = {
        "missing_column": _jsonl(tmp / "a.jsonl", [{"image_path": "./images/ok.png", "ground_truth": 3}]),
        "wrong_type": _jsonl(tmp / "b.jsonl", [{**row, "question": 42}]),
        "empty_question": _jsonl(tmp / "c.jsonl", [{**row, "question": " "}]),
        "huge_question": _jsonl(tmp / "d.jsonl", [{**row, "question": "x" * 30_000}]),
        "non_image": _jsonl(tmp / "e.jsonl", [{**row, "image_path": "./images/text.png"}]),
        "unparseable_truth": _jsonl(tmp / "f.jsonl", [{**row, "ground_truth": "many"}]),
        "escaping_path": _jsonl(tmp / "g.jsonl", [{**row, "image_path": "../../etc/passwd"}]),
        "extreme_aspect": _jsonl(tmp / "h.jsonl", [{**row, "image_path": "./images/thin.png"}]),
    }
    (tmp / "gpt2").mkdir()
    (tmp / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    check = ["data", "check"]
    train = ["train", "--method", "grpo", "--task", "counting"]
    model = f"model.name_or_path={tiny_model_dir}"
    return {
        "missing column": ([*check, files["missing_column"], "--task", "counting"], "field 'question'"),
        "wrong type": (
            [*check, files["wrong_type"], "--task", "counting"],
            "field 'question': expected text",
        ),
        "empty question": ([*check, files["empty_question"], "--task", "counting"], "empty question"),
        "huge question": ([*check, files["huge_question"], "--task", "counting"], "over the limit"),
        "non-image file": ([*check, files["non_image"], "--task", "counting"], "not a readable image"),
        "unparseable truth": (
            [*check, files["unparseable_truth"], "--task", "counting"],
            "field 'ground_truth'",
        ),
        "path escaping the image root": (
            [*check, files["escaping_path"], "--task", "counting"],
            "image root",
        ),
        "extreme aspect ratio": (
            [
                "eval",
                "--checkpoint",
                str(tiny_model_dir),
                "--task",
                "counting",
                f"data.test={files['extreme_aspect']}",
            ],
            "aspect ratio 4000x10",
        ),
        "unknown config key": ([*train, "rl.gamma=0.9"], "unknown config key 'rl.gamma'"),
        "wrong value type": ([*train, "rl.num_generations=eight"], "expected an integer"),
        "G < 2": ([*train, "rl.num_generations=1"], "num_generations (G) must be >= 2"),
        "negative beta": ([*train, "rl.kl.beta=-0.01"], "rl.kl.beta must be >= 0"),
        "temperature 0 with G > 1": ([*train, "rl.temperature=0"], "rl.temperature must be > 0"),
        "missing data file": ([*train, model, f"data.train={tmp / 'nope.parquet'}"], "nope.parquet"),
        "checkpoint of another architecture": (
            ["eval", "--checkpoint", str(tmp / "gpt2"), "--task", "counting"],
            "not a supported vision-language architecture",
        ),
        "missing checkpoint": (["eval", "--checkpoint", str(tmp / "absent"), "--task", "counting"], "absent"),
    }


CATALOGUE_NAMES = [
    "missing column",
    "wrong type",
    "empty question",
    "huge question",
    "non-image file",
    "unparseable truth",
    "path escaping the image root",
    "extreme aspect ratio",
    "unknown config key",
    "wrong value type",
    "G < 2",
    "negative beta",
    "temperature 0 with G > 1",
    "missing data file",
    "checkpoint of another architecture",
    "missing checkpoint",
]


@pytest.mark.parametrize("name", CATALOGUE_NAMES)
def test_bad_input_catalogue(name, tmp_path, tiny_model_dir, cache, capsys):
    argv, message = _catalogue(tmp_path, tiny_model_dir)[name]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and err.splitlines()[-1] == error_lines[0], err


# ------------------------------------------------------------------ security


def _sources() -> list[tuple[Path, str]]:
    return [(path, path.read_text()) for path in SOURCE.rglob("*.py")]


def test_no_unsafe_deserialisation_or_code_evaluation():
    for path, text in _sources():
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call.group(1), f"{path}: torch.load without weights_only=True"
        assert not re.search(r"\bpickle\.loads?\(", text), path
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), f"{path}: eval/exec"
        assert "trust_remote_code=True" not in text, path


def test_trust_remote_code_is_opt_in():
    assert load_config(method="grpo", task="counting", profile="paper").model.trust_remote_code is False
    assert load_config(method="grpo", task="counting").model.trust_remote_code is False
