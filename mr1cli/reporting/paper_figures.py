"""Drawings the paper's figures share: accuracy against a varied value with intervals (figures 4
and 6), grouped accuracy bars per method (figure 7, Table 1), and β(s) of every registered KL
schedule with the paper's per-task parameters. The reports in reporting/reports/ call these."""

from __future__ import annotations

import logging
import math

from matplotlib.figure import Figure

from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import KL_SCHEDULES, build_schedule, schedule_parameters, schedule_settings
from mr1cli.reporting.figure_kit import (
    COLORS,
    LABELS,
    VALUE_BOX,
    Inputs,
    base_line,
    clipped_error_bars,
    legend_below,
    new_figure,
    paper_points,
)
from mr1cli.tasks import TASKS, get_task

logger = logging.getLogger(__name__)

ERROR_BARS = "error bars: 95 % bootstrap CI over seeds × test examples"
BOUNDS = ("accuracy", "accuracy_low", "accuracy_high")


def sweep_figure(
    inputs: Inputs, grid: str, symbol: str, number: int, metrics: dict[str, str]
) -> Figure | None:
    """Exp1 sweeps (figures 4 and 6): metrics against the varied value, ours with CIs, paper marked."""
    table = inputs.table
    rows = None if table is None else table[(table["grid"] == grid) & (table["method"] != "base")]
    if rows is None or rows.empty:
        return None
    rows = rows.sort_values("setting_value")
    what = " and ".join(metrics.values())
    title = f"Figure {number} — geometry {what} vs {symbol}, GRPO\n{inputs.ours} vs paper"
    fig, axes = new_figure(len(metrics), title, height=4.6)
    for ax, (metric, name) in zip(axes, metrics.items(), strict=True):
        bounds = [
            rows.get(f"{metric}_{side}", rows[metric] * math.nan) for side in ("low", "high")
        ]  # NaN: none
        ax.errorbar(
            rows["setting_value"],
            rows[metric],
            yerr=clipped_error_bars(*(list(values) for values in (rows[metric], *bounds))),
            marker="o",
            capsize=4,
            color=COLORS["grpo"],
            label=f"GRPO, {inputs.ours}",
        )
        paper_points(
            ax, list(rows["setting_value"]), list(rows.get(f"paper_{metric}", [math.nan] * len(rows)))
        )
        if metric == "accuracy":
            base_line(ax, table[table["grid"] == grid], "geometry", inputs.ours)
        ax.set(xlabel=symbol, ylabel=f"{name} (%)", xticks=sorted(rows["setting_value"].unique()))
        ax.set_title(name if len(metrics) > 1 else "")
    legend_below(fig, axes, ERROR_BARS)
    return fig


# On a 0–100 % axis 5 inches high: a value label (8 pt, boxed) is about 4 points of accuracy high,
# the paper's diamond about 3.
LABEL_HEIGHT, MARKER_HALF = 4.0, 1.5


def label_height(top: float, marker: float) -> float:
    """Where a value label goes: 1 point above the top of its error bar, or just above the paper's
    marker when the label would sit on it.

    >>> label_height(1.6, 3.45), label_height(20.2, 16.2), label_height(47.5, math.nan)
    (5.95, 21.2, 48.5)
    """
    low = top + 1.0
    if not math.isnan(marker) and marker - MARKER_HALF < low + LABEL_HEIGHT and marker + MARKER_HALF > low:
        return round(marker + MARKER_HALF + 1.0, 2)
    return low


def method_bars(
    inputs: Inputs, groups: list[tuple[str, str, str]], title: str, paper_label: str
) -> Figure | None:
    """Grouped bars, one group per (label, train task, test task), one bar per method (the base
    model's: its row on that test task): ours with CIs, the paper's number marked."""
    table = inputs.table
    if table is None or table.empty or not groups:
        return None
    fig, (ax,) = new_figure(1, title, height=5.0)
    methods = [m for m in LABELS if m in set(table["method"])]
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        trained = [(table["train_task"] == train) | (method == "base") for _, train, _ in groups]
        rows = [
            table[(table["eval_task"] == test) & (table["method"] == method) & on]
            for (_, _, test), on in zip(groups, trained, strict=True)
        ]
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(groups))]
        ys, lows, highs = ([r[c].iloc[0] if len(r) else math.nan for r in rows] for c in BOUNDS)
        yerr = clipped_error_bars(ys, lows, highs)
        label = f"{LABELS[method]}{' (untrained)' if method == 'base' else ''}, {inputs.ours}"
        ax.bar(xs, ys, width * 0.95, yerr=yerr, capsize=3, color=COLORS[method], label=label)
        paper = [r["paper_accuracy"].iloc[0] if len(r) and "paper_accuracy" in r else math.nan for r in rows]
        for x, y, above, marked in zip(xs, ys, yerr[1], paper, strict=True):
            if not math.isnan(y):  # our value, above the error bar and clear of the paper's marker
                ax.text(
                    x,
                    label_height(y + above, marked),
                    f"{y:.1f}",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    bbox=VALUE_BOX,
                )
        paper_points(ax, xs, paper, paper_label if j == 0 else "_nolegend_")
    ax.set_xticks(range(len(groups)), [label for label, _, _ in groups])
    ax.set(ylabel="test accuracy (%)", ylim=(0, max(100.0, ax.get_ylim()[1])))
    legend_below(fig, [ax], f"{ERROR_BARS}; numbers: ours", ncols=3)
    return fig


def _paper_parameters(task: str) -> dict[str, float]:
    """A task's constant β and GRPO-D β_min/β_max/w (its own defaults); other shapes draw from these."""
    defaults = get_task(task).kl_defaults
    merged: dict[str, float] = {}
    for name in ("dynamic", "constant"):
        merged |= schedule_settings(build_schedule(name, defaults.get(name, {})))
    return merged


def beta_schedules(inputs: Inputs, total_steps: int = 100) -> Figure | None:
    """β(s) of every registered KL schedule with the paper's per-task parameters (needs no results)."""
    title = "KL weight β(s) of each registered schedule with the paper's parameters"
    title += " (GRPO: constant, GRPO-D: dynamic, Eq. 3)"
    per_task = {name: _paper_parameters(name) for name in TASKS.names() if get_task(name).kl_defaults}
    fig, axes = new_figure(len(per_task), title, height=4.8)
    progress = [s / total_steps for s in range(total_steps + 1)]
    for ax, (task, params) in zip(axes, per_task.items(), strict=True):
        skipped = []
        for name in KL_SCHEDULES.names():
            try:
                schedule = build_schedule(
                    name, {k: v for k, v in params.items() if k in schedule_parameters(name)}
                )
            except ConfigError as err:
                logger.info("beta schedules: %s not drawn for %s (%s)", name, task, err)
                skipped.append(name)
                continue
            style = {"lw": 2.6} if name in ("constant", "dynamic") else {"lw": 1.2, "ls": "--"}
            style["color"] = f"C{KL_SCHEDULES.names().index(name) % 10}"  # the same colour in both panels
            ax.plot(
                progress,
                [schedule(round(x * total_steps), total_steps) for x in progress],
                label=name,
                **style,
            )
        w_label = f"w = {params['explore_frac']:g}·t: end of exploration"
        ax.axvline(params["explore_frac"], color="black", ls=":", lw=1, label=w_label)
        if skipped:
            ax.text(
                0.98,
                0.02,
                f"not drawn (invalid for these β): {', '.join(skipped)}",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                color="dimgray",
            )
        ax.set_title(
            f"{task}: β_min {params['beta_min']:g}, β_max {params['beta_max']:g}; "
            f"GRPO's constant β {params['beta']:g}",
            fontsize=10,
        )
        ax.set(xlabel=f"training progress s / t (t = {total_steps} steps)")
        ax.set(ylabel="KL weight β")
    legend_below(fig, axes, ncols=7)
    return fig
