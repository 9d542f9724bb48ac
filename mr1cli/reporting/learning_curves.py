"""Learning curves: per task, the training reward of the RL methods and the held-out probe accuracy of
every method against the optimizer step, mean over seeds with a band, the base model's probe level dashed.

With μ = 1 the GRPO loss says nothing about progress (ρ ≡ 1), so these two curves are the learning
signal: the reward on the training rollouts, and greedy accuracy on an unshifted held-out probe
(`data.probe_size` examples of `data.heldout`, logged as `probe/accuracy` at step 0 and every
`train.eval_every` steps). Drawn from each experiment's `curves/` (copies of its runs' metrics.jsonl).
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mr1cli.reporting.figure_kit import COLORS, LABELS, Inputs, legend_below
from mr1cli.reporting.statistics import mean_ci
from mr1cli.tasks import TASKS

PROBE = "probe/accuracy"
REWARDS = ("reward/accuracy", "reward/mean")  # the accuracy component; the weighted total when absent
# each metric's possible range: a band never reaches outside it
BOUNDS = {PROBE: (0.0, 100.0), "reward/accuracy": (0.0, 1.0), "reward/mean": (0.0, math.inf)}
MIN_SEEDS_FOR_CI = 3  # a 95 % t-interval of 2 seeds is ±12.7 standard errors: min–max instead
PANELS = {"reward": "training reward", "probe": "held-out probe accuracy"}
Y_LABELS = {
    PROBE: "probe accuracy (%)",
    "reward/accuracy": "accuracy reward per completion (0–1)",
    "reward/mean": "total reward per completion",
}


def seed_band(values: list[float], bounds: tuple[float, float]) -> tuple[float, float, float, str]:
    """Mean over seeds and a band: the 95 % CI of the mean from 3 seeds on, else min–max; clipped to bounds.

    >>> seed_band([40.0, 50.0], (0.0, 100.0))
    (45.0, 40.0, 50.0, 'min–max')
    >>> [round(v, 3) if isinstance(v, float) else v for v in seed_band([1.0, 2.0, 3.0], (0.0, 100.0))]
    [2.0, 0.0, 4.484, '95 % CI']
    """
    if len(values) >= MIN_SEEDS_FOR_CI:
        mean, half = mean_ci(values)
        low, high, kind = mean - half, mean + half, "95 % CI"
    else:
        mean, low, high, kind = sum(values) / len(values), min(values), max(values), "min–max"
    return mean, max(low, bounds[0]), min(high, bounds[1]), kind


def _line_label(method: str, setting: str) -> str:
    name = LABELS.get(method, method)
    return f"{name} ({setting})" if setting else name


def _reward_metric(runs: pd.DataFrame) -> str | None:
    for metric in REWARDS:
        if metric in runs and runs[metric].notna().any():
            return metric
    return None


def learning_curve_data(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves the figure draws: one row per (task, panel, line, step) with the metric, the mean
    over seeds, the band (`low`, `high`, `band`: "95 % CI" or "min–max") and the number of seeds.

    A line is a method at one setting of the experiment's varied keys. The reward panel holds the
    methods whose runs log a training reward; the probe panel every method that logged a probe.
    """
    rows = []
    for (task, method, setting), runs in curves.groupby(
        ["train_task", "method", "setting_label"], sort=False
    ):
        for panel, metric in (("reward", _reward_metric(runs)), ("probe", PROBE)):
            if metric is None or metric not in runs:
                continue
            for step, at_step in runs.dropna(subset=[metric]).groupby("step"):
                values = [float(v) for v in at_step[metric]]
                mean, low, high, band = seed_band(values, BOUNDS[metric])
                rows.append(
                    {
                        "task": task,
                        "panel": panel,
                        "metric": metric,
                        "method": method,
                        "line": _line_label(method, setting),
                        "step": int(step),
                        "mean": mean,
                        "low": low,
                        "high": high,
                        "band": band,
                        "seeds": len(values),
                    }
                )
    columns = ["task", "panel", "metric", "method", "line", "step", "mean", "low", "high", "band", "seeds"]
    return pd.DataFrame(rows, columns=columns)


def base_levels(curves: pd.DataFrame) -> dict[str, float]:
    """Per task, the probe accuracy at step 0 (the base model, before any update), mean over runs."""
    if PROBE not in curves:
        return {}
    base = curves[(curves["step"] == 0)].dropna(subset=[PROBE])
    return {str(task): float(rows[PROBE].mean()) for task, rows in base.groupby("train_task")}


def _draw_panel(ax: Axes, data: pd.DataFrame, colors: dict[str, str]) -> None:
    for line, rows in data.groupby("line", sort=False):
        rows = rows.sort_values("step")
        color = colors[line]
        marker = "o" if len(rows) <= 12 else None
        ax.plot(rows["step"], rows["mean"], color=color, marker=marker, ms=3, lw=1.4, label=line)
        ax.fill_between(rows["step"], rows["low"], rows["high"], color=color, alpha=0.15, lw=0)


def _line_colors(data: pd.DataFrame) -> dict[str, str]:
    """A method's own colour while it has one line; tab10 colours when settings split a method."""
    lines = data.drop_duplicates("line")[["line", "method"]]
    if lines["method"].is_unique and set(lines["method"]) <= set(COLORS):
        return dict(zip(lines["line"], lines["method"].map(COLORS), strict=True))
    return {line: f"C{i % 10}" for i, line in enumerate(lines["line"])}


def learning_curves(inputs: Inputs) -> Figure | None:
    """Training reward (RL methods) and held-out probe accuracy (every method) per task over steps."""
    if inputs.curves is None:
        return None
    data = learning_curve_data(inputs.curves)
    if data.empty:
        return None
    bases = base_levels(inputs.curves)
    tasks = [t for t in TASKS.names() if t in set(data["task"])]
    colors = _line_colors(data)
    fig = Figure(figsize=(11.0, 3.8 * len(tasks) + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(
        f"Learning curves — training reward and held-out probe accuracy — {inputs.ours}", fontsize=12
    )
    grid = fig.subplots(len(tasks), len(PANELS), squeeze=False)
    bands = sorted(set(data["band"]))
    for axes, task in zip(grid, tasks, strict=True):
        for ax, (panel, what) in zip(axes, PANELS.items(), strict=True):
            rows = data[(data["task"] == task) & (data["panel"] == panel)]
            ax.set(title=f"{task}: {what}", xlabel="training step (optimizer steps)")
            ax.set_xlim(0, max(1, data.loc[data["task"] == task, "step"].max()))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if rows.empty:
                reason = "no probe logged (data.probe_size = 0)" if panel == "probe" else "no training reward"
                ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center", color="dimgray")
                continue
            _draw_panel(ax, rows, colors)
            ax.set_ylabel(" / ".join(Y_LABELS[m] for m in sorted(set(rows["metric"]))))
            if panel == "probe" and task in bases:
                ax.axhline(bases[task], color=COLORS["base"], ls="--", lw=1.2, label="base model (step 0)")
    legend_below(fig, list(grid.flat), f"mean over seeds; band: {' or '.join(bands)} over seeds")
    return fig
