"""The CLI starts without torch: `--help`, `--version`, `config`, `status`, `figures` and every mistake
on the command line run in a fresh interpreter, and torch, transformers and accelerate are still not
imported after each (their import alone takes seconds; a typo should cost a fraction of one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import write_mini_experiment

from mr1cli import __version__

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "accelerate")
# Runs each command line through the console entry point in ONE interpreter and reports, after each,
# its exit code, the first line it wrote on stderr and which heavy modules are imported by then.
PROBE = f"""
import contextlib, io, json, sys
from mr1cli.cli import main
report = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(err):
        code = main(argv)
    heavy = [m for m in {HEAVY!r} if m in sys.modules]
    lines = (err.getvalue() or out.getvalue()).strip().splitlines()
    report.append({{"argv": argv, "code": code, "first": lines[0] if lines else "", "heavy": heavy}})
print(json.dumps(report))
"""


def probe(argvs: list[list[str]], cwd: Path, **env: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argvs)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_help_version_config_figures_and_mistakes_start_without_torch(tmp_path):
    results = tmp_path / "results"
    (results / "exp2-cross-task").mkdir(parents=True)
    for name in ("records.jsonl", "spec.json"):
        shutil.copy(REPO / "results" / "exp2-cross-task" / name, results / "exp2-cross-task" / name)
    report = probe(
        [
            ["--help"],
            ["--version"],
            ["config", "--method", "grpo", "--task", "geometry"],
            ["figures", "--results", str(results)],
            ["config", "--method", "grpo_d"],
            ["config", "rl.betta=0.02"],
            ["train", "--method", "grpo", "--task", "countng"],
            ["eval", "--task", "geometry", "--checkpoint", "tiny-base", "eval.batch_sise=2"],
            ["reproduce", "exp2-cross-tsk"],
            ["plan", "--method", "sft"],
            ["base", "tiny-bse"],
        ],
        tmp_path,
    )
    assert [(r["code"], r["heavy"]) for r in report] == [(0, [])] * 4 + [(2, [])] * 7, report
    first = [r["first"] for r in report]
    assert first[1] == f"mr1 {__version__}"
    assert first[4].startswith("error: unknown method 'grpo_d'")
    assert first[5].startswith("error: unknown config key 'rl.betta'")
    assert first[6].startswith("error: unknown task 'countng'")
    assert first[7].startswith("error: unknown config key 'eval.batch_sise'")
    assert first[8].startswith("error: unknown experiment 'exp2-cross-tsk'")
    assert first[10] == "error: unknown tiny base 'tiny-bse' (did you mean 'tiny-base'?)"
    assert (results / "exp2-cross-task" / "figures" / "fig7_cross_task.png").is_file()


def test_status_starts_without_torch(tmp_path):
    specs = write_mini_experiment(tmp_path, tmp_path / "no-model-needed", train="max_steps: 2")
    [status] = probe(
        [["status", "exp3-same-task", "--profile", "mini"]],
        tmp_path,
        MR1_EXPERIMENTS_DIR=str(specs),
        MR1_PROFILES_DIR=str(specs / "profiles"),
        MR1_RUNS=str(tmp_path / "runs"),
    )
    assert (status["code"], status["heavy"]) == (0, []), status
