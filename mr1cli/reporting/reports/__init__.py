"""The paper's experiments' reports, one module each, registered by name in REPORTS, and the
report a saved experiment uses.

An experiment spec names the report it uses (`report: exp2-cross-task`); `mr1 reproduce` saves the
spec beside the results (`results/<experiment>/spec.json`), where `mr1 figures` reads it again.
To report a new kind of experiment, write a module with a `Report` and register it with
`REPORTS.add(name, report)`.
"""

from __future__ import annotations

import json
from pathlib import Path

from mr1cli.core.errors import Mr1Error
from mr1cli.core.registry import Registry
from mr1cli.reporting.report import Report
from mr1cli.reporting.reports import exp1_format_reward, exp2_cross_task, exp3_same_task

REPORTS: Registry[Report] = Registry("report")
for _module in (exp3_same_task, exp2_cross_task, exp1_format_reward):  # the order of results/summary.md
    REPORTS.add(_module.REPORT.name, _module.REPORT)

# spec.json written before reports existed names a table kind instead: the report that holds it
_LEGACY_TABLES = {
    "same-task": "exp3-same-task",
    "cross-task": "exp2-cross-task",
    "format-reward": "exp1-format-reward",
}


def experiments_with_results(results_dir: Path) -> list[str]:
    """The experiment folders under `results_dir` that hold records, by name."""
    return sorted(path.parent.name for path in Path(results_dir).glob("*/records.jsonl"))


def report_of(results_dir: Path, experiment: str) -> tuple[Report, tuple[str, ...]]:
    """The report an experiment's results use and the figures to draw, from the spec saved with them
    (`report:`, and `figures:` when the spec picks some); without a saved spec, the report named like
    the experiment and all its figures."""
    path = Path(results_dir) / experiment / "spec.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as error:
        raise Mr1Error(f"{path}: not valid JSON ({error})") from None
    report = REPORTS.get(spec.get("report") or _LEGACY_TABLES.get(spec.get("table"), experiment))
    chosen = spec.get("figures") if spec.get("report") else None
    return report, tuple(chosen if chosen is not None else report.figures)
