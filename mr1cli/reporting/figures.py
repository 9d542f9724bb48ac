"""`mr1 figures`: tables, the claims summary and figures from saved results only (no training, no
torch). Each experiment's figures are drawn by its report (the one its saved spec names), written
as PNG and SVG into `results/<experiment>/figures/`. A figure whose inputs are missing is skipped
(logged at info).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from mr1cli.core.errors import Mr1Error
from mr1cli.reporting.figure_kit import Inputs, load_curves
from mr1cli.reporting.records import load_paper_numbers, load_records
from mr1cli.reporting.report import Report
from mr1cli.reporting.reports import experiments_with_results, report_of
from mr1cli.reporting.summary import write_summary
from mr1cli.reporting.tables import build_table, write_tables

logger = logging.getLogger(__name__)


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


def _inputs(results_dir: Path, experiment: str, report: Report) -> Inputs:
    table, ours, records = None, "ours", None
    if (Path(results_dir) / experiment / "records.jsonl").is_file():
        records = load_records(results_dir, experiment)
        table = build_table(report, records, load_paper_numbers(), experiment)
        profiles = sorted(set(records["profile"].astype(str)) - {""})
        ours = f"ours ({', '.join(profiles)} profile)" if profiles else "ours"
    return Inputs(table, load_curves(results_dir, experiment), ours, records)


def make_figures(results_dir: Path, experiment: str | None = None) -> list[Path]:
    """Draw the figures of one experiment's report (or of every experiment with results) from saved
    results; return the files. A figure that needs no results (β(s)) is drawn even without them."""
    written: list[Path] = []
    for name in [experiment] if experiment else experiments_with_results(results_dir):
        report, stems = report_of(results_dir, name)
        inputs = _inputs(results_dir, name, report)
        for stem in stems:
            fig = report.figures[stem](inputs)
            if fig is None:
                logger.info("%s: %s skipped, its inputs are missing", name, stem)
                continue
            written += _save(fig, Path(results_dir) / name / "figures", stem)
    return written


def write_report(results_dir: Path, experiment: str) -> list[Path]:
    """One experiment's table (csv and markdown) and figures, from its saved results."""
    return write_tables(results_dir, experiment, report_of(results_dir, experiment)[0]) + make_figures(
        results_dir, experiment
    )


def make_all(results_dir: Path) -> list[Path]:
    """Tables, the claims summary and figures for every experiment folder present under `results_dir`
    (`mr1 figures`)."""
    present = experiments_with_results(results_dir)
    if not present:
        raise Mr1Error(
            f"{results_dir}: no results to draw (no <experiment>/records.jsonl); run `mr1 reproduce` first"
        )
    written = [
        path for name in present for path in write_tables(results_dir, name, report_of(results_dir, name)[0])
    ]
    summary = write_summary(results_dir)
    return written + ([summary] if summary else []) + make_figures(results_dir)
