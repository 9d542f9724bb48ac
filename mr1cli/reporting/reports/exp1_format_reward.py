"""Exp1, the format reward (paper figures 4, 5 and 6): plain GRPO on geometry with format weight
α, and with a constant KL weight β. Its table gives the few numbers the paper prints (α = 1's gain
over α = 0, α = 0's format rate), its claims that α > 0 beats α = 0 and β = 0.01 beats every other
constant β, its figures the paper's figures 4, 5 and 6."""

from __future__ import annotations

import math
from dataclasses import replace

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from mr1cli.reporting.figure_kit import Inputs, new_figure, seed_mean
from mr1cli.reporting.learning_curves import seed_band
from mr1cli.reporting.paper_figures import sweep_figure
from mr1cli.reporting.records import PAPER_MODEL, paper_number
from mr1cli.reporting.report import Paper, Report, Row
from mr1cli.reporting.statistics import relative_change
from mr1cli.reporting.verdicts import Claim, relative_text


def paper_columns(row: Row, paper: Paper) -> dict[str, float]:
    """The grid's printed accuracy, format rate and change over α = 0 at the row's value; the base
    row's accuracy is Table 1's."""
    exp1, value = (paper.get("exp1-format-reward") or {}).get(row["grid"]), row["setting_value"]
    base = paper_number(paper, "exp3-same-task", PAPER_MODEL, row["eval_task"], "base")
    accuracy = base if row["method"] == "base" else paper_number(exp1, "accuracy", value)
    return {
        "paper_accuracy": accuracy,
        "paper_format_rate": paper_number(exp1, "format_rate", value),
        "vs_base": relative_change(accuracy, base),
        "vs_zero": paper_number(exp1, "relative_vs_alpha0", value),
    }


def claims(records: pd.DataFrame, paper: Paper) -> list[Claim]:
    """Exp1: α = 1 beats α = 0 (+20.02 %), as does every α > 0 (figure 4; we check the best of ours,
    picked by its mean, so optimistic); β = 0.01 beats every other constant β (figure 6)."""
    exp1 = paper.get("exp1-format-reward") or {}
    alpha = records[(records["grid"] == "alpha") & (records["method"] == "grpo")]
    beta = records[(records["grid"] == "beta") & (records["method"] == "grpo")]
    claims = []
    if {0.0, 1.0} <= set(alpha["setting_value"]):
        accuracy = paper_number(exp1, "alpha", "accuracy", 1.0)
        detail = "" if math.isnan(accuracy) else f" (α = 1: {accuracy:.2f})"
        paper_text = relative_text(paper_number(exp1, "alpha", "relative_vs_alpha0", 1.0), detail)
        zero = {"method": "grpo", "grid": "alpha", "setting_value": 0.0}
        claims.append(Claim("α = 1 > α = 0", paper_text, {**zero, "setting_value": 1.0}, zero, +1))
        positive = alpha[alpha["setting_value"] > 0].groupby("setting_value")["accuracy"].mean()
        best = float(positive.idxmax())
        text = f"best α > 0 (α = {best:g}, our highest mean) > α = 0"
        claims.append(Claim(text, "every α > 0 beats α = 0", {**zero, "setting_value": best}, zero, +1))
    if 0.01 in set(beta["setting_value"]):
        best = {"method": "grpo", "grid": "beta", "setting_value": 0.01}
        accuracy = paper_number(exp1, "beta", "accuracy", 0.01)
        paper_text = "best at β = 0.01" + ("" if math.isnan(accuracy) else f" ({accuracy:.2f})")
        for other in sorted(set(beta["setting_value"]) - {0.01}):
            text = f"β = 0.01 > β = {other:g}"
            joint = "β = 0.01 beats every other constant β"
            claims.append(Claim(text, paper_text, best, {**best, "setting_value": other}, +1, joint=joint))
    return claims


def _format_rate_bands(table: pd.DataFrame, records: pd.DataFrame | None) -> pd.DataFrame:
    """The table with `format_rate_low` / `_high` per α row: the band over seeds of the records'
    format rates (95 % t-interval from 3 seeds on, else min–max; records keep no per-example format)."""
    bands = {}
    if records is not None:
        runs = records[(records["grid"] == "alpha") & (records["method"] == "grpo")]
        for value, group in runs.groupby("setting_value"):
            bands[value] = seed_band([float(v) for v in group["format_rate"].dropna()], (0.0, 100.0))
    low, high = ([bands[v][i] if v in bands else math.nan for v in table["setting_value"]] for i in (1, 2))
    return table.assign(format_rate_low=low, format_rate_high=high)


def fig4_format_weight(inputs: Inputs) -> Figure | None:
    """Paper figure 4: test accuracy and format rate against the format-reward weight α. The format
    rate's axis spans at least 90–100 %, so that a few tenths of a point do not look like a change."""
    if inputs.table is None:
        return None
    table = _format_rate_bands(inputs.table, inputs.records)
    metrics = {"accuracy": "test accuracy", "format_rate": "format rate"}
    fig = sweep_figure(replace(inputs, table=table), "alpha", "format-reward weight α", 4, metrics)
    if fig is not None:
        rates = table[(table["grid"] == "alpha") & (table["method"] != "base")]["format_rate_low"].dropna()
        axis = fig.axes[1]
        axis.set_ylim(min(90.0, 10 * math.floor(rates.min() / 10) if len(rates) else 90.0), 100.0)
        axis.set_title("format rate (error bars: 95 % CI over seeds)")
    return fig


def fig6_constant_beta(inputs: Inputs) -> Figure | None:
    """Paper figure 6: test accuracy against a constant KL weight β."""
    return sweep_figure(inputs, "beta", "constant KL weight β", 6, {"accuracy": "test accuracy"})


def fig5_reward_curves(inputs: Inputs) -> Figure | None:
    """Paper figure 5: (a) format reward and (b) accuracy reward over training steps, one line per α."""
    curves = inputs.curves
    if curves is None or not {"reward/format", "reward/accuracy"} <= set(curves.columns):
        return None
    curves = curves[curves["setting_label"].str.startswith("α=")]
    if curves.empty:
        return None
    fig, axes = new_figure(2, f"Figure 5 — rewards during GRPO training on geometry, per α — {inputs.ours}")
    alphas = sorted(curves["setting_value"].unique())
    colors = matplotlib.colormaps["viridis"]
    for ax, (metric, title) in zip(
        axes,
        [("reward/format", "(a) format reward"), ("reward/accuracy", "(b) accuracy reward")],
        strict=True,
    ):
        for i, alpha in enumerate(alphas):
            stats = seed_mean(curves[curves["setting_value"] == alpha], metric)
            window = max(1, len(stats) // 20)
            smooth = stats["mean"].rolling(window, min_periods=1).mean()
            ax.plot(stats["step"], smooth, color=colors(i / max(1, len(alphas) - 1)), label=f"α = {alpha:g}")
        ax.set(
            title=title, xlabel="training step (optimizer steps)", ylabel="mean reward per completion (0–1)"
        )
        ax.legend(title="format weight (mean over seeds)", fontsize=8, title_fontsize=8)
    return fig


REPORT = Report(
    name="exp1-format-reward",
    title="Exp1 — format weight α (paper figure 4) and constant KL weight β (figure 6), geometry, GRPO",
    paper_section="exp1-format-reward",
    paper_columns=paper_columns,
    claims=claims,
    figures={
        "fig4_format_weight": fig4_format_weight,
        "fig5_reward_curves": fig5_reward_curves,
        "fig6_constant_beta": fig6_constant_beta,
    },
)
