"""One paper experiment's report: everything that turns its saved results into its table, its
claims and its figures, in one place.

A report is registered by name in `mr1cli.reporting.reports.REPORTS` (one module per paper
experiment in reporting/reports/); an experiment spec names the report it uses
(`report: exp2-cross-task`), and `mr1 figures` finds it again from the spec saved with the
results (`results/<experiment>/spec.json`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mr1cli.reporting.figure_kit import Draw
from mr1cli.reporting.verdicts import Claim

Row = pd.Series  # one row of the results table (a configuration: grid, tasks, method, setting)
Paper = dict[str, Any]  # experiments/paper_numbers.yaml


@dataclass(frozen=True)
class Report:
    """What one experiment's results page holds.

    `paper_columns(row, paper)` gives the paper's numbers for one table row: `paper_*` columns, and
    per comparison of tables.COMPARISONS that the experiment reports, the paper's relative change.
    `claims(records, paper)` lists the claims summary.md checks. `figures` maps a figure's file stem
    to its draw function, in drawing order. `paper_section` is the section of paper_numbers.yaml
    whose `note` the table page quotes.
    """

    name: str
    title: str
    paper_section: str
    paper_columns: Callable[[Row, Paper], dict[str, float]]
    claims: Callable[[pd.DataFrame, Paper], list[Claim]]
    figures: Mapping[str, Draw]
