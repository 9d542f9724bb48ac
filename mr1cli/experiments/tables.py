"""Tables and statistics: our results (`results/<experiment>/records.jsonl`, aggregated over seeds)
beside the paper's published numbers, as `table.csv` for machines and `table.md` for people.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mr1cli.config import EXPERIMENTS_DIR
from mr1cli.core.errors import Mr1Error
from mr1cli.core.registry import Registry
from mr1cli.training.run_dir import atomic_write_text

logger = logging.getLogger(__name__)

PAPER_NUMBERS = EXPERIMENTS_DIR / "paper_numbers.yaml"
PAPER_MODEL = "qwen2-vl-2b"  # the paper's main model; the only one in Exp1 and Exp2
EXPERIMENTS = ("exp1-format-reward", "exp2-cross-task", "exp3-same-task")
METHODS = ("base", "sft", "grpo", "grpo-d")
TASKS = ("counting", "geometry")
SETTING_SYMBOLS = {"reward.weights.format": "α", "rl.beta": "β"}
GROUP_KEYS = ["grid", "train_task", "eval_task", "method", "setting_label"]


# ---------------------------------------------------------------- statistics


def t_cdf(t: float, df: int) -> float:
    """P(T ≤ t) for Student's t with integer `df`, from the finite series of Abramowitz & Stegun
    26.7.3 (odd df) and 26.7.4 (even df).

    >>> round(t_cdf(4.302653, 2), 4), round(t_cdf(-12.7062, 1), 4)
    (0.975, 0.025)
    """
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2, total, term = math.cos(theta) ** 2, 1.0, 1.0
    for k in range(3 if df % 2 else 2, df, 2):  # odd: 1 + 2/3 c² + 2·4/(3·5) c⁴ …; even: 1 + c²/2 …
        term *= (k - 1) / k * cos2
        total += term
    if df % 2:
        inside = 2 / math.pi * (theta + (math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0))
    else:
        inside = math.sin(theta) * total  # P(|T| < |t|)
    return 0.5 + math.copysign(inside / 2, t)


def t_quantile(p: float, df: int) -> float:
    """The upper p-quantile (p ≥ 0.5) of Student's t with `df` degrees of freedom, by bisection.

    >>> [round(t_quantile(0.975, df), 3) for df in (1, 2, 10, 1000)]
    [12.706, 4.303, 2.228, 1.962]
    """
    if not 0.5 <= p < 1.0 or df < 1:
        raise ValueError(f"need 0.5 <= p < 1 and df >= 1, got p={p}, df={df}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(100):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2.0


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (sample std,
    ddof = 1): half = t((1 + confidence)/2, n − 1) · s / √n; the half-width is 0 for one value.

    >>> [round(v, 3) for v in mean_ci([1.0, 2.0, 3.0])]   # 4.303 · 1/√3
    [2.0, 2.484]
    >>> mean_ci([37.5])
    (37.5, 0.0)
    """
    xs = [float(v) for v in values]
    if len(xs) < 2:
        return statistics.fmean(xs), 0.0  # fmean raises on no values
    half = t_quantile((1.0 + confidence) / 2.0, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return statistics.fmean(xs), half


def relative_change(new: float, old: float) -> float:
    """Relative change in percent, as the paper reports it: (new − old) / old × 100
    (NaN when old is 0 or either value is missing). Reproduces the paper's abstract, GRPO-D vs
    SFT and vs GRPO on geometry with Qwen2-VL-2B (Table 1: 34.35, 32.49, 30.24):

    >>> round(relative_change(34.35, 32.49), 2), round(relative_change(34.35, 30.24), 2)
    (5.72, 13.59)
    """
    if old is None or new is None or old == 0 or math.isnan(old) or math.isnan(new):
        return math.nan
    return (new - old) / old * 100.0


def noise_verdict(a: tuple[float, float, int], b: tuple[float, float, int]) -> str:
    """Whether two configurations, each (mean, CI half-width, n seeds), differ beyond seed noise:
    "within noise" when their intervals overlap, "beyond noise" when not, "no CI (1 seed)" when
    neither has two seeds. A one-seed side counts as a point.

    >>> noise_verdict((60.0, 5.0, 2), (52.0, 4.0, 2)), noise_verdict((60.0, 1.0, 3), (52.0, math.nan, 1))
    ('within noise', 'beyond noise')
    """
    if a[2] < 2 and b[2] < 2:
        return "no CI (1 seed)"
    half_a, half_b = (half if n > 1 else 0.0 for _, half, n in (a, b))  # one seed: a point (its CI is NaN)
    overlap = a[0] - half_a <= b[0] + half_b and b[0] - half_b <= a[0] + half_a
    return "within noise" if overlap else "beyond noise"


# ---------------------------------------------------------------- inputs and outputs


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a jsonl file, one per non-blank line; a bad line names file and line."""
    if not path.is_file():
        raise Mr1Error(f"{path} not found: run `mr1 reproduce` for this experiment first")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise Mr1Error(f"{path}, line {number}: not a JSON object ({err})") from None
    return rows


def setting_label(setting: dict[str, Any] | None) -> str:
    """A short label for the varied config keys of a record.

    >>> setting_label({"reward.weights.format": 0.5}), setting_label({}), setting_label({"rl.lr": 1})
    ('α=0.5', '', 'rl.lr=1')
    """
    return ", ".join(f"{SETTING_SYMBOLS.get(k, k)}={v}" for k, v in sorted((setting or {}).items()))


def setting_value(setting: dict[str, Any] | None) -> float:
    """The single varied value of a record's setting; NaN when none, several or not a number.

    >>> setting_value({"rl.beta": 0.01}), setting_value({})
    (0.01, nan)
    """
    values = list((setting or {}).values())
    return float(values[0]) if len(values) == 1 and isinstance(values[0], (int, float)) else math.nan


def normalize_records(records: pd.DataFrame, experiment: str = "") -> pd.DataFrame:
    """Records with defaults for missing optional fields (`train_task` "" for the base model) and two
    derived columns: `setting_label` ("α=0.5") and `setting_value` (the single varied value, else NaN)."""
    defaults = {"experiment": experiment, "grid": "", "train_task": "", "seed": 0, "setting": {}}
    defaults |= {"format_rate": math.nan, "scoring": "", "profile": "", "run": ""}
    rows = [
        {k: v for k, v in row.items() if isinstance(v, (dict, list)) or pd.notna(v)}
        for row in records.to_dict("records")
    ]
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["setting"] = [s if isinstance(s, dict) else {} for s in frame["setting"]]
    frame["setting_label"] = [setting_label(s) for s in frame["setting"]]
    frame["setting_value"] = [setting_value(s) for s in frame["setting"]]
    return frame


def load_records(results_dir: Path, experiment: str) -> pd.DataFrame:
    """`results/<experiment>/records.jsonl` as a DataFrame (see `normalize_records`), one row per
    (model, eval task, seed)."""
    path = Path(results_dir) / experiment / "records.jsonl"
    rows = read_jsonl(path)
    missing = {"method", "eval_task", "accuracy"} - set().union(*rows)
    if not rows or missing:
        raise Mr1Error(f"{path}: no records, or records without {', '.join(sorted(missing))}")
    return normalize_records(pd.DataFrame(rows), experiment)


def load_paper_numbers(path: Path | None = None) -> dict[str, Any]:
    """The paper's published numbers (`experiments/paper_numbers.yaml`); {} when the file is absent."""
    path = path or PAPER_NUMBERS
    if not path.is_file():
        logger.info("paper numbers not found at %s: tables and figures show ours only", path)
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def aggregate(records: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per configuration: accuracy and format rate averaged over seeds, CI half-widths
    (NaN with one seed) and the seed count. A later record for the same seed replaces an earlier one."""
    latest = records.drop_duplicates([*GROUP_KEYS, "seed"], keep="last")
    rows = []
    for key, group in latest.groupby(GROUP_KEYS, sort=False, dropna=False):
        row: dict[str, Any] = dict(zip(GROUP_KEYS, key, strict=True))
        row["setting_value"] = group["setting_value"].iloc[0]
        row["n_seeds"] = len(group)
        for metric in ("accuracy", "format_rate"):
            values = group[metric].dropna()
            mean, half = mean_ci(values.tolist(), confidence) if len(values) else (math.nan, math.nan)
            row[metric], row[f"{metric}_ci"] = mean, (half if len(values) > 1 else math.nan)
        rows.append(row)
    rank = {name: i for i, name in enumerate((*TASKS, *METHODS))}  # tasks and methods in paper order
    table = pd.DataFrame(rows).assign(
        task_rank=lambda t: t["eval_task"].map(rank), rank=lambda t: t["method"].map(rank)
    )
    table = table.sort_values(["grid", "task_rank", "train_task", "rank", "setting_value"], kind="stable")
    return table.drop(columns=["task_rank", "rank"]).reset_index(drop=True)


# ---------------------------------------------------------------- per-experiment tables

Row = pd.Series
Paper = dict[str, Any]


def _number(tree: Any, *keys: Any) -> float:
    """A number deep in the paper's YAML, NaN where the paper gives none."""
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return float(tree) if isinstance(tree, (int, float)) else math.nan


def _find(table: pd.DataFrame, row: Row, **conditions: Any) -> int | None:
    """Index of the first row of the same grid and test task as `row` matching every condition."""
    conditions = {"grid": row["grid"], "eval_task": row["eval_task"], **conditions}
    mask = pd.Series(True, index=table.index)
    for column, value in conditions.items():
        mask &= table[column] == value
    return int(table.index[mask][0]) if mask.any() else None


def _direction(row: Row) -> str:
    """Cross-task key "<train>-><test>"; the base row serves the direction that tests on its task."""
    other = next((t for t in TASKS if t != row["eval_task"]), "")
    return f"{row['train_task'] or other}->{row['eval_task']}"


def _zero_of_grid(table: pd.DataFrame, row: Row) -> int | None:
    """The α = 0 (or β = 0) GRPO row of the row's grid; none for the base model."""
    return None if row["method"] == "base" else _find(table, row, method="grpo", setting_value=0.0)


# name → (title, (new, reference) row indices of the change reported on `row`)
COMPARISONS: dict[str, tuple[str, Callable[[pd.DataFrame, Row], tuple[int | None, int | None]]]] = {
    "vs_base": ("vs base", lambda t, r: (r.name, _find(t, r, method="base"))),
    "grpo_d_vs_this": ("GRPO-D vs this", lambda t, r: (_find(t, r, method="grpo-d"), r.name)),
    "vs_zero": ("vs α=0 / β=0", lambda t, r: (r.name, _zero_of_grid(t, r))),
}


# experiment → the paper's numbers for one table row: `paper_*` columns and, per comparison, its change
TABLES: Registry[Callable[[Row, Paper], dict[str, float]]] = Registry("results table")


@TABLES.register("exp3-same-task")
def _same_task_paper(row: Row, paper: Paper) -> dict[str, float]:
    """Exp3 — same-task accuracy (paper Table 1)"""
    table1 = (paper.get("exp3-same-task") or {}).get(PAPER_MODEL, {}).get(row["eval_task"], {})
    accuracy = {method: _number(table1, method) for method in METHODS}
    return {
        "paper_accuracy": accuracy.get(row["method"], math.nan),
        "vs_base": relative_change(accuracy.get(row["method"], math.nan), accuracy["base"]),
        "grpo_d_vs_this": relative_change(accuracy["grpo-d"], accuracy.get(row["method"], math.nan)),
    }


@TABLES.register("exp2-cross-task")
def _cross_task_paper(row: Row, paper: Paper) -> dict[str, float]:
    """Exp2 — cross-task: train on one task, test on the other (paper figure 7)"""
    figure7 = (paper.get("exp2-cross-task") or {}).get(PAPER_MODEL)
    key, method = _direction(row), row["method"]
    return {
        "paper_accuracy": _number(figure7, "inferred", key, method),
        "vs_base": _number(figure7, "relative", key, f"{method}_vs_base"),
        "grpo_d_vs_this": _number(figure7, "relative", key, f"grpo-d_vs_{method}"),
    }


@TABLES.register("exp1-format-reward")
def _format_reward_paper(row: Row, paper: Paper) -> dict[str, float]:
    """Exp1 — format weight α (paper figure 4) and constant KL weight β (figure 6), geometry, GRPO"""
    exp1, value = (paper.get("exp1-format-reward") or {}).get(row["grid"]), row["setting_value"]
    base = _number(paper, "exp3-same-task", PAPER_MODEL, row["eval_task"], "base")
    accuracy = base if row["method"] == "base" else _number(exp1, "accuracy", value)
    return {
        "paper_accuracy": accuracy,
        "paper_format_rate": _number(exp1, "format_rate", value),
        "vs_base": relative_change(accuracy, base),
        "vs_zero": _number(exp1, "relative_vs_alpha0", value),
    }


def build_table(experiment: str, records: pd.DataFrame, paper: Paper) -> pd.DataFrame:
    """The results table of one experiment: one row per configuration aggregated over seeds
    (`accuracy`, `accuracy_ci`, `n_seeds`, `format_rate`…), the paper's numbers beside ours
    (`paper_accuracy`…) and the relative changes the paper reports, ours and the paper's
    (`<comparison>_ours_pct`, `<comparison>_paper_pct`, `<comparison>_noise`)."""
    paper_row, table = TABLES.get(experiment), aggregate(normalize_records(records, experiment))
    published = pd.DataFrame([paper_row(row, paper) for _, row in table.iterrows()], index=table.index)
    for column in published.columns:
        if column.startswith("paper_"):
            table[column] = published[column]
            continue
        pairs = [COMPARISONS[column][1](table, row) for _, row in table.iterrows()]
        valid = [None not in pair and pair[0] != pair[1] for pair in pairs]
        stats = [
            [tuple(table.loc[i, ["accuracy", "accuracy_ci", "n_seeds"]]) for i in pair] if ok else None
            for pair, ok in zip(pairs, valid, strict=True)
        ]
        table[f"{column}_ours_pct"] = [relative_change(s[0][0], s[1][0]) if s else math.nan for s in stats]
        table[f"{column}_paper_pct"] = published[column].where(valid)
        table[f"{column}_noise"] = [noise_verdict(*s) if s else "" for s in stats]
    return table


# ---------------------------------------------------------------- markdown and files

HEADERS = {"grid": "grid", "train_task": "trained on", "eval_task": "tested on", "method": "method"}
HEADERS |= {"setting_label": "setting", "accuracy": "ours acc. %", "n_seeds": "seeds"}
HEADERS |= {"format_rate": "ours format %", "paper_accuracy": "paper acc. %"}
HEADERS |= {"paper_format_rate": "paper format %"}
FOOTNOTES = (
    "Relative change = (new − reference) / reference × 100, as the paper computes it: GRPO-D vs SFT on "
    "geometry (Table 1, 2B) = (34.35 − 32.49) / 32.49 × 100 = +5.72 %, the abstract's figure. "
    '"vs base": this row over the untrained model; "GRPO-D vs this": GRPO-D over this row; '
    '"vs α=0 / β=0": this row over its grid\'s GRPO run with α = 0 (or β = 0).',
    'Noise: "within noise" when the 95 % Student-t intervals over seeds of the two compared rows overlap, '
    '"beyond noise" when not (a one-seed side counts as a point); "no CI (1 seed)" when neither side '
    "has two seeds.",
)
TINY_NOTE = (
    "The tiny profile is a ~1M-parameter model on synthetic data: compare directions and relative changes "
    "with the paper, not absolute accuracies."
)
ONE_SEED_NOTE = (
    "One seed per configuration: no confidence interval is available, so no difference here can be told "
    "apart from seed noise."
)


def _cell(value: Any, ci: float = math.nan, signed: bool = False) -> str:
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        if math.isnan(value):
            return "—"
        text = f"{value:+.2f}" if signed else f"{value:.2f}"
        return text if math.isnan(ci) else f"{text} ± {ci:.2f}"
    return str(value) or "—"


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
        headers += [f"{title}: ours %", f"{title}: paper %", "noise"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in table.astype({"n_seeds": str}).iterrows():
        cells = [_cell(row[c], row.get(f"{c}_ci", math.nan)) for c in columns]
        for name in comparisons:
            cells += [_cell(row[f"{name}_{side}_pct"], signed=True) for side in ("ours", "paper")]
            cells.append(row[f"{name}_noise"] or "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table_markdown(experiment: str, table: pd.DataFrame, records: pd.DataFrame, paper: Paper) -> str:
    """The markdown page of an experiment's table: title, what was run, ours beside the paper, notes."""
    title = (TABLES.get(experiment).__doc__ or experiment).strip()
    profile, scoring = (
        ", ".join(sorted(set(records[c].astype(str)) - {""})) or "?" for c in ("profile", "scoring")
    )
    seeds = ", ".join(str(seed) for seed in sorted(set(records["seed"])))
    intro = [
        f"Ours: profile **{profile}**, scoring **{scoring}**, seeds {seeds}; accuracy is the mean over "
        "seeds ± the 95 % Student-t half-width.",
        f'Paper: Qwen2-VL-2B-Instruct ({PAPER_NUMBERS.name}); "—" where the paper gives no number.',
        *([TINY_NOTE] if "tiny" in profile else []),
        *([ONE_SEED_NOTE] if (table["n_seeds"] < 2).all() else []),
    ]
    notes = [*FOOTNOTES, " ".join(str((paper.get(experiment) or {}).get("note", "")).split())]
    page = [f"# {title}", "", *(f"- {text}" for text in intro), "", *_markdown_rows(table)]
    return "\n".join([*page, "", "Notes:", "", *(f"- {text}" for text in notes if text), ""])


def write_tables(results_dir: Path, experiment: str, paper: Paper | None = None) -> list[Path]:
    """Write `results/<experiment>/table.csv` and `table.md` atomically; return their paths."""
    records, paper = load_records(results_dir, experiment), load_paper_numbers() if paper is None else paper
    table = build_table(experiment, records, paper)
    csv_path, md_path = (Path(results_dir) / experiment / name for name in ("table.csv", "table.md"))
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(md_path, table_markdown(experiment, table, records, paper))
    return [csv_path, md_path]
