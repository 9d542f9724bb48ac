"""`results/summary.md`: each claim of the paper beside ours, with a 95 % paired-bootstrap interval
and a one-word verdict, for every experiment in the results folder (its report lists the claims).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mr1cli.files import atomic_write_text
from mr1cli.reporting.records import PAPER_NUMBERS, SPLITS, load_paper_numbers, load_records
from mr1cli.reporting.report import Paper, Report
from mr1cli.reporting.reports import REPORTS, experiments_with_results, report_of
from mr1cli.reporting.statistics import MDE_FACTOR, RESAMPLES
from mr1cli.reporting.verdicts import Finding, check, joint_verdict

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


def summary_markdown(
    records: dict[str, pd.DataFrame], reports: dict[str, Report], paper: Paper, not_run: list[str]
) -> str:
    """The page: title, design, then one table per experiment that was run (a row per claim of its
    report)."""
    page = ["# The paper's claims, checked", "", *(f"- {line}" for line in _design(records)), ""]
    if not_run:
        page += [f"Not run: {', '.join(not_run)}.", ""]
    for experiment, frame in records.items():
        findings = [f for claim in reports[experiment].claims(frame, paper) if (f := check(frame, claim))]
        if not findings:
            continue
        page += [f"## {experiment}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        page += ["| " + " | ".join(row) + " |" for row in _rows(findings)]
        page.append("")
    return "\n".join(page)


def write_summary(results_dir: Path, paper: Paper | None = None) -> Path | None:
    """Write `results/summary.md` (atomically) from the records of every experiment in `results_dir`,
    in the order of their reports in REPORTS; None (and nothing written) when there is none. The
    paper's experiments (the registered reports' names) without results are listed as not run."""
    reports = {name: report_of(results_dir, name)[0] for name in experiments_with_results(results_dir)}
    if not reports:
        return None
    order = REPORTS.names()
    present = sorted(reports, key=lambda name: (order.index(reports[name].name), name))
    records = {name: load_records(results_dir, name) for name in present}
    paper = load_paper_numbers() if paper is None else paper
    path = Path(results_dir) / "summary.md"
    not_run = [name for name in order if name not in reports]
    atomic_write_text(path, summary_markdown(records, reports, paper, not_run))
    return path
