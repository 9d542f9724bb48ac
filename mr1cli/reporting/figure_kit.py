"""Shared pieces of the results figures: what a figure draws from (`Inputs`) and what draws one
(`Draw`; each report in reporting/reports/ names its figures), styles and axes helpers.

Drawing uses matplotlib's object API on the Agg canvas, so nothing touches pyplot's global state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mr1cli.reporting.records import read_jsonl, setting_label, setting_value

LABELS = {"base": "base", "sft": "SFT", "grpo": "GRPO", "grpo-d": "GRPO-D"}
COLORS = {"base": "#8c8c8c", "sft": "#1f77b4", "grpo": "#ff7f0e", "grpo-d": "#2ca02c"}
PAPER = "paper (Qwen2-VL-2B)"
VALUE_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
PAPER_STYLE = {
    "marker": "D",
    "s": 46,
    "facecolor": "white",
    "edgecolor": "black",
    "linewidths": 1.6,
    "zorder": 4,
}


@dataclass(frozen=True)
class Inputs:
    """What an experiment's figures draw from: its results table (ours beside the paper's numbers),
    its training curves (one row per logged step of each run), the label of our results and its
    records (one per model, test task and seed)."""

    table: pd.DataFrame | None
    curves: pd.DataFrame | None
    ours: str
    records: pd.DataFrame | None = None


Draw = Callable[[Inputs], "Figure | None"]  # None: the figure's inputs are missing, nothing drawn


def load_curves(results_dir: Path, experiment: str) -> pd.DataFrame | None:
    """Every run's metrics log joined with its index entry (method, train task, seed, setting);
    None when the experiment has no curves."""
    folder = Path(results_dir) / experiment / "curves"
    if not (folder / "index.jsonl").is_file():
        return None
    frames = []
    for entry in read_jsonl(folder / "index.jsonl"):
        path = folder / f"{entry.get('run')}.jsonl"
        if not path.is_file():
            continue
        frame = pd.DataFrame(read_jsonl(path))
        if "step" not in frame:
            continue
        setting = entry.get("setting") or {}
        frame["setting_label"] = setting_label(setting)
        frame["setting_value"] = setting_value(setting)
        for key in ("run", "method", "train_task", "seed", "grid"):
            frame[key] = entry.get(key)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None


def new_figure(ncols: int, title: str, width: float = 5.4, height: float = 4.2) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(max(width * ncols, 8.0), height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=12)
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def legend_below(fig: Figure, axes: list[Axes], title: str | None = None, ncols: int = 5) -> None:
    """One legend for the whole figure, under the plots (entries deduplicated by label)."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(
        entries.values(),
        entries.keys(),
        loc="outside lower center",
        ncols=ncols,
        fontsize=8,
        title=title,
        title_fontsize=8,
    )


def paper_points(ax: Axes, xs: list[float], ys: list[float], label: str = PAPER) -> None:
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if points:
        ax.scatter(*zip(*points, strict=True), label=label, **PAPER_STYLE)


def base_line(ax: Axes, table: pd.DataFrame, eval_task: str, ours: str) -> None:
    base = table[(table["method"] == "base") & (table["eval_task"] == eval_task)]
    if len(base):
        ax.axhline(
            base["accuracy"].iloc[0], color=COLORS["base"], ls="--", lw=1.2, label=f"base model, {ours}"
        )


def clipped_error_bars(means: list[float], lows: list[float], highs: list[float]) -> list[list[float]]:
    """matplotlib's asymmetric `yerr` ([below…], [above…]) for intervals [low, high] around `means`,
    clipped to the percentage axis [0, 100]; 0 where there is no interval.

    >>> clipped_error_bars([2.0, 98.0, 50.0], [-3.0, 95.0, math.nan], [6.0, 103.0, math.nan])
    [[2.0, 3.0, 0.0], [4.0, 2.0, 0.0]]
    """
    below, above = [], []
    for mean, low, high in zip(means, lows, highs, strict=True):
        bounded = not (math.isnan(mean) or math.isnan(low) or math.isnan(high))
        below.append(mean - max(low, 0.0) if bounded else 0.0)
        above.append(min(high, 100.0) - mean if bounded else 0.0)
    return [below, above]


def seed_mean(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, min and max over seeds of `metric` at each logged step."""
    rows = curves.dropna(subset=[metric])
    return rows.groupby("step")[metric].agg(["mean", "min", "max"]).reset_index()
