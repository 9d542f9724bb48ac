"""A new user's first day (issue 16): every command says what it did and never succeeds on nothing.

One test per class: path options (directory / missing / unwritable), empty input or absent run,
Ctrl-C, resume traps, plain progress off a terminal, the cache, eval provenance, discoverability.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import sigint_as_at_a_terminal

from mr1cli.cli import main
from mr1cli.data.cache import build_lock, default_cache_dir

TRAIN = ["train", "--method", "grpo-d", "--task", "counting"]


def small(model_dir: Path, steps: int = 2) -> list[str]:
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
        f"train.max_steps={steps}",
    ]


def one_line_error(capsys, code: int, expected: str = "", exit_code: int = 2) -> str:
    err = capsys.readouterr().err.strip()
    assert code == exit_code, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error:") and expected in err, err
    return err


# ------------------------------------------------------------------ 1. path options


def _path_cases(tmp: Path) -> dict[str, list[str]]:
    folder, missing, blocked = tmp / "a-folder", tmp / "missing", tmp / "a-file" / "below"
    folder.mkdir()
    (tmp / "a-file").write_text("x")
    src = "synthetic:counting-test-4"
    return {
        "data show --out DIR": ["data", "show", src, "--task", "counting", "--out", str(folder)],
        "data show --out unwritable": [
            "data",
            "show",
            src,
            "--task",
            "counting",
            "--out",
            str(blocked / "s.png"),
        ],
        "data show --image-root missing": [
            "data",
            "show",
            src,
            "--task",
            "counting",
            "--image-root",
            str(missing),
        ],
        "data check --image-root file": [
            "data",
            "check",
            src,
            "--task",
            "counting",
            "--image-root",
            str(tmp / "a-file"),
        ],
        "data make --out file": [
            "data",
            "make",
            "--task",
            "counting",
            "--split",
            "test",
            "--n",
            "2",
            "--out",
            str(tmp / "a-file"),
        ],
        "data make --out unwritable": [
            "data",
            "make",
            "--task",
            "counting",
            "--split",
            "test",
            "--n",
            "2",
            "--out",
            str(blocked),
        ],
        "train --config DIR": [*TRAIN, "--config", str(folder)],
        "train --config missing": [*TRAIN, "--config", str(missing)],
        "train --output file": [*TRAIN, "--output", str(tmp / "a-file")],
        "train --output unwritable": [*TRAIN, "--output", str(blocked)],
        "eval --rescore DIR": ["eval", "--task", "counting", "--rescore", str(folder)],
        "eval --rescore missing": ["eval", "--task", "counting", "--rescore", str(missing)],
        "eval --output unwritable": [
            "eval",
            "--task",
            "counting",
            "--checkpoint",
            "x",
            "--output",
            str(blocked),
        ],
        "eval --checkpoint missing": ["eval", "--task", "counting", "--checkpoint", str(missing)],
        "figures --results missing": ["figures", "--results", str(missing)],
        "config --config DIR": ["config", "--config", str(folder)],
    }


CASES = [
    "data show --out DIR",
    "data show --out unwritable",
    "data show --image-root missing",
    "data check --image-root file",
    "data make --out file",
    "data make --out unwritable",
    "train --config DIR",
    "train --config missing",
    "train --output file",
    "train --output unwritable",
    "eval --rescore DIR",
    "eval --rescore missing",
    "eval --output unwritable",
    "eval --checkpoint missing",
    "figures --results missing",
    "config --config DIR",
]


@pytest.mark.parametrize("case", CASES)
def test_every_path_option_is_checked(case, tmp_path, capsys):
    argv = _path_cases(tmp_path)[case]
    one_line_error(capsys, main(argv))


def test_any_os_error_naming_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    from mr1cli.data import dataset_commands

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.png"))

    monkeypatch.setattr(dataset_commands, "show_dataset", refuse)
    code = main(
        ["data", "show", "synthetic:counting-test-4", "--task", "counting", "--out", str(tmp_path / "x.png")]
    )
    one_line_error(capsys, code, "x.png: Permission denied")


# ------------------------------------------------------------------ 2. nothing to do


def test_commands_refuse_to_succeed_on_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "empty.jsonl").write_text("")
    cases = [
        (["figures", "--results", str(tmp_path / "none")], "no such folder"),
        (["figures", "--results", str(empty)], "no results to draw"),
        ([*TRAIN, "--resume", "--output", str(tmp_path / "never")], "no run in"),
        (["reproduce", "exp3-same-task", "--seeds", "-1"], "--seeds must be >= 1"),
        (["reproduce", "exp3-same-task", "--seeds", "0"], "--seeds must be >= 1"),
        ([*TRAIN, "train.max_steps=-3"], "train.max_steps must be >= 0"),
        (["eval", "--task", "counting", "--rescore", str(tmp_path / "empty.jsonl")], "no completions"),
        (["eval", "--task", "counting", "--checkpoint", "tiny", "--limit", "-5"], "--limit must be >= 0"),
        (["data", "show", str(tmp_path / "empty.jsonl"), "--task", "counting"], "no rows"),
    ]
    for argv, expected in cases:
        one_line_error(capsys, main(argv), expected)
    assert not (tmp_path / "none").exists() and not any(empty.iterdir())
    assert not (tmp_path / "never").exists()


# ------------------------------------------------------------------ 3-5. Ctrl-C, resume, progress


@pytest.fixture(scope="module")
def interrupted(tiny_model_dir, tmp_path_factory):
    """A training run stopped with SIGINT once its first progress line is out; stdout is a pipe."""
    run = tmp_path_factory.mktemp("ctrl-c") / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MR1_PROGRESS_SECONDS": "1"}
    argv = [sys.executable, "-m", "mr1cli", *TRAIN, "--output", str(run), *small(tiny_model_dir, 400)]
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    first = process.stdout.readline()  # blocks until the first plain progress line
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=120)
    return {"run": run, "code": process.returncode, "stdout": first + rest, "stderr": err}


def test_ctrl_c_exits_130_with_a_checkpoint_and_the_resume_command(interrupted):
    assert interrupted["code"] == 130, interrupted["stderr"]
    last = interrupted["stderr"].strip().splitlines()[-1]
    assert last.startswith("interrupted: stopped after step") and "checkpoint written" in last
    assert f"--output {interrupted['run']} --resume" in last and "mr1 train --method grpo-d" in last
    assert list((interrupted["run"] / "checkpoints").glob("step-*"))
    assert not (interrupted["run"] / "run.lock").exists()


def test_plain_progress_lines_off_a_terminal(interrupted):
    line = interrupted["stdout"].splitlines()[0]
    assert line.startswith("[grpo-d counting] step 1/400"), interrupted["stdout"]
    for part in ("steps/s", "ETA", "reward", "train_reward_acc", "beta", "kl"):
        assert part in line, line
    assert " accuracy " not in line


def test_eval_refuses_an_unfinished_run_and_names_the_checkpoint(interrupted, capsys):
    code = main(["eval", "--task", "counting", "--checkpoint", str(interrupted["run"])])
    err = one_line_error(capsys, code, "has not finished")
    assert "--checkpoint " + str(interrupted["run"] / "checkpoints" / "step-") in err


def test_failed_start_leaves_nothing_and_a_finished_run_no_lock(tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(
        [*TRAIN, "--output", str(run), *small(tiny_model_dir), "data.train=" + str(tmp_path / "no.jsonl")]
    )
    one_line_error(capsys, code, "no.jsonl")
    assert not run.exists()
    assert main([*TRAIN, "--output", str(run), *small(tiny_model_dir, 1)]) == 0
    assert (run / "done.json").is_file() and not (run / "run.lock").exists()


def test_missing_optional_package_fails_before_anything_is_written(tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "tensorboard" else find_spec(n, *a)
    )
    code = main([*TRAIN, "--output", str(tmp_path / "run"), "train.report_to=tensorboard"])
    one_line_error(capsys, code, "tensorboard")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ 6. cache


def test_cache_is_per_user_and_builds_wait_for_each_other(tmp_path, monkeypatch):
    monkeypatch.delenv("MR1_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform != "darwin":
        assert default_cache_dir() == tmp_path / "xdg" / "mr1"
    monkeypatch.setenv("MR1_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    order = []

    def second_job() -> None:
        with build_lock("tiny-base-x"):
            order.append("second")

    with build_lock("tiny-base-x"):
        waiter = threading.Thread(target=second_job)
        waiter.start()
        time.sleep(0.3)
        order.append("first done")
    waiter.join(5)
    assert order == ["first done", "second"]


# ------------------------------------------------------------------ 7. eval provenance


def test_eval_records_provenance_and_keeps_each_test_set(tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TRAIN, "--output", str(run), *small(tiny_model_dir, 1)]) == 0
    assert main(["eval", "--task", "counting", "--checkpoint", str(run)]) == 0  # the run's own config
    assert "using the run's own config" in capsys.readouterr().err
    assert (
        main(["eval", "--task", "counting", "--checkpoint", str(run), "data.test=synthetic:counting-test-6"])
        == 0
    )
    folders = sorted((run / "final" / "eval").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("counting-test-") for f in folders)
    sources = set()
    for folder in folders:
        provenance = json.loads((folder / "metrics.json").read_text())["provenance"]
        assert provenance["checkpoint"] == str(run) and provenance["run_config"] == str(run / "config.json")
        assert provenance["settings"]["scoring"] == "r1v" and len(provenance["test_hash"]) == 16
        row = json.loads((folder / "predictions.jsonl").read_text().splitlines()[0])
        assert row["test_hash"] == provenance["test_hash"] and row["checkpoint"] == str(run)
        sources.add(provenance["test_source"])
    assert sources == {"synthetic:counting-test-8", "synthetic:counting-test-6"}


# ------------------------------------------------------------------ 8-10. help, smaller (offline: test_faults.py)


def test_help_is_honest(capsys):
    assert main(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    assert "rl.beta" not in out and "<bool>" not in out and "placeholders" in out
    assert main(["config", "--method", "grpo", "--task", "geometry", "rl.kl.beta=0.02"]) == 0
    out = capsys.readouterr().out
    assert (
        "rl.kl = {'name': 'constant', 'beta': 0.02}\n" in out and "    default {}; set by key=value\n" in out
    )
    assert "rl.max_completion_length = 112\n" in out
    assert "    default 512; set by profile tiny: base\n" in out


def test_contact_sheet_format_follows_the_suffix(tmp_path):
    sheet = tmp_path / "sheet.jpg"
    assert (
        main(
            [
                "data",
                "show",
                "synthetic:counting-test-4",
                "--task",
                "counting",
                "--out",
                str(sheet),
                "--n",
                "2",
            ]
        )
        == 0
    )
    assert sheet.read_bytes()[:2] == b"\xff\xd8"  # JPEG
