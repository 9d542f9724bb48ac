"""The learning-curves figure from hand-written run logs: the curves it plots against hand-computed
means and bands, the base level, the PNG written through an experiment spec."""

from __future__ import annotations

import json
import math

import pytest

from mr1cli.reporting.figure_kit import load_curves
from mr1cli.reporting.figures import make_figures
from mr1cli.reporting.learning_curves import base_levels, learning_curve_data

T975_DF2 = 4.302653  # t(0.975, 2)


def run(method: str, task: str, seed: int, *rows: dict) -> tuple[str, str, int, list[dict]]:
    return method, task, seed, list(rows)


# run name → (method, task, seed, the rows of its metrics.jsonl)
RUNS = {
    "grpo-c0": run(
        "grpo",
        "counting",
        0,
        {"step": 0, "probe/accuracy": 40.0},
        {"step": 1, "reward/accuracy": 0.25, "reward/mean": 1.25},
        {"step": 2, "reward/accuracy": 0.5, "reward/mean": 1.5, "probe/accuracy": 50.0},
    ),
    "grpo-c1": run(
        "grpo",
        "counting",
        1,
        {"step": 0, "probe/accuracy": 40.0},
        {"step": 1, "reward/accuracy": 0.75, "reward/mean": 1.75},
        {"step": 2, "reward/accuracy": 0.5, "reward/mean": 1.5, "probe/accuracy": 60.0},
    ),
    **{
        f"grpo-d-c{seed}": run(
            "grpo-d",
            "counting",
            seed,
            {"step": 0, "probe/accuracy": 40.0},
            {"step": 1, "reward/accuracy": reward, "reward/mean": reward + 1.0},
            {"step": 2, "reward/accuracy": 0.5, "reward/mean": 1.5, "probe/accuracy": probe},
        )
        for seed, (reward, probe) in enumerate([(0.1, 44.0), (0.2, 50.0), (0.9, 56.0)])
    },
    **{
        f"sft-c{seed}": run(
            "sft",
            "counting",
            seed,
            {"step": 0, "probe/accuracy": 40.0},
            {"step": 1, "loss": 2.0},
            {"step": 2, "loss": 1.0, "probe/accuracy": probe},
        )
        for seed, probe in enumerate([20.0, 10.0])
    },
    # a run logged before the accuracy component and the probe existed: its total reward is drawn
    "grpo-g0": run("grpo", "geometry", 0, {"step": 1, "reward/mean": 1.5}, {"step": 2, "reward/mean": 1.75}),
}

SPEC = {
    "name": "exp-curves",
    "report": "exp3-same-task",
    "figures": ["learning_curves"],
    "grids": [{"name": "same-task", "methods": ["sft", "grpo", "grpo-d"], "tasks": ["counting", "geometry"]}],
}


@pytest.fixture
def results(tmp_path):
    """A results folder whose `exp-curves/curves/` holds RUNS' metrics logs, and the saved spec (as
    `mr1 reproduce` writes it) naming its report and the one figure to draw."""
    curves = tmp_path / "results" / "exp-curves" / "curves"
    curves.mkdir(parents=True)
    (curves.parent / "spec.json").write_text(json.dumps(SPEC))
    index = []
    for name, (method, task, seed, rows) in RUNS.items():
        (curves / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        index.append({"run": name, "method": method, "train_task": task, "setting": {}, "seed": seed})
    (curves / "index.jsonl").write_text("".join(json.dumps(row) + "\n" for row in index))
    return tmp_path / "results"


def plotted(data, task, panel, line):
    rows = data[(data["task"] == task) & (data["panel"] == panel) & (data["line"] == line)]
    return [(r.step, r.mean, r.low, r.high, r.band, r.seeds) for r in rows.sort_values("step").itertuples()]


def test_curves_are_seed_means_with_min_max_or_ci_bands_inside_the_metric_range(results):
    data = learning_curve_data(load_curves(results, "exp-curves"))
    assert plotted(data, "counting", "reward", "GRPO") == [
        (1, 0.5, 0.25, 0.75, "min–max", 2),
        (2, 0.5, 0.5, 0.5, "min–max", 2),
    ]
    assert plotted(data, "counting", "probe", "GRPO") == [
        (0, 40.0, 40.0, 40.0, "min–max", 2),
        (2, 55.0, 50.0, 60.0, "min–max", 2),
    ]
    assert plotted(data, "counting", "probe", "SFT") == [
        (0, 40.0, 40.0, 40.0, "min–max", 2),
        (2, 15.0, 10.0, 20.0, "min–max", 2),
    ]
    # 3 seeds: mean ± t(0.975, 2) · s / √3. Probe at step 2: 44, 50, 56 → s = 6, half = 14.905.
    # Reward at step 1: 0.1, 0.2, 0.9 → mean 0.4, s = √0.19, half = 1.0828: clipped to [0, 1].
    (step1, _), (step0, step2) = (
        plotted(data, "counting", "reward", "GRPO-D"),
        plotted(data, "counting", "probe", "GRPO-D"),
    )
    half = T975_DF2 * 6.0 / math.sqrt(3)
    assert step0 == (0, 40.0, 40.0, 40.0, "95 % CI", 3)
    assert step2[:4] == pytest.approx((2, 50.0, 50.0 - half, 50.0 + half)) and step2[4:] == ("95 % CI", 3)
    assert step1[:4] == pytest.approx((1, 0.4, 0.0, 1.0)) and step1[4:] == ("95 % CI", 3)
    assert plotted(data, "counting", "reward", "SFT") == []  # SFT logs no training reward
    geometry = data[data["task"] == "geometry"]
    assert list(geometry["metric"]) == ["reward/mean", "reward/mean"]  # no accuracy component logged
    assert plotted(data, "geometry", "reward", "GRPO") == [
        (1, 1.5, 1.5, 1.5, "min–max", 1),
        (2, 1.75, 1.75, 1.75, "min–max", 1),
    ]
    assert base_levels(load_curves(results, "exp-curves")) == {"counting": 40.0}


def test_learning_curves_figure_is_written_through_the_saved_spec(results):
    written = make_figures(results, "exp-curves")
    figures = results / "exp-curves" / "figures"
    assert written == [figures / "learning_curves.png", figures / "learning_curves.svg"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = written[1].read_text()
    assert "counting: held-out probe accuracy" in svg and "base model (step 0)" in svg
    assert "geometry: held-out probe accuracy" in svg and "no probe logged" in svg
