"""`mr1 reproduce --dry-run`: every row's state (base rows included) and the estimate of the time
left, from step times and evaluation times measured on earlier runs, never from a guess."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from support import write_mini_experiment

from mr1cli.config import PROFILES_DIR
from mr1cli.experiments.plan_status import plan_work
from mr1cli.experiments.specs import load_spec, plan
from mr1cli.experiments.units import base_home, eval_dir
from mr1cli.training.run_dir import default_run_dir


def jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def planned(tmp_path, monkeypatch):
    specs = write_mini_experiment(tmp_path, tmp_path / "model", train="max_steps: 4")
    monkeypatch.setenv("MR1_EXPERIMENTS_DIR", str(specs))
    monkeypatch.setenv("MR1_PROFILES_DIR", str(specs / "profiles"))
    monkeypatch.setenv("MR1_RUNS", str(tmp_path / "runs"))
    return plan(load_spec("exp3-same-task"), "mini", seeds=1)  # base, sft, grpo-d on counting


def test_states_and_the_measured_estimate(planned, tmp_path):
    _, sft, grpo_d = planned
    home, built = base_home("mini", "counting")  # a local model folder needs no building
    assert built and home is not None
    base_eval = eval_dir(home, "mini", "counting")
    base_eval.mkdir(parents=True)
    (base_eval / "metrics.json").write_text("{}")
    (base_eval / "timing.json").write_text('{"seconds": 7.0}')  # one measured evaluation: 7 s
    (default_run_dir(sft.config) / "done.json").parent.mkdir(parents=True)
    (default_run_dir(sft.config) / "done.json").write_text("{}")  # trained, not evaluated
    jsonl(
        default_run_dir(grpo_d.config) / "metrics.jsonl", [{"step": 0}, {"step": 1, "perf/step_seconds": 2.0}]
    )
    # the results of an earlier reproduce: grpo-d's 4 steps took 2 s each, so 3 steps are left: 6 s
    curves = tmp_path / "results" / "exp3-same-task" / "curves"
    jsonl(curves / "index.jsonl", [{"run": grpo_d.name, "method": "grpo-d", "train_task": "counting"}])
    jsonl(curves / f"{grpo_d.name}.jsonl", [{"step": s, "perf/step_seconds": 2.0} for s in range(1, 5)])

    work = plan_work(planned, "mini", tmp_path / "results")

    assert work.states == ["done", "to evaluate", "partial (step 1)"]
    assert work.seconds == pytest.approx(7.0 + 6.0 + 7.0) and not work.untimed
    assert work.summary() == "estimate: about 0:00:20 (h:mm:ss) of work, measured on earlier runs"


def test_work_without_measured_times_is_counted_not_guessed(planned, tmp_path):
    work = plan_work(planned, "mini", tmp_path / "results")
    assert work.states == ["to evaluate", "to train", "to train"]
    assert work.seconds == 0 and dict(work.untimed) == {"evaluations": 3, "training runs": 2}
    assert work.summary() == "estimate: not counted, no time measured yet: 3 evaluations, 2 training runs"


def test_a_tiny_base_to_build_counts_the_build_time_recorded_with_its_hash(planned, tmp_path, monkeypatch):
    profiles = Path(os.environ["MR1_PROFILES_DIR"])
    for recipe in ("tiny-base", "tiny-base-long"):
        shutil.copy(PROFILES_DIR / f"{recipe}.yaml", profiles)
    (profiles / "mini-long.yaml").write_text(
        "extends: mini\nbase:\n  model: {name_or_path: tiny-base-long}\n"
    )
    monkeypatch.setenv("MR1_CACHE", str(tmp_path / "empty-cache"))
    recorded = json.loads((PROFILES_DIR / "tiny-base-long.expected.json").read_text())["build_seconds"]

    work = plan_work(
        plan(load_spec("exp3-same-task"), "mini-long", seeds=1), "mini-long", tmp_path / "results"
    )

    assert work.states == ["to build + eval", "to train", "to train"]
    assert work.seconds == recorded == 3516  # 58 min 36 s, once for the base, not per evaluation
    assert dict(work.untimed) == {"evaluations": 3, "training runs": 2}
