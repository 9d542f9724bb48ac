"""Figures from saved results only (no training): the paper's figures 1, 4, 5, 6 and 7, Table 1 as
bars, and β(s) of every registered KL schedule.

Each figure is written as PNG and SVG into `results/<experiment>/figures/`. A figure whose inputs
are missing is skipped (logged at info). Drawing uses matplotlib's object API on the Agg canvas,
so nothing touches pyplot's global state.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mr1cli.core.errors import ConfigError, Mr1Error
from mr1cli.core.kl_schedules import KL_SCHEDULES, build_schedule
from mr1cli.experiments.tables import (
    EXPERIMENTS,
    TASKS,
    build_table,
    load_paper_numbers,
    load_records,
    read_jsonl,
    setting_label,
    setting_value,
    write_tables,
)

logger = logging.getLogger(__name__)

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
# The paper's GRPO-D and GRPO parameters per task (paper.md, "β schedule (GRPO-D)").
PAPER_BETAS = {
    "counting": {"beta": 0.04, "beta_min": 0.04, "beta_max": 0.10, "explore_frac": 0.3},
    "geometry": {"beta": 0.01, "beta_min": 0.0, "beta_max": 0.02, "explore_frac": 0.3},
}


@dataclass(frozen=True)
class Inputs:
    """What an experiment's figures draw from: its results table (ours beside the paper's numbers),
    its training curves (one row per logged step of each run) and the label of our results."""

    table: pd.DataFrame | None
    curves: pd.DataFrame | None
    ours: str


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


def _figure(ncols: int, title: str, width: float = 5.4, height: float = 4.2) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(max(width * ncols, 8.0), height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=12)
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def _legend_below(fig: Figure, axes: list[Axes], title: str | None = None, ncols: int = 5) -> None:
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


def _paper_points(ax: Axes, xs: list[float], ys: list[float], label: str = PAPER) -> None:
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if points:
        ax.scatter(*zip(*points, strict=True), label=label, **PAPER_STYLE)


def _base_line(ax: Axes, table: pd.DataFrame, eval_task: str, ours: str) -> None:
    base = table[(table["method"] == "base") & (table["eval_task"] == eval_task)]
    if len(base):
        ax.axhline(
            base["accuracy"].iloc[0], color=COLORS["base"], ls="--", lw=1.2, label=f"base model, {ours}"
        )


def _seed_mean(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, min and max over seeds of `metric` at each logged step."""
    rows = curves.dropna(subset=[metric])
    return rows.groupby("step")[metric].agg(["mean", "min", "max"]).reset_index()


# ---------------------------------------------------------------- the figures


def fig1_test_accuracy(inputs: Inputs) -> Figure | None:
    """Paper figure 1: test accuracy of SFT and GRPO (and GRPO-D) over training steps, per task."""
    curves = inputs.curves
    if curves is None or "eval/accuracy" not in curves or curves["eval/accuracy"].isna().all():
        return None
    tasks = [t for t in TASKS if curves.loc[curves["train_task"] == t, "eval/accuracy"].notna().any()]
    title = f"Figure 1 — test accuracy during training, SFT vs GRPO — {inputs.ours}"
    fig, axes = _figure(len(tasks), title)
    for ax, task in zip(axes, tasks, strict=True):
        for method in ("sft", "grpo", "grpo-d"):
            runs = curves[(curves["train_task"] == task) & (curves["method"] == method)]
            stats = _seed_mean(runs, "eval/accuracy") if len(runs) else None
            if stats is None or stats.empty:
                continue
            ax.plot(
                stats["step"], stats["mean"], marker="o", ms=3, color=COLORS[method], label=LABELS[method]
            )
            ax.fill_between(stats["step"], stats["min"], stats["max"], color=COLORS[method], alpha=0.15)
        if inputs.table is not None:
            _base_line(ax, inputs.table, task, "before training")
        ax.set(title=f"trained and tested on {task}", xlabel="training step (optimizer steps)")
        ax.set(ylabel="test accuracy (%)")
        ax.legend(title="mean over seeds (band: min–max)", fontsize=8, title_fontsize=8)
    return fig


def _sweep(inputs: Inputs, grid: str, symbol: str, number: int, metrics: dict[str, str]) -> Figure | None:
    """Exp1 sweeps (figures 4 and 6): metrics against the varied value, ours with CIs, paper marked."""
    table = inputs.table
    rows = None if table is None else table[(table["grid"] == grid) & (table["method"] != "base")]
    if rows is None or rows.empty:
        return None
    rows = rows.sort_values("setting_value")
    what = " and ".join(metrics.values())
    title = f"Figure {number} — geometry {what} vs {symbol}, GRPO\n{inputs.ours} vs paper"
    fig, axes = _figure(len(metrics), title, height=4.6)
    for ax, (metric, name) in zip(axes, metrics.items(), strict=True):
        ci = rows[f"{metric}_ci"].fillna(0.0)
        ax.errorbar(
            rows["setting_value"],
            rows[metric],
            yerr=ci,
            marker="o",
            capsize=4,
            color=COLORS["grpo"],
            label=f"GRPO, {inputs.ours}",
        )
        _paper_points(
            ax, list(rows["setting_value"]), list(rows.get(f"paper_{metric}", [math.nan] * len(rows)))
        )
        if metric == "accuracy":
            _base_line(ax, table[table["grid"] == grid], "geometry", inputs.ours)
        ax.set(xlabel=symbol, ylabel=f"{name} (%)", xticks=sorted(rows["setting_value"].unique()))
        ax.set_title(name if len(metrics) > 1 else "")
    _legend_below(fig, axes, "error bars: 95 % CI over seeds")
    return fig


def fig4_format_weight(inputs: Inputs) -> Figure | None:
    """Paper figure 4: test accuracy and format rate against the format-reward weight α."""
    metrics = {"accuracy": "test accuracy", "format_rate": "format rate"}
    return _sweep(inputs, "alpha", "format-reward weight α", 4, metrics)


def fig6_constant_beta(inputs: Inputs) -> Figure | None:
    """Paper figure 6: test accuracy against a constant KL weight β."""
    return _sweep(inputs, "beta", "constant KL weight β", 6, {"accuracy": "test accuracy"})


def fig5_reward_curves(inputs: Inputs) -> Figure | None:
    """Paper figure 5: (a) format reward and (b) accuracy reward over training steps, one line per α."""
    curves = inputs.curves
    if curves is None or not {"reward/format", "reward/accuracy"} <= set(curves.columns):
        return None
    curves = curves[curves["setting_label"].str.startswith("α=")]
    if curves.empty:
        return None
    fig, axes = _figure(2, f"Figure 5 — rewards during GRPO training on geometry, per α — {inputs.ours}")
    alphas = sorted(curves["setting_value"].unique())
    colors = matplotlib.colormaps["viridis"]
    for ax, (metric, title) in zip(
        axes,
        [("reward/format", "(a) format reward"), ("reward/accuracy", "(b) accuracy reward")],
        strict=True,
    ):
        for i, alpha in enumerate(alphas):
            stats = _seed_mean(curves[curves["setting_value"] == alpha], metric)
            window = max(1, len(stats) // 20)
            smooth = stats["mean"].rolling(window, min_periods=1).mean()
            ax.plot(stats["step"], smooth, color=colors(i / max(1, len(alphas) - 1)), label=f"α = {alpha:g}")
        ax.set(
            title=title, xlabel="training step (optimizer steps)", ylabel="mean reward per completion (0–1)"
        )
        ax.legend(title="format weight (mean over seeds)", fontsize=8, title_fontsize=8)
    return fig


def _method_bars(
    inputs: Inputs, groups: list[tuple[str, str]], title: str, paper_label: str
) -> Figure | None:
    """Grouped bars, one group per (label, eval task), one bar per method: ours with CIs, paper marked."""
    table = inputs.table
    if table is None or table.empty:
        return None
    fig, (ax,) = _figure(1, title, height=5.0)
    methods = [m for m in LABELS if m in set(table["method"])]
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        rows = [table[(table["eval_task"] == task) & (table["method"] == method)] for _, task in groups]
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(groups))]
        ys = [r["accuracy"].iloc[0] if len(r) else math.nan for r in rows]
        ci = [r["accuracy_ci"].fillna(0.0).iloc[0] if len(r) else 0.0 for r in rows]
        label = f"{LABELS[method]}{' (untrained)' if method == 'base' else ''}, {inputs.ours}"
        ax.bar(xs, ys, width * 0.95, yerr=ci, capsize=3, color=COLORS[method], label=label)
        for x, y, half in zip(xs, ys, ci, strict=True):
            if not math.isnan(y):  # our value, above the error bar
                ax.text(x, y + half + 1.0, f"{y:.1f}", ha="center", va="bottom", fontsize=8, bbox=VALUE_BOX)
        paper = [r["paper_accuracy"].iloc[0] if len(r) and "paper_accuracy" in r else math.nan for r in rows]
        _paper_points(ax, xs, paper, paper_label if j == 0 else "_nolegend_")
    ax.set_xticks(range(len(groups)), [label for label, _ in groups])
    ax.set(ylabel="test accuracy (%)", ylim=(0, max(100.0, ax.get_ylim()[1])))
    _legend_below(fig, [ax], "error bars: 95 % CI over seeds; numbers: ours", ncols=3)
    return fig


def fig7_cross_task(inputs: Inputs) -> Figure | None:
    """Paper figure 7: trained on one task, tested on the other; base, SFT, GRPO and GRPO-D."""
    groups = [
        ("trained on counting → tested on geometry", "geometry"),
        ("trained on geometry → tested on counting", "counting"),
    ]
    title = f"Figure 7 — cross-task generalization — {inputs.ours} vs paper"
    return _method_bars(inputs, groups, title, "paper (Qwen2-VL-2B; inferred from fig. 7 text)")


def table1_same_task(inputs: Inputs) -> Figure | None:
    """Paper Table 1 as bars: same-task test accuracy per method and task."""
    groups = [(f"trained and tested on {task}", task) for task in TASKS]
    return _method_bars(
        inputs, groups, f"Table 1 — same-task accuracy — {inputs.ours} vs paper", PAPER + ", Table 1"
    )


def beta_schedules(inputs: Inputs, total_steps: int = 100) -> Figure | None:
    """β(s) of every registered KL schedule with the paper's per-task parameters (needs no results)."""
    title = "KL weight β(s) of each registered schedule with the paper's parameters"
    title += " (GRPO: constant, GRPO-D: dynamic, Eq. 3)"
    fig, axes = _figure(2, title, height=4.8)
    progress = [s / total_steps for s in range(total_steps + 1)]
    for ax, (task, params) in zip(axes, PAPER_BETAS.items(), strict=True):
        skipped = []
        for name in KL_SCHEDULES.names():
            try:
                schedule = build_schedule(name, **params)
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
    _legend_below(fig, axes, ncols=7)
    return fig


Draw = Callable[[Inputs], "Figure | None"]
FIGURES: dict[str, dict[str, Draw]] = {
    "exp1-format-reward": {
        "fig4_format_weight": fig4_format_weight,
        "fig5_reward_curves": fig5_reward_curves,
        "fig6_constant_beta": fig6_constant_beta,
    },
    "exp2-cross-task": {"fig7_cross_task": fig7_cross_task},
    "exp3-same-task": {
        "fig1_test_accuracy": fig1_test_accuracy,
        "table1_same_task": table1_same_task,
        "beta_schedules": beta_schedules,
    },
}


# ---------------------------------------------------------------- entry points


def _save(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """PNG and SVG of `fig`, each written atomically (temporary file, then rename), reproducibly."""
    folder.mkdir(parents=True, exist_ok=True)
    for ax in fig.axes:  # a percentage axis never shows below 0 or above 100, even with wide CIs
        if "(%)" in ax.get_ylabel():
            low, high = ax.get_ylim()
            ax.set_ylim(max(low, 0.0), min(high, 100.0 if high <= 100.0 else 101.0))
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "mr1", "svg.fonttype": "none"}):
        for fmt, metadata in (("png", {"Software": None}), ("svg", {"Date": None})):
            buffer, path = io.BytesIO(), folder / f"{stem}.{fmt}"
            fig.savefig(buffer, format=fmt, dpi=150, metadata=metadata)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_bytes(buffer.getvalue())
            os.replace(tmp, path)
            paths.append(path)
    return paths


def _inputs(results_dir: Path, experiment: str) -> Inputs:
    table, ours = None, "ours"
    if (Path(results_dir) / experiment / "records.jsonl").is_file():
        records = load_records(results_dir, experiment)
        table = build_table(experiment, records, load_paper_numbers())
        profiles = sorted(set(records["profile"].astype(str)) - {""})
        ours = f"ours ({', '.join(profiles)} profile)" if profiles else "ours"
    return Inputs(table, load_curves(results_dir, experiment), ours)


def make_figures(results_dir: Path, experiment: str | None = None) -> list[Path]:
    """Draw the figures of one experiment (or of all three) from saved results; return the files.
    The β(s) figure needs no results and is drawn with exp3's figures."""
    written: list[Path] = []
    for name in [experiment] if experiment else EXPERIMENTS:
        if name not in FIGURES:
            raise Mr1Error(f"no figures for '{name}' (known: {', '.join(FIGURES)})")
        inputs = _inputs(results_dir, name)
        for stem, draw in FIGURES[name].items():
            fig = draw(inputs)
            if fig is None:
                logger.info("%s: %s skipped, its inputs are missing", name, stem)
                continue
            written += _save(fig, Path(results_dir) / name / "figures", stem)
    return written


def make_all(results_dir: Path) -> list[Path]:
    """Tables and figures for every experiment folder present under `results_dir` (`mr1 figures`)."""
    present = [name for name in EXPERIMENTS if (Path(results_dir) / name / "records.jsonl").is_file()]
    if not present:
        raise Mr1Error(
            f"{results_dir}: no results to draw (no <experiment>/records.jsonl); run `mr1 reproduce` first"
        )
    written = [path for name in present for path in write_tables(results_dir, name)]
    return written + make_figures(results_dir)
