"""Frictions a new user met (issue 24, section 4): wrong suggestions, lines that broke when copied,
a read-only command that waited on a build, a misnamed file, a missing next step, mixed units, a
wild first ETA, results written into the shared cache."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from mr1cli.cli import app, main
from mr1cli.data.synthetic import write_split
from mr1cli.training import progress as progress_module
from mr1cli.training.progress import TrainingProgress, metrics_text

ROOT = Path(__file__).resolve().parents[2]
GRPO = ["train", "--method", "grpo", "--task", "counting"]


def err_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


# ------------------------------------------------------------------ "did you mean"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*GRPO, "rl.betta=0.1"], "unknown config key 'rl.betta' (did you mean 'rl.kl.beta'?)"),
        ([*GRPO, "rl.temprature=1"], "unknown config key 'rl.temprature' (did you mean 'rl.temperature'?)"),
        ([*GRPO, "rl.gamma=0.9"], "unknown config key 'rl.gamma' (`mr1 config` lists every key)"),
        ([*GRPO, "rl.seed=3"], "unknown config key 'rl.seed' (did you mean 'train.seed'?)"),
        (
            [*GRPO, "train.lr=1e-5"],
            "unknown config key 'train.lr' (did you mean 'train.learning_rate' or 'train.lr_scheduler'?)",
        ),
        (
            ["plan", "--method", "grpo-d", "--task", "counting", "--gpu", "h100"],
            "unknown GPU kind 'h100' (did you mean 'h100-80gb' or 'h100-pcie'?)",
        ),
        (
            ["train", "--method", "grpo_d", "--task", "counting"],
            "unknown method 'grpo_d' (did you mean 'grpo-d'?)",
        ),
    ],
)
def test_suggestions_name_what_was_meant(argv, message, capsys):
    assert main(argv) == 2
    assert err_lines(capsys) == [f"error: {message}"]


def test_the_readme_example_is_what_mr1_prints(capsys):
    section = (ROOT / "README.md").read_text().split("## The command line", 1)[1].split("\n## ", 1)[0]
    command, printed = re.search(r"^\$ (mr1 .+)\n(error: .+)$", section, re.MULTILINE).groups()
    assert main(shlex.split(command)[1:]) == 2
    assert err_lines(capsys) == [printed]


def test_one_suggestion_function_for_every_check():
    """Every "did you mean" comes from core/registry.did_you_mean (no second difflib anywhere)."""
    others = [
        path.relative_to(ROOT)
        for path in (ROOT / "mr1cli").rglob("*.py")
        if path.name != "registry.py" and re.search(r"difflib|\(did you mean", path.read_text())
    ]
    assert others == []


# ------------------------------------------------------------------ lines to copy, at 80 columns


def _commands() -> list[list[str]]:
    group = typer.main.get_command(app)
    found = []
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        found += [[name, sub] for sub in subcommands] if subcommands else [[name]]
    return found


def _epilog(argv: list[str]) -> str:
    command = typer.main.get_command(app)
    for name in argv:
        command = command.commands[name]
    return command.epilog or ""


@pytest.mark.parametrize("argv", _commands(), ids=" ".join)
def test_help_examples_are_whole_lines_at_80_columns(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    examples = [
        line.strip() for line in _epilog(argv).splitlines() if line.strip().startswith(("mr1 ", "accel"))
    ]
    assert examples, f"mr1 {' '.join(argv)} --help has no examples"
    assert main([*argv, "--help"]) == 0
    shown = {line.strip() for line in capsys.readouterr().out.splitlines()}
    assert [line for line in examples if line not in shown] == []


def test_train_ends_with_the_final_model_and_the_eval_to_run_next(
    tiny_model_dir, tmp_path, cache, capsys, monkeypatch
):
    """At 80 columns, in a folder whose name has a space: whole lines, quoted paths, and the next
    command runs as printed."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "my runs" / "sft counting"
    small = [f"model.name_or_path={tiny_model_dir}", "data.train=synthetic:counting-warmup-8"]
    small += ["data.test=synthetic:counting-test-4", "data.probe_size=0", "train.max_steps=2"]
    assert main(["train", "--method", "sft", "--task", "counting", "--output", str(run), *small]) == 0
    lines = err_lines(capsys)
    final, metrics = shlex.quote(str(run / "final")), shlex.quote(str(run / "metrics.jsonl"))
    assert lines[-2:] == [
        f"final model: {final}  (metrics: {metrics})",
        f"next: mr1 eval --checkpoint {shlex.quote(str(run))} --task counting",
    ]
    assert main(shlex.split(lines[-1].removeprefix("next: "))[1:]) == 0
    assert len(list((run / "final" / "eval").glob("counting-test-*/metrics.json"))) == 1


def test_config_fits_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["config"]) == 0
    wide = [line for line in capsys.readouterr().out.splitlines() if len(line) > 80]
    assert wide and all(re.match(r"^[a-z_.]+ = [\[{]", line) for line in wide), wide  # only whole key = list


# ------------------------------------------------------------------ `mr1 status`: read-only, never waits

HOLD_LOCK = """
import sys
from mr1cli.data.cache import build_lock
with build_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_status_never_waits_on_a_build_and_fits_80_columns(cache, capsys, monkeypatch):
    from mr1cli.experiments.launch.status import status_rows
    from mr1cli.zoo import builds

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, builds.tiny_base_dir().name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"  # another process is building the tiny base
        tried = []
        monkeypatch.setattr(builds, "build_lock", lambda name: tried.append(name) or 1 / 0)
        monkeypatch.setenv("COLUMNS", "80")
        assert main(["status", "exp3-same-task"]) == 0
        assert tried == []  # never asked for the lock, so it cannot have waited for it
    finally:
        holder.communicate("")
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "seed" in lines[2]
    rows = status_rows("exp3-same-task", profile="tiny", seeds=0)
    for run, seed, *_ in rows:  # every run name whole on its row, with its seed
        assert any(re.search(rf"\b{re.escape(run)} +│ +{seed} +│", line) for line in lines), run
    assert {row[1] for row in rows if row[0].startswith("grpo-d")} == {
        "0",
        "1",
        "2",
    }  # the tiny profile's 3 seeds


# ------------------------------------------------------------------ `data make --split heldout`


def test_data_make_heldout_writes_heldout_jsonl(tmp_path, capsys):
    out = tmp_path / "counting-heldout"
    assert (
        main(["data", "make", "--task", "counting", "--split", "heldout", "--n", "3", "--out", str(out)]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["heldout.jsonl", "images", "meta.json"]
    assert len((out / "heldout.jsonl").read_text().splitlines()) == 3
    assert main(["data", "make", "--help"]) == 0
    assert "heldout" in capsys.readouterr().out
    # a held-out set written before (as test.jsonl) is still found, not refused as a different set
    (out / "heldout.jsonl").rename(out / "test.jsonl")
    meta = json.loads((out / "meta.json").read_text()) | {"data_file": "test.jsonl"}
    (out / "meta.json").write_text(json.dumps(meta))
    assert write_split("counting", "heldout", n=3, seed=0, out_dir=out) == out / "test.jsonl"


# ------------------------------------------------------------------ progress lines


def test_every_accuracy_in_a_progress_line_is_a_percentage():
    metrics = {"reward/mean": 1.2, "reward/accuracy": 0.516, "eval/accuracy": 62.5, "probe/accuracy": 50.0}
    assert metrics_text(metrics) == "reward 1.2  train_reward_acc 51.6%  test_acc 62.5%  probe_acc 50.0%"


def test_the_first_eta_leaves_out_the_first_steps_warm_up(monkeypatch):
    """A first step of 60 s (loading, first allocations) then steps of 1 s, 1000 steps: the rate
    from the start gave an ETA of 16:39:00 after step 1 (999 steps at 1/60 steps/s); now there is
    none until two steps after the first are timed, then 0:16:37 (997 steps at 1 step/s)."""
    clock = iter([0.0, 60.0, 61.0, 62.0])
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    with TrainingProgress("base", total=1000, start=0, stream=stream, every_steps=1) as bar:
        for step in (1, 2, 3):
            bar.update(step, {})
    assert stream.getvalue().splitlines() == [
        "[base] step 1/1000 (0%)  ? steps/s  ETA ?",
        "[base] step 2/1000 (0%)  ? steps/s  ETA ?",
        "[base] step 3/1000 (0%)  1 steps/s  ETA 0:16:37",
    ]


# ------------------------------------------------------------------ eval results beside you, not in the cache


def test_eval_of_a_model_in_the_cache_writes_under_the_working_folder(
    tiny_model_dir, tmp_path, cache, capsys, monkeypatch
):
    in_cache = cache / "models" / "tiny-copy"
    shutil.copytree(tiny_model_dir, in_cache)
    monkeypatch.chdir(tmp_path)
    argv = [
        "eval",
        "--checkpoint",
        str(in_cache),
        "--task",
        "counting",
        "data.test=synthetic:counting-test-4",
    ]
    assert main(argv) == 0
    written = sorted((tmp_path / "results" / "eval" / "models--tiny-copy").glob("counting-test-*/*"))
    assert [p.name for p in written] == ["metrics.json", "predictions.jsonl"]
    assert not (in_cache / "eval").exists()
    wrote = [line for line in err_lines(capsys) if line.startswith("wrote ")]
    assert wrote == [
        f"wrote {Path('results/eval/models--tiny-copy') / p.parent.name / p.name}" for p in written[::-1]
    ]
