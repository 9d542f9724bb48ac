"""The console script's contract: six commands, one-line errors, honest exit codes."""

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
        (["train", "--method", "grpo", "--task", "counting", "rl.beta=x"], "rl.beta: expected a number"),
    ],
)
def test_user_mistakes_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_show_config_prints_the_resolved_config(capsys):
    assert (
        main(["train", "--method", "grpo-d", "--task", "geometry", "--show-config", "rl.beta_max=0.03"]) == 0
    )
    out = capsys.readouterr().out
    assert "beta_max: 0.03" in out and "method: grpo-d" in out


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["train", "--methd", "grpo"]) == 2
