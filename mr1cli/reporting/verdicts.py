"""`results/summary.md`: each claim of the paper beside ours, with a 95 % paired-bootstrap interval
and a one-word verdict, from the records of the experiments in the results folder.

A claim compares two configurations of one experiment, new − reference in accuracy points on the
same test examples (and seeds), against the direction the paper reports. The claims of each
experiment are listed by one function in `CLAIMS` (experiment name → claims), read off
experiments/paper_numbers.yaml (Qwen2-VL-2B) here and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mr1cli.files import atomic_write_text
from mr1cli.reporting.figure_kit import LABELS
from mr1cli.reporting.records import (
    PAPER_NUMBERS,
    SPLITS,
    correctness_matrix,
    load_paper_numbers,
    load_records,
    paired_matrices,
)
from mr1cli.reporting.statistics import MDE_FACTOR, RESAMPLES, PairedDifference, paired_difference, verdict

PAPER_MODEL = "qwen2-vl-2b"
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


# ---------------------------------------------------------------- the paper's claims


def _number(tree: Any, *keys: Any) -> float:
    """A number deep in the paper's YAML, NaN where the paper gives none."""
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return float(tree) if isinstance(tree, (int, float)) else math.nan


def _points(new: float, reference: float) -> str:
    """The paper's two accuracies as a difference in points: `+12.00 (76.50 vs 64.50)`."""
    if math.isnan(new) or math.isnan(reference):
        return "—"
    return f"{new - reference:+.2f} ({new:.2f} vs {reference:.2f})"


def _relative(relative: float, detail: str = "") -> str:
    """A relative change the paper prints: `+20.02 % rel.` and `detail`; "—" where it prints none."""
    return "—" if math.isnan(relative) else f"{relative:+.2f} % rel.{detail}"


def same_task_claims(records: pd.DataFrame, paper: Paper) -> list[Claim]:
    """Exp3 (Table 1): GRPO-D beats GRPO and SFT on each task; GRPO and GRPO-D beat the base model,
    on the shifted test set and on the held-out set."""
    claims = []
    for task in dict.fromkeys(records["eval_task"]):
        table1 = {m: _number(paper, "exp3-same-task", PAPER_MODEL, task, m) for m in LABELS}
        side = {m: {"method": m, "train_task": task, "eval_task": task} for m in LABELS}
        side["base"] = {"method": "base", "eval_task": task}
        for reference in ("grpo", "sft"):
            text = f"GRPO-D > {LABELS[reference]}, same task: {task}"
            paper_text = _points(table1["grpo-d"], table1[reference])
            claims.append(Claim(text, paper_text, side["grpo-d"], side[reference], +1))
        for method in ("grpo", "grpo-d"):
            text = f"{LABELS[method]} > base: {task}"
            paper_text = _points(table1[method], table1["base"])
            claims.append(Claim(text, paper_text, side[method], side["base"], +1))
            claims.append(
                Claim(f"{text}, held-out set", "— (test set only)", side[method], side["base"], +1, "heldout")
            )
    return claims


def cross_task_claims(records: pd.DataFrame, paper: Paper) -> list[Claim]:
    """Exp2 (figure 7): SFT collapses across tasks (counting → geometry −77.77 %; geometry → counting
    "≈ 0") while GRPO-D gains over the base model and beats SFT."""
    figure7, claims = (paper.get("exp2-cross-task") or {}).get(PAPER_MODEL) or {}, []
    trained = records[records["method"] != "base"]
    for train, test in dict.fromkeys(zip(trained["train_task"], trained["eval_task"], strict=True)):
        key = f"{train}->{test}"
        side = {m: {"method": m, "train_task": train, "eval_task": test} for m in LABELS}
        side["base"] = {"method": "base", "eval_task": test}
        printed = (figure7.get("relative") or {}).get(key) or {}
        for new, reference in (("sft", "base"), ("grpo-d", "base"), ("grpo-d", "sft")):
            name, relative = f"{new}_vs_{reference}", _number(printed, f"{new}_vs_{reference}")
            accuracies = [_number(figure7, "inferred", key, m) for m in (new, reference)]
            guess = "" if math.isnan(sum(accuracies)) else " (≈ {:.2f} vs {:.2f})".format(*accuracies)
            if name in printed and printed[name] is None:  # the text says only "≈ 0"
                expected, paper_text = 0, "≈ 0 (text)"
            else:
                expected = None if math.isnan(relative) else int(math.copysign(1, relative))
                paper_text = _relative(relative, guess)
            text = f"{LABELS[new]} {SIGNS[expected]} {LABELS[reference]} across tasks: {train} → {test}"
            claims.append(Claim(text, paper_text, side[new], side[reference], expected))
    return claims


def format_reward_claims(records: pd.DataFrame, paper: Paper) -> list[Claim]:
    """Exp1: α = 1 beats α = 0 (+20.02 %), as does every α > 0 (figure 4; we check the best of ours,
    picked by its mean, so optimistic); β = 0.01 beats every other constant β (figure 6)."""
    exp1 = paper.get("exp1-format-reward") or {}
    alpha = records[(records["grid"] == "alpha") & (records["method"] == "grpo")]
    beta = records[(records["grid"] == "beta") & (records["method"] == "grpo")]
    claims = []
    if {0.0, 1.0} <= set(alpha["setting_value"]):
        accuracy = _number(exp1, "alpha", "accuracy", 1.0)
        detail = "" if math.isnan(accuracy) else f" (α = 1: {accuracy:.2f})"
        paper_text = _relative(_number(exp1, "alpha", "relative_vs_alpha0", 1.0), detail)
        zero = {"method": "grpo", "grid": "alpha", "setting_value": 0.0}
        claims.append(Claim("α = 1 > α = 0", paper_text, {**zero, "setting_value": 1.0}, zero, +1))
        positive = alpha[alpha["setting_value"] > 0].groupby("setting_value")["accuracy"].mean()
        best = float(positive.idxmax())
        text = f"best α > 0 (α = {best:g}, our highest mean) > α = 0"
        claims.append(Claim(text, "every α > 0 beats α = 0", {**zero, "setting_value": best}, zero, +1))
    if 0.01 in set(beta["setting_value"]):
        best = {"method": "grpo", "grid": "beta", "setting_value": 0.01}
        accuracy = _number(exp1, "beta", "accuracy", 0.01)
        paper_text = "best at β = 0.01" + ("" if math.isnan(accuracy) else f" ({accuracy:.2f})")
        for other in sorted(set(beta["setting_value"]) - {0.01}):
            text = f"β = 0.01 > β = {other:g}"
            joint = "β = 0.01 beats every other constant β"
            claims.append(Claim(text, paper_text, best, {**best, "setting_value": other}, +1, joint=joint))
    return claims


# experiment → its claims, in the order summary.md lists them
CLAIMS: dict[str, Callable[[pd.DataFrame, Paper], list[Claim]]] = {
    "exp3-same-task": same_task_claims,
    "exp2-cross-task": cross_task_claims,
    "exp1-format-reward": format_reward_claims,
}


# ---------------------------------------------------------------- summary.md

HEADER = (
    "claim",
    "paper (Qwen2-VL-2B)",
    "ours: Δ points [95 % CI]",
    "ours: accuracy % (new vs reference)",
    "verdict",
)


def _difference_text(finding: Finding) -> str:
    """The paired difference in points and its 95 % interval: `+3.2 [-1.0, +7.5]`."""
    difference = finding.difference
    if difference is None:
        return f"{finding.new_accuracy - finding.reference_accuracy:+.1f} (no interval)"
    return f"{difference.points:+.1f} [{difference.low:+.1f}, {difference.high:+.1f}]"


def _rows(findings: list[Finding]) -> list[tuple[str, ...]]:
    """One table row per finding; claims read jointly add a row after their last one, showing the
    comparison with the smallest difference."""
    rows = []
    for finding in findings:
        claim = finding.claim
        accuracies = f"{finding.new_accuracy:.1f} vs {finding.reference_accuracy:.1f}"
        rows.append((claim.text, claim.paper, _difference_text(finding), accuracies, finding.verdict))
        together = [f for f in findings if claim.joint and f.claim.joint == claim.joint]
        if together and together[-1] is finding:
            closest = min(together, key=lambda f: f.new_accuracy - f.reference_accuracy)
            closest_text = f"closest: {closest.claim.text}: {_difference_text(closest)}"
            rows.append(
                (f"**{claim.joint}**", claim.paper, closest_text, "", f"**{joint_verdict(together)}**")
            )
    return rows


def _design(records: dict[str, pd.DataFrame]) -> list[str]:
    """The header's design facts: profile, seeds, test-set sizes, the bootstrap, the MDE."""
    frame = pd.concat(records.values(), ignore_index=True)
    trained = frame[frame["method"] != "base"]
    profiles = ", ".join(sorted(set(frame["profile"].astype(str)) - {""})) or "?"
    seeds = ", ".join(str(s) for s in sorted(set(trained["seed"]))) or "—"
    sizes = []
    for task, group in frame.groupby("eval_task"):
        for split in SPLITS:
            lengths = sorted(
                {len(bits) for bits in group[f"{split}_correct"] if isinstance(bits, str) and bits}
            )
            sizes += [f"{task} {split} {'/'.join(str(n) for n in lengths)}"] if lengths else []
    return [
        f"Profile **{profiles}**; seeds per trained configuration: {seeds} (the base model: one greedy "
        "evaluation, the same for every seed).",
        f"Examples per evaluated set: {', '.join(sizes) or 'no per-example results'} (test: the shifted test "
        "set, as in the paper; heldout: unshifted, from the training distribution).",
        "Ours: the paired difference new − reference in accuracy points, on the same test examples and, where "
        "both sides have them, the same seeds (runs with one seed are paired); 95 % interval from a two-level "
        f"bootstrap ({RESAMPLES} resamples of seeds and, independently, of test examples, with replacement, "
        "applied to both sides alike).",
        f"MDE (minimum detectable effect) = (z₀.₉₇₅ + z₀.₈) × bootstrap SE = {MDE_FACTOR:.2f} × SE: the difference "
        "this design finds 80 % of the time at two-sided 5 %.",
        'Verdict: "reproduced" when the interval excludes 0 in the paper\'s direction, "opposite" when it '
        'excludes 0 the other way, else "not detected (MDE x)". For the paper\'s "≈ 0": "no difference (MDE x)" '
        'or "differs". Claims read jointly (in bold) hold when each one does.',
        f"Paper: Qwen2-VL-2B-Instruct ({PAPER_NUMBERS.name}); relative changes are (new − reference) / reference.",
    ]


def summary_markdown(records: dict[str, pd.DataFrame], paper: Paper, not_run: list[str]) -> str:
    """The page: title, design, then one table per experiment that was run (a row per claim)."""
    page = ["# The paper's claims, checked", "", *(f"- {line}" for line in _design(records)), ""]
    if not_run:
        page += [f"Not run: {', '.join(not_run)}.", ""]
    for experiment, frame in records.items():
        findings = [f for claim in CLAIMS[experiment](frame, paper) if (f := check(frame, claim))]
        if not findings:
            continue
        page += [f"## {experiment}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        page += ["| " + " | ".join(row) + " |" for row in _rows(findings)]
        page.append("")
    return "\n".join(page)


def write_summary(results_dir: Path, paper: Paper | None = None) -> Path | None:
    """Write `results/summary.md` (atomically) from the records of the paper's experiments present in
    `results_dir`; None (and nothing written) when none of them is."""
    present = [name for name in CLAIMS if (Path(results_dir) / name / "records.jsonl").is_file()]
    if not present:
        return None
    records = {name: load_records(results_dir, name) for name in present}
    paper = load_paper_numbers() if paper is None else paper
    path = Path(results_dir) / "summary.md"
    atomic_write_text(path, summary_markdown(records, paper, [n for n in CLAIMS if n not in present]))
    return path
