"""A miniature experiment end to end: plan, train, evaluate, report; rerun reuses; a killed
reproduce continues."""

from __future__ import annotations

import json

import pytest
from support import write_mini_experiment

from mr1cli.experiments import reproduce as experiments

pytestmark = pytest.mark.slow


@pytest.fixture
def mini(tmp_path, monkeypatch, tiny_model_dir):
    train = "max_steps: 2, prompts_per_step: 4, micro_batch: 4, learning_rate: 1.0e-3, eval_every: 1"
    specs = write_mini_experiment(tmp_path, tiny_model_dir, train=train)
    profile = specs / "profiles" / "mini.yaml"  # with a held-out set: every model is evaluated on both
    profile.write_text(
        profile.read_text().replace("test-8}", "test-8, heldout: synthetic:counting-heldout-6}")
    )
    monkeypatch.setenv("MR1_EXPERIMENTS_DIR", str(specs))
    monkeypatch.setenv("MR1_PROFILES_DIR", str(specs / "profiles"))
    monkeypatch.setenv("MR1_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MR1_RUNS", str(tmp_path / "runs"))
    return tmp_path


def test_mini_experiment_runs_reuses_and_continues(mini, monkeypatch):
    results = mini / "results"
    [out] = experiments.reproduce(
        "exp3-same-task", profile="mini", seeds=0, dry_run=False, results_root=results
    )
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in records) == ["base", "grpo-d", "sft"]
    assert all(0.0 <= r["accuracy"] <= 100.0 and 0.0 <= r["heldout_accuracy"] <= 100.0 for r in records)
    assert all(len(r["test_correct"]) == 8 and len(r["heldout_correct"]) == 6 for r in records)
    assert (out / "table.md").is_file() and (out / "table.csv").is_file()
    assert "ours held-out acc. %" in (out / "table.md").read_text()
    summary = (results / "summary.md").read_text()
    assert "| GRPO-D > SFT, same task: counting |" in summary and "Not run: exp2-cross-task" in summary
    curves = [json.loads(line) for line in (out / "curves" / "index.jsonl").read_text().splitlines()]
    assert {c["method"] for c in curves} == {"sft", "grpo-d"}

    # A second reproduce trains nothing: every run is found finished and every evaluation reused.
    from mr1cli.training import train as run

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(run, "_build_recipe", no_training)
    experiments.reproduce("exp3-same-task", profile="mini", seeds=0, dry_run=False, results_root=results)
    again = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert again == records
    monkeypatch.undo()


def test_interrupted_reproduce_continues(mini, monkeypatch):
    from mr1cli.training.recipes import grpo

    original = grpo.GRPORecipe.train_step

    def crash(self, step, indices):
        if step == 1:
            raise KeyboardInterrupt
        return original(self, step, indices)

    monkeypatch.setattr(grpo.GRPORecipe, "train_step", crash)
    results = mini / "results"
    with pytest.raises(KeyboardInterrupt):
        experiments.reproduce("exp3-same-task", profile="mini", seeds=0, dry_run=False, results_root=results)
    monkeypatch.setattr(grpo.GRPORecipe, "train_step", original)
    [out] = experiments.reproduce(
        "exp3-same-task", profile="mini", seeds=0, dry_run=False, results_root=results
    )
    assert len((out / "records.jsonl").read_text().splitlines()) == 3
