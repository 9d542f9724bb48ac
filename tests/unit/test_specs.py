"""Experiment specs: every key is checked (a misspelled one is an error with a "did you mean", never
ignored), and the report a spec names is the registered module that writes its table and figures."""

from __future__ import annotations

import json

import pytest
import yaml

from mr1cli.config import EXPERIMENTS_DIR
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.experiments import reproduce
from mr1cli.experiments.specs import PlannedRun, check_spec, list_experiments, load_spec
from mr1cli.reporting.reports import REPORTS


def spec(**changes):
    base = yaml.safe_load((EXPERIMENTS_DIR / "exp2-cross-task.yaml").read_text())
    return {**base, **changes}


def test_every_paper_experiment_names_its_own_report():
    assert list_experiments() == ["exp1-format-reward", "exp2-cross-task", "exp3-same-task"]
    for name in list_experiments():
        assert load_spec(name)["report"] == name and REPORTS.get(name).name == name


def test_a_misspelled_grid_key_is_an_error_with_did_you_mean():
    grid = {**spec()["grids"][0]}
    grid["evalute_on"] = grid.pop("evaluate_on")
    with pytest.raises(
        ConfigError,
        match=r"x.yaml, grid cross-task: unknown key 'evalute_on' \(did you mean 'evaluate_on'\?\)",
    ):
        check_spec(spec(grids=[grid]), "x.yaml")


def test_a_misspelled_top_level_key_and_the_old_table_key_are_errors():
    with pytest.raises(ConfigError, match=r"unknown key 'seed' \(did you mean 'seeds'\?\)"):
        check_spec(spec(seed={"tiny": 1}), "x.yaml")
    old = spec(table="cross-task")
    del old["report"]
    with pytest.raises(ConfigError, match=r"x.yaml: 'table' is now report \(e.g. report: exp3-same-task\)"):
        check_spec(old, "x.yaml")


def test_the_report_and_its_figures_are_checked():
    with pytest.raises(
        ConfigError, match=r"unknown report 'exp2-cross-tsk' \(did you mean 'exp2-cross-task'\?\)"
    ):
        check_spec(spec(report="exp2-cross-tsk"), "x.yaml")
    with pytest.raises(
        ConfigError,
        match=r"report 'exp2-cross-task' draws no figure 'fig7_cross_tsk' \(did you mean 'fig7_cross_task'\?\)",
    ):
        check_spec(spec(figures=["fig7_cross_tsk"]), "x.yaml")
    assert check_spec(spec(figures=["fig7_cross_task"]), "x.yaml")["figures"] == ["fig7_cross_task"]


def test_results_keep_only_the_curves_of_planned_runs(tmp_path, monkeypatch):
    """A rerun under a changed profile or spec drops the curve copies of runs it no longer plans (the
    runs themselves stay in their run directories); the planned runs' curves are written fresh."""
    cfg = load_config(method="grpo-d", task="counting", profile="tiny")
    run_dir = tmp_path / "runs" / cfg.run_name()
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')
    monkeypatch.setattr(reproduce, "default_run_dir", lambda config: tmp_path / "runs" / config.run_name())
    curves = tmp_path / "results" / "exp3-same-task" / "curves"
    curves.mkdir(parents=True)
    (curves / "grpo-d-counting-0123456789ab.jsonl").write_text('{"step": 1}\n')  # an earlier profile's run
    planned = [PlannedRun("same-task", "grpo-d", "counting", 0, {}, ("counting",), cfg)]
    reproduce.write_results("exp3-same-task", {}, planned, [], tmp_path / "results")
    assert {f.name for f in curves.iterdir()} == {"index.jsonl", f"{cfg.run_name()}.jsonl"}
    assert json.loads((curves / "index.jsonl").read_text())["run"] == cfg.run_name()
