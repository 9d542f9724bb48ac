"""Exp3, same-task performance (paper Table 1): base, SFT, GRPO and GRPO-D trained and tested on
each task. Its table gives the paper's Table 1 beside ours, its claims that GRPO-D beats GRPO and
SFT and that RL beats the base model, its figures the paper's figure 1 and Table 1 as bars."""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from mr1cli.reporting.figure_kit import COLORS, LABELS, PAPER, Inputs, base_line, new_figure, seed_mean
from mr1cli.reporting.learning_curves import learning_curves
from mr1cli.reporting.paper_figures import beta_schedules, method_bars
from mr1cli.reporting.records import PAPER_MODEL, method_order, paper_number
from mr1cli.reporting.report import Paper, Report, Row
from mr1cli.reporting.statistics import relative_change
from mr1cli.reporting.verdicts import Claim, points_text
from mr1cli.tasks import TASKS


def paper_columns(row: Row, paper: Paper) -> dict[str, float]:
    """Table 1's accuracy for the row's method and task, and its relative changes."""
    table1 = (paper.get("exp3-same-task") or {}).get(PAPER_MODEL, {}).get(row["eval_task"], {})
    accuracy = {method: paper_number(table1, method) for method in method_order()}
    return {
        "paper_accuracy": accuracy.get(row["method"], math.nan),
        "vs_base": relative_change(accuracy.get(row["method"], math.nan), accuracy["base"]),
        "grpo_d_vs_this": relative_change(accuracy["grpo-d"], accuracy.get(row["method"], math.nan)),
    }


def claims(records: pd.DataFrame, paper: Paper) -> list[Claim]:
    """Exp3 (Table 1): GRPO-D beats GRPO and SFT on each task; GRPO and GRPO-D beat the base model,
    on the shifted test set and on the held-out set."""
    claims = []
    for task in dict.fromkeys(records["eval_task"]):
        table1 = {m: paper_number(paper, "exp3-same-task", PAPER_MODEL, task, m) for m in LABELS}
        side = {m: {"method": m, "train_task": task, "eval_task": task} for m in LABELS}
        side["base"] = {"method": "base", "eval_task": task}
        for reference in ("grpo", "sft"):
            text = f"GRPO-D > {LABELS[reference]}, same task: {task}"
            paper_text = points_text(table1["grpo-d"], table1[reference])
            claims.append(Claim(text, paper_text, side["grpo-d"], side[reference], +1))
        for method in ("grpo", "grpo-d"):
            text = f"{LABELS[method]} > base: {task}"
            paper_text = points_text(table1[method], table1["base"])
            claims.append(Claim(text, paper_text, side[method], side["base"], +1))
            claims.append(
                Claim(f"{text}, held-out set", "— (test set only)", side[method], side["base"], +1, "heldout")
            )
    return claims


def _steps_text(steps: list[int]) -> str:
    """When an accuracy was scored during training, for a figure's title.

    >>> _steps_text([0, 20, 40]), _steps_text(list(range(0, 100, 10)))
    ('at steps 0, 20, 40', 'at 10 steps')
    """
    return f"at steps {', '.join(str(s) for s in steps)}" if len(steps) <= 6 else f"at {len(steps)} steps"


def fig1_accuracy_during_training(inputs: Inputs) -> Figure | None:
    """Paper figure 1: accuracy of SFT and GRPO (and GRPO-D) over training steps, per task. The paper
    plots test accuracy (ours when the runs logged `eval/accuracy`, train.eval_every); otherwise this
    draws what the runs did score: the unshifted held-out probe (`probe/accuracy`), and says so."""
    curves = inputs.curves
    metric = next(
        (
            m
            for m in ("eval/accuracy", "probe/accuracy")
            if curves is not None and m in curves and curves[m].notna().any()
        ),
        None,
    )
    if metric is None:
        return None
    on_test = metric == "eval/accuracy"
    tasks = [t for t in TASKS.names() if curves.loc[curves["train_task"] == t, metric].notna().any()]
    which = "test" if on_test else "held-out probe"
    steps = _steps_text(sorted(int(s) for s in set(curves.dropna(subset=[metric])["step"])))
    title = f"Figure 1 — {which} accuracy during training ({steps}), SFT vs GRPO — {inputs.ours}"
    if not on_test:
        title += "\nthe paper plots test accuracy; these runs scored the unshifted held-out probe (data.probe_size)"
    fig, axes = new_figure(len(tasks), title, height=4.2 if on_test else 4.5)
    for ax, task in zip(axes, tasks, strict=True):
        for method in ("sft", "grpo", "grpo-d"):
            runs = curves[(curves["train_task"] == task) & (curves["method"] == method)]
            stats = seed_mean(runs, metric) if len(runs) else None
            if stats is None or stats.empty:
                continue
            ax.plot(
                stats["step"], stats["mean"], marker="o", ms=3, color=COLORS[method], label=LABELS[method]
            )
            ax.fill_between(stats["step"], stats["min"], stats["max"], color=COLORS[method], alpha=0.15)
        if inputs.table is not None and on_test:  # the probe's step 0 is the base already
            base_line(ax, inputs.table, task, "before training")
        ax.set(title=f"trained and tested on {task}", xlabel="training step (optimizer steps)")
        ax.set(ylabel=f"{which} accuracy (%)")
        ax.legend(title="mean over seeds (band: min–max)", fontsize=8, title_fontsize=8)
    return fig


def table1_same_task(inputs: Inputs) -> Figure | None:
    """Paper Table 1 as bars: same-task test accuracy per method and task."""
    present = set(inputs.table["eval_task"]) if inputs.table is not None else set()
    groups = [(f"trained and tested on {task}", task, task) for task in TASKS.names() if task in present]
    return method_bars(
        inputs, groups, f"Table 1 — same-task accuracy — {inputs.ours} vs paper", PAPER + ", Table 1"
    )


REPORT = Report(
    name="exp3-same-task",
    title="Exp3 — same-task accuracy (paper Table 1)",
    paper_section="exp3-same-task",
    paper_columns=paper_columns,
    claims=claims,
    figures={
        "fig1_accuracy_during_training": fig1_accuracy_during_training,
        "learning_curves": learning_curves,
        "table1_same_task": table1_same_task,
        "beta_schedules": beta_schedules,
    },
)
