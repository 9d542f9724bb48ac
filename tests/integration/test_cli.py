"""The console script's contract: six commands, one-line errors, honest exit codes."""

import json
import subprocess
import sys

import pytest

from mr1cli.cli import main

COMMANDS = ["train", "eval", "reproduce", "data", "figures", "bench"]


def test_help_lists_the_six_commands():
    result = subprocess.run(
        [sys.executable, "-m", "mr1cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in COMMANDS:
        assert f" {command} " in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out
    if command not in ("data", "bench"):
        assert "Example" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--method", "grpo-d", "--task", "countng"], "did you mean 'counting'"),
        (["train", "--method", "ppo", "--task", "counting"], "unknown method 'ppo'"),
        (
            ["train", "--method", "grpo", "--task", "counting", "rl.kl.beta=x"],
            "rl.kl.beta: expected a number",
        ),
    ],
)
def test_user_mistakes_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_show_config_prints_the_resolved_config(capsys):
    assert (
        main(["train", "--method", "grpo-d", "--task", "geometry", "--show-config", "rl.kl.beta_max=0.03"])
        == 0
    )
    out = capsys.readouterr().out
    assert "beta_max: 0.03" in out and "method: grpo-d" in out


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["train", "--methd", "grpo"]) == 2


def test_data_make_check_show_end_to_end(tmp_path, capsys):
    out = tmp_path / "counting-test"
    assert main(["data", "make", "--task", "counting", "--split", "test", "--n", "6", "--out", str(out)]) == 0
    data_file = out / "test.jsonl"
    assert data_file.is_file() and len(data_file.read_text().splitlines()) == 6
    assert main(["data", "check", str(data_file), "--task", "counting"]) == 0
    assert "examples" in capsys.readouterr().out
    sheet = tmp_path / "sheet.png"
    assert main(["data", "show", str(data_file), "--task", "counting", "--out", str(sheet), "--n", "4"]) == 0
    assert sheet.stat().st_size > 1000
    (out / "images" / sorted(p.name for p in (out / "images").iterdir())[0]).write_bytes(b"not a png")
    assert main(["data", "check", str(data_file), "--task", "counting"]) == 2
    err = capsys.readouterr().err
    assert "test.jsonl: row 1: field 'image_path'" in err and "Traceback" not in err


def test_train_eval_on_the_command_line(tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("MR1_CACHE", str(tmp_path / "cache"))
    common = [
        f"model.name_or_path={tiny_model_dir}",
        "data.train=synthetic:counting-warmup-8",
        "data.test=synthetic:counting-test-8",
        "train.max_steps=2",
        "train.eval_every=0",
    ]
    run = tmp_path / "run"
    assert main(["train", "--method", "sft", "--task", "counting", "--output", str(run), *common]) == 0
    assert (run / "done.json").is_file() and (run / "final" / "model.safetensors").is_file()
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(run),
                "--task",
                "counting",
                "--output",
                str(tmp_path / "ev"),
                *common[1:3],
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert summary["n"] == 8 and summary["scoring"] == "r1v"
    assert main(["eval", "--checkpoint", str(tmp_path / "nope"), "--task", "counting", *common[1:3]]) == 2
