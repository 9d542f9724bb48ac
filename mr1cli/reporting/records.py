"""Reading saved results: `records.jsonl` per experiment, the paper's numbers, each configuration's
per-example correctness, aggregation over seeds and test examples."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mr1cli.config import EXPERIMENTS_DIR
from mr1cli.core.errors import Mr1Error
from mr1cli.core.methods import METHODS
from mr1cli.reporting.statistics import Interval, accuracy_interval
from mr1cli.tasks import TASKS

logger = logging.getLogger(__name__)

PAPER_NUMBERS = EXPERIMENTS_DIR / "paper_numbers.yaml"
PAPER_MODEL = "qwen2-vl-2b"  # the paper's main model; the only one in Exp1 and Exp2
SETTING_SYMBOLS = {"reward.weights.format": "α", "rl.kl.beta": "β"}
GROUP_KEYS = ["grid", "train_task", "eval_task", "method", "setting_label"]
# the evaluated sets of a record: data.test (shifted) and data.heldout (the training distribution)
SPLITS = ("test", "heldout")


def method_order() -> list[str]:
    """The untrained base model, then the registered methods, in the paper's order."""
    return ["base", *METHODS.names()]


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

    >>> setting_value({"rl.kl.beta": 0.01}), setting_value({})
    (0.01, nan)
    """
    values = list((setting or {}).values())
    return float(values[0]) if len(values) == 1 and isinstance(values[0], (int, float)) else math.nan


def normalize_records(records: pd.DataFrame, experiment: str = "") -> pd.DataFrame:
    """Records with defaults for missing optional fields (`train_task` "" for the base model) and two
    derived columns: `setting_label` ("α=0.5") and `setting_value` (the single varied value, else NaN)."""
    defaults = {"experiment": experiment, "grid": "", "train_task": "", "seed": 0, "setting": {}}
    defaults |= {"format_rate": math.nan, "scoring": "", "profile": "", "run": ""}
    defaults |= {"heldout_accuracy": math.nan} | {f"{s}_{f}": "" for s in SPLITS for f in ("hash", "correct")}
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


def paper_number(tree: Any, *keys: Any) -> float:
    """A number deep in the paper's YAML, NaN where the paper gives none.

    >>> paper_number({"a": {"b": 1}}, "a", "b"), paper_number({"a": {}}, "a", "b")
    (1.0, nan)
    """
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return float(tree) if isinstance(tree, (int, float)) else math.nan


def correctness_bits(correct: list[bool]) -> str:
    """Per-example correctness as a record stores it: one '1' or '0' per example, in test-set order.

    >>> correctness_bits([True, False, True])
    '101'
    """
    return "".join("1" if ok else "0" for ok in correct)


def correctness_matrix(configuration: pd.DataFrame, split: str = "test") -> np.ndarray | None:
    """The [seeds, examples] 0/1 matrix of one configuration's records (one per seed) on `split`
    (test or heldout), rows in seed order; None when a record holds no per-example results (records
    written before they were kept, or no held-out set) or the records were scored on different sets."""
    rows = configuration.sort_values("seed", kind="stable")
    bits = [b if isinstance(b, str) else "" for b in rows[f"{split}_correct"]]
    if not all(bits) or len(set(rows[f"{split}_hash"])) > 1 or len({len(b) for b in bits}) > 1:
        return None
    return np.array([np.frombuffer(b.encode(), dtype=np.uint8) - ord("0") for b in bits], dtype=float)


def paired_matrices(
    a: pd.DataFrame, b: pd.DataFrame, split: str = "test"
) -> tuple[np.ndarray, np.ndarray] | None:
    """The correctness matrices of two configurations' records on `split`, when both hold per-example
    results on the same examples (same examples hash); else None."""
    left, right = correctness_matrix(a, split), correctness_matrix(b, split)
    if left is None or right is None or set(a[f"{split}_hash"]) != set(b[f"{split}_hash"]):
        return None
    return left, right


def configurations(records: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The records of each configuration (its GROUP_KEYS values), one per seed: a later record for
    the same seed replaces an earlier one."""
    latest = records.drop_duplicates([*GROUP_KEYS, "seed"], keep="last")
    return dict(iter(latest.groupby(GROUP_KEYS, sort=False, dropna=False)))


def configuration_key(row: pd.Series) -> tuple:
    """The GROUP_KEYS values of a table row or record, the key of `configurations`."""
    return tuple(row[key] for key in GROUP_KEYS)


def _accuracy_columns(group: pd.DataFrame, split: str) -> dict[str, float]:
    """`<split>_accuracy` (plain `accuracy` for the test set), its bootstrap half-width (`_ci`), low and
    high; without per-example results the mean of the records' accuracies and NaN bounds."""
    prefix = "" if split == "test" else f"{split}_"
    matrix = correctness_matrix(group, split)
    if matrix is None:
        values = group[f"{prefix}accuracy"].dropna()
        interval = Interval(float(values.mean()) if len(values) else math.nan, math.nan, math.nan)
    else:
        interval = accuracy_interval(matrix)
    return {
        f"{prefix}accuracy": interval.mean,
        f"{prefix}accuracy_ci": interval.half_width,
        f"{prefix}accuracy_low": interval.low,
        f"{prefix}accuracy_high": interval.high,
    }


def aggregate(records: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: accuracy over seeds × test examples with its 95 % two-level bootstrap
    interval (`accuracy_ci` the half-width, `accuracy_low`/`_high` the bounds; NaN for records without
    per-example results), the same for the held-out set (`heldout_accuracy`…), the format rate averaged
    over seeds and the seed count."""
    rows = []
    for key, group in configurations(records).items():
        row: dict[str, Any] = dict(zip(GROUP_KEYS, key, strict=True))
        row["setting_value"] = group["setting_value"].iloc[0]
        row["n_seeds"] = len(group)
        for split in SPLITS:
            row |= _accuracy_columns(group, split)
        row["format_rate"] = float(group["format_rate"].mean())
        rows.append(row)
    rank = {
        name: i for i, name in enumerate((*TASKS.names(), *method_order()))
    }  # tasks and methods in paper order
    table = pd.DataFrame(rows).assign(
        task_rank=lambda t: t["eval_task"].map(rank), rank=lambda t: t["method"].map(rank)
    )
    table = table.sort_values(["grid", "task_rank", "train_task", "rank", "setting_value"], kind="stable")
    return table.drop(columns=["task_rank", "rank"]).reset_index(drop=True)
