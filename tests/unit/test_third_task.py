"""Nothing assumes two tasks: a toy third task registered from this test module alone goes through the
exp2 grid's planning (every trained model tested on each other task, a base evaluation per task),
the grid's units, and the cross-task table and figure 7 (one group per direction)."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image

from mr1cli.core.answer_format import answer_span
from mr1cli.core.task import SyntheticGenerator, Task
from mr1cli.experiments import units
from mr1cli.experiments.specs import load_spec, plan
from mr1cli.reporting.figure_kit import Inputs
from mr1cli.reporting.records import load_paper_numbers
from mr1cli.reporting.reports import REPORTS
from mr1cli.reporting.tables import build_table
from mr1cli.tasks import TASKS


class Parity(Task):
    """Is the number of dots even or odd? (Only what planning and reporting read is real.)"""

    name = "parity"
    train_template = eval_template = "{question} Answer in <answer> </answer> tags."
    eval_max_new_tokens = 8
    synthetic = SyntheticGenerator(
        lambda rng, split: None, lambda spec, size: Image.new("RGB", (size, size)), str
    )
    kl_defaults = {"constant": {"beta": 0.02}, "dynamic": {"beta_min": 0.01, "beta_max": 0.03}}  # noqa: RUF012

    def parse_truth(self, raw: object) -> str:
        return str(raw)

    def extract_answer(self, completion: str, mode: str) -> str | None:
        return answer_span(completion)

    def is_correct(self, completion: str, truth: str, mode: str) -> bool:
        return self.extract_answer(completion, mode) == truth


@pytest.fixture
def three_tasks():
    TASKS.add("parity", Parity())
    yield ["counting", "geometry", "parity"]
    TASKS.remove("parity")


def test_the_cross_task_grid_plans_every_direction_over_three_tasks(three_tasks, monkeypatch):
    spec = load_spec("exp2-cross-task")
    spec["grids"][0]["tasks"] = three_tasks
    planned = plan(spec, "tiny", seeds=1)
    trained = [(run.method, run.train_task, run.eval_tasks) for run in planned if run.config is not None]
    assert trained == [
        (method, task, tuple(t for t in three_tasks if t != task))
        for task in three_tasks
        for method in ("sft", "grpo", "grpo-d")
    ]
    assert {run.config.task for run in planned if run.config is not None} == set(three_tasks)
    assert sorted(run.eval_tasks for run in planned if run.config is None) == [
        ("counting",),
        ("counting",),
        ("geometry",),
        ("geometry",),
        ("parity",),
        ("parity",),
    ]  # each task's base evaluation, once per direction into it (the units keep one)
    monkeypatch.setattr(units, "resolve_model", lambda name, cfg=None: name)  # no base model is built
    grid = units.grid_units(planned, "tiny")
    assert [u.name for u in grid if u.config is None] == ["base/geometry", "base/parity", "base/counting"]
    assert len({u.home for u in grid if u.config is None}) == 1  # one base model, one folder
    assert [u.eval_tasks for u in grid if u.config is not None][:3] == [("geometry", "parity")] * 3


def test_the_cross_task_table_and_figure_pair_rows_by_direction(three_tasks):
    rows = []
    for test in three_tasks:
        rows.append({"grid": "cross-task", "method": "base", "eval_task": test, "accuracy": 40.0})
        for shift, train in enumerate(t for t in three_tasks if t != test):
            for method, accuracy in (("sft", 10.0), ("grpo-d", 50.0 + shift)):
                rows.append(
                    {
                        "grid": "cross-task",
                        "method": method,
                        "train_task": train,
                        "eval_task": test,
                        "accuracy": accuracy,
                    }
                )
    report = REPORTS.get("exp2-cross-task")
    table = build_table(report, pd.DataFrame(rows), load_paper_numbers()).set_index(
        ["train_task", "eval_task", "method"]
    )
    # each SFT row is compared with the GRPO-D row of its own direction (50 or 51), not the first found
    assert table.loc[("counting", "parity", "sft"), "grpo_d_vs_this_ours_pct"] == pytest.approx(400.0)
    assert table.loc[("geometry", "parity", "sft"), "grpo_d_vs_this_ours_pct"] == pytest.approx(410.0)
    # the base row cannot say which direction's GRPO-D it is compared with: no number rather than a wrong one
    assert pd.isna(table.loc[("", "parity", "base"), "grpo_d_vs_this_ours_pct"])
    assert table.loc[("", "geometry", "base"), "paper_accuracy"] == 15.52  # the paper's own direction
    figure = report.figures["fig7_cross_task"](Inputs(table.reset_index(), None, "ours"))
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert labels == [f"trained on {a} → tested on {b}" for a in three_tasks for b in three_tasks if a != b]
