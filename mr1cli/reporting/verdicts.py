"""Claims and verdicts: a claim compares two configurations of one experiment, new − reference in
accuracy points on the same test examples (and seeds), against the direction the paper reports;
checked on our records it gets a 95 % paired-bootstrap interval and a one-word verdict.

Each paper experiment's report lists its claims (`Report.claims`, in reporting/reports/);
`summary.py` writes them into results/summary.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mr1cli.reporting.records import correctness_matrix, paired_matrices
from mr1cli.reporting.statistics import PairedDifference, paired_difference, verdict

SIGNS = {1: ">", -1: "<", 0: "≈", None: "vs"}
Conditions = dict[str, Any]  # record column → value: the configuration on one side of a claim
Paper = dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """new − reference has the sign `expected` (+1, −1, 0 for the paper's "≈ 0", None where the paper
    gives no direction). Claims sharing a `joint` text are also read together: the joint claim holds
    when every one of them does."""

    text: str
    paper: str  # the paper's number, as printed (or inferred) in paper_numbers.yaml
    new: Conditions
    reference: Conditions
    expected: int | None
    split: str = "test"  # or "heldout": the unshifted held-out set
    joint: str = ""


@dataclass(frozen=True)
class Finding:
    """A claim checked on our records: both accuracies (points) and their paired difference (None
    when the records hold no per-example results)."""

    claim: Claim
    new_accuracy: float
    reference_accuracy: float
    difference: PairedDifference | None

    @property
    def verdict(self) -> str:
        if self.difference is None:
            return "— (no per-example results)"
        return verdict(self.difference, self.claim.expected)


def _configuration(records: pd.DataFrame, conditions: Conditions) -> pd.DataFrame:
    """The records (latest per seed) of the configuration matching every condition."""
    mask = pd.Series(True, index=records.index)
    for column, value in conditions.items():
        mask &= records[column] == value
    return records[mask].drop_duplicates("seed", keep="last")


def _accuracy(configuration: pd.DataFrame, split: str) -> float:
    matrix = correctness_matrix(configuration, split)
    column = "accuracy" if split == "test" else f"{split}_accuracy"
    return float(100.0 * matrix.mean()) if matrix is not None else float(configuration[column].mean())


def check(records: pd.DataFrame, claim: Claim) -> Finding | None:
    """`claim` on one experiment's records; None when a side (or its held-out results) is missing."""
    new, reference = (_configuration(records, side) for side in (claim.new, claim.reference))
    if new.empty or reference.empty:
        return None
    accuracies = (_accuracy(new, claim.split), _accuracy(reference, claim.split))
    if any(math.isnan(value) for value in accuracies):
        return None
    matrices = paired_matrices(new, reference, claim.split)
    return Finding(claim, *accuracies, paired_difference(*matrices) if matrices is not None else None)


def joint_verdict(findings: list[Finding]) -> str:
    """Claims read together: "reproduced" when every one is, "opposite" when any one is, else
    "not detected" with the largest MDE among those not reproduced."""
    differences = [f.difference for f in findings if f.difference is not None]
    if len(differences) < len(findings):
        return "— (no per-example results)"
    verdicts = [f.verdict for f in findings]
    if "opposite" in verdicts:
        return "opposite"
    undetected = [d.mde for d, v in zip(differences, verdicts, strict=True) if v != "reproduced"]
    return f"not detected (MDE {max(undetected):.1f})" if undetected else "reproduced"


# ---------------------------------------------------------------- texts of the paper's numbers


def points_text(new: float, reference: float) -> str:
    """The paper's two accuracies as a difference in points: `+12.00 (76.50 vs 64.50)`."""
    if math.isnan(new) or math.isnan(reference):
        return "—"
    return f"{new - reference:+.2f} ({new:.2f} vs {reference:.2f})"


def relative_text(relative: float, detail: str = "") -> str:
    """A relative change the paper prints: `+20.02 % rel.` and `detail`; "—" where it prints none."""
    return "—" if math.isnan(relative) else f"{relative:+.2f} % rel.{detail}"
