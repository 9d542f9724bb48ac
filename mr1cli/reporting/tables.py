"""Results tables: one row per configuration (accuracy over seeds × test examples ± its 95 % bootstrap
half-width) beside the paper's numbers, with the relative changes the paper reports and, for each
comparison, our paired difference in points with its interval and verdict. The experiment's report
(`Report.paper_columns`) gives the paper's numbers for each row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mr1cli.files import atomic_write_text
from mr1cli.reporting.records import (
    PAPER_NUMBERS,
    aggregate,
    configuration_key,
    configurations,
    load_paper_numbers,
    load_records,
    normalize_records,
    paired_matrices,
)
from mr1cli.reporting.report import Paper, Report, Row
from mr1cli.reporting.statistics import PairedDifference, paired_difference, relative_change, verdict

# ---------------------------------------------------------------- the table


def _find(table: pd.DataFrame, row: Row, **conditions: Any) -> int | None:
    """Index of the first row of the same grid and test task as `row` matching every condition, and
    trained on the same task unless one side is the base model; None when there is none, or when the
    base model's row would be compared with models trained on different tasks (which one?)."""
    conditions = {"grid": row["grid"], "eval_task": row["eval_task"], **conditions}
    if row["method"] != "base" and conditions.get("method") != "base":
        conditions["train_task"] = row["train_task"]
    mask = pd.Series(True, index=table.index)
    for column, value in conditions.items():
        mask &= table[column] == value
    if row["method"] == "base" and table.loc[mask, "train_task"].nunique() > 1:
        return None
    return int(table.index[mask][0]) if mask.any() else None


def _zero_of_grid(table: pd.DataFrame, row: Row) -> int | None:
    """The α = 0 (or β = 0) GRPO row of the row's grid; none for the base model."""
    return None if row["method"] == "base" else _find(table, row, method="grpo", setting_value=0.0)


# name → (title, (new, reference) row indices of the change reported on `row`)
COMPARISONS: dict[str, tuple[str, Callable[[pd.DataFrame, Row], tuple[int | None, int | None]]]] = {
    "vs_base": ("vs base", lambda t, r: (r.name, _find(t, r, method="base"))),
    "grpo_d_vs_this": ("GRPO-D vs this", lambda t, r: (_find(t, r, method="grpo-d"), r.name)),
    "vs_zero": ("vs α=0 / β=0", lambda t, r: (r.name, _zero_of_grid(t, r))),
}


# table column suffix → field of the comparison's PairedDifference
DIFFERENCE_COLUMNS = {"diff_pts": "points", "diff_low": "low", "diff_high": "high", "mde": "mde"}


def _paper_direction(paper_pct: float) -> int | None:
    """+1 / −1 when the paper reports a rise / fall, None when it gives no number (or exactly 0)."""
    return None if math.isnan(paper_pct) or paper_pct == 0 else int(math.copysign(1, paper_pct))


def _paired(groups: dict[tuple, pd.DataFrame], new: Row, reference: Row) -> PairedDifference | None:
    matrices = paired_matrices(groups[configuration_key(new)], groups[configuration_key(reference)])
    return paired_difference(*matrices) if matrices is not None else None


def build_table(report: Report, records: pd.DataFrame, paper: Paper, experiment: str = "") -> pd.DataFrame:
    """The results table of one experiment: one row per configuration (`accuracy` over seeds × test
    examples with `accuracy_ci`, `_low`, `_high`; `heldout_accuracy`…; `n_seeds`, `format_rate`), the
    paper's numbers beside ours (`paper_accuracy`…) and, per comparison, the relative changes ours and
    the paper's (`<comparison>_ours_pct`, `<comparison>_paper_pct`) and our paired difference in points
    (`<comparison>_diff_pts`, `_diff_low`, `_diff_high`, `_mde`) with its `<comparison>_verdict`."""
    records = normalize_records(records, experiment)
    paper_row, table, groups = report.paper_columns, aggregate(records), configurations(records)
    published = pd.DataFrame([paper_row(row, paper) for _, row in table.iterrows()], index=table.index)
    for column in published.columns:
        if column.startswith("paper_"):
            table[column] = published[column]
            continue
        pairs = [COMPARISONS[column][1](table, row) for _, row in table.iterrows()]
        valid = [None not in pair and pair[0] != pair[1] for pair in pairs]
        compared = [
            (table.loc[pair[0]], table.loc[pair[1]]) if ok else None
            for pair, ok in zip(pairs, valid, strict=True)
        ]
        differences = [_paired(groups, *rows) if rows else None for rows in compared]
        table[f"{column}_ours_pct"] = [
            relative_change(rows[0]["accuracy"], rows[1]["accuracy"]) if rows else math.nan
            for rows in compared
        ]
        table[f"{column}_paper_pct"] = published[column].where(valid)
        for name, field in DIFFERENCE_COLUMNS.items():
            table[f"{column}_{name}"] = [getattr(d, field) if d else math.nan for d in differences]
        table[f"{column}_verdict"] = [
            verdict(d, _paper_direction(paper_pct)) if d else ""
            for d, paper_pct in zip(differences, table[f"{column}_paper_pct"], strict=True)
        ]
    return table


# ---------------------------------------------------------------- markdown and files

HEADERS = {"grid": "grid", "train_task": "trained on", "eval_task": "tested on", "method": "method"}
HEADERS |= {"setting_label": "setting", "accuracy": "ours acc. %", "heldout_accuracy": "ours held-out acc. %"}
HEADERS |= {"n_seeds": "seeds", "format_rate": "ours format %", "paper_accuracy": "paper acc. %"}
HEADERS |= {"paper_format_rate": "paper format %"}
FOOTNOTES = (
    "Relative change = (new − reference) / reference × 100, as the paper computes it: GRPO-D vs SFT on "
    "geometry (Table 1, 2B) = (34.35 − 32.49) / 32.49 × 100 = +5.72 %, the abstract's figure. "
    '"vs base": this row over the untrained model; "GRPO-D vs this": GRPO-D over this row; '
    '"vs α=0 / β=0": this row over its grid\'s GRPO run with α = 0 (or β = 0).',
    "Ours: the paired difference new − reference in accuracy points on the same test examples (and the "
    "same seeds where both sides have them; the one-seed base model is held fixed) with its 95 % paired "
    'bootstrap interval, then the relative change. Verdict: "reproduced" / "opposite" when the '
    'interval excludes 0 in / against the paper\'s direction, "higher" / "lower" where the paper '
    'gives no number, else "not detected (MDE x)": the minimum detectable effect, 2.80 × the bootstrap '
    "standard error (80 % power at two-sided 5 %).",
)
TINY_NOTE = (
    "The tiny profile is a ~1M-parameter model on synthetic data: compare directions and relative changes "
    "with the paper, not absolute accuracies."
)
ONE_SEED_NOTE = (
    "One seed per configuration: intervals cover the test examples only, not seed-to-seed variation."
)
NO_EXAMPLES_NOTE = (
    "Some records hold no per-example results (written by an earlier mr1): their rows have no interval, "
    "paired difference or verdict; rerun `mr1 reproduce` (it reuses the trained models) to add them."
)


def _cell(value: Any, ci: float = math.nan, signed: bool = False) -> str:
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        if math.isnan(value):
            return "—"
        text = f"{value:+.2f}" if signed else f"{value:.2f}"
        return text if math.isnan(ci) else f"{text} ± {ci:.2f}"
    return str(value) or "—"


def _difference_cell(row: Row, comparison: str) -> str:
    """The paired difference in points with its 95 % interval, then the relative change:
    `+8.0 [+2.1, +13.9] (+12.90 %)`; the relative change alone without per-example results."""
    relative = row[f"{comparison}_ours_pct"]
    if math.isnan(row[f"{comparison}_diff_pts"]):
        return _cell(relative, signed=True) + (" %" if not math.isnan(relative) else "")
    points, low, high = (row[f"{comparison}_{k}"] for k in ("diff_pts", "diff_low", "diff_high"))
    return f"{points:+.1f} [{low:+.1f}, {high:+.1f}] ({_cell(relative, signed=True)} %)"


def _shown(column: pd.Series) -> bool:
    """Whether a table column says anything: a number somewhere, or more than one label."""
    if column.name in ("eval_task", "method", "accuracy", "n_seeds", "paper_accuracy"):
        return True
    return bool(column.notna().any()) if column.dtype.kind == "f" else column.astype(str).nunique() > 1


def _markdown_rows(table: pd.DataFrame) -> list[str]:
    columns = [c for c in HEADERS if c in table and _shown(table[c])]
    comparisons = [c.removesuffix("_ours_pct") for c in table.columns if c.endswith("_ours_pct")]
    headers = [HEADERS[c] for c in columns]
    for title in (COMPARISONS[name][0] for name in comparisons):
        headers += [f"{title}: ours Δ pts [95 % CI] (rel.)", f"{title}: paper (rel.) %", "verdict"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in table.astype({"n_seeds": str}).iterrows():
        cells = [_cell(row[c], row.get(f"{c}_ci", math.nan)) for c in columns]
        for name in comparisons:
            cells += [_difference_cell(row, name), _cell(row[f"{name}_paper_pct"], signed=True)]
            cells.append(row[f"{name}_verdict"] or "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table_markdown(report: Report, table: pd.DataFrame, records: pd.DataFrame, paper: Paper) -> str:
    """The markdown page of an experiment's table: title, what was run, ours beside the paper, notes."""
    title = report.title
    profile, scoring = (
        ", ".join(sorted(set(records[c].astype(str)) - {""})) or "?" for c in ("profile", "scoring")
    )
    seeds = ", ".join(str(seed) for seed in sorted(set(records["seed"])))
    intro = [
        f"Ours: profile **{profile}**, scoring **{scoring}**, seeds {seeds}; accuracy is the mean over seeds × "
        "test examples ± the half-width of its 95 % two-level bootstrap interval (seeds and examples resampled).",
        f'Paper: Qwen2-VL-2B-Instruct ({PAPER_NUMBERS.name}); "—" where the paper gives no number.',
        *([TINY_NOTE] if "tiny" in profile else []),
        *([ONE_SEED_NOTE] if (table["n_seeds"] < 2).all() else []),
        *([NO_EXAMPLES_NOTE] if table["accuracy_ci"].isna().any() else []),
    ]
    notes = [*FOOTNOTES, " ".join(str((paper.get(report.paper_section) or {}).get("note", "")).split())]
    page = [f"# {title}", "", *(f"- {text}" for text in intro), "", *_markdown_rows(table)]
    return "\n".join([*page, "", "Notes:", "", *(f"- {text}" for text in notes if text), ""])


def write_tables(
    results_dir: Path, experiment: str, report: Report, paper: Paper | None = None
) -> list[Path]:
    """Write `results/<experiment>/table.csv` and `table.md` atomically; return their paths."""
    records, paper = load_records(results_dir, experiment), load_paper_numbers() if paper is None else paper
    table = build_table(report, records, paper, experiment)
    csv_path, md_path = (Path(results_dir) / experiment / name for name in ("table.csv", "table.md"))
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(md_path, table_markdown(report, table, records, paper))
    return [csv_path, md_path]
