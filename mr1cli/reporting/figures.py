"""Figures from saved results only (no training): each experiment's figures, named in its spec and
drawn by the functions registered in `FIGURES`, written as PNG and SVG into
`results/<experiment>/figures/`. A figure whose inputs are missing is skipped (logged at info).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from mr1cli.core.errors import Mr1Error
from mr1cli.experiments.specs import list_experiments, load_spec
from mr1cli.reporting import learning_curves, paper_figures  # noqa: F401  (they fill FIGURES)
from mr1cli.reporting.figure_kit import FIGURES, Inputs, load_curves
from mr1cli.reporting.records import load_paper_numbers, load_records
from mr1cli.reporting.tables import build_table, write_tables
from mr1cli.reporting.verdicts import write_summary

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


def _inputs(results_dir: Path, experiment: str, table_kind: str) -> Inputs:
    table, ours = None, "ours"
    if (Path(results_dir) / experiment / "records.jsonl").is_file():
        records = load_records(results_dir, experiment)
        table = build_table(table_kind, records, load_paper_numbers(), experiment)
        profiles = sorted(set(records["profile"].astype(str)) - {""})
        ours = f"ours ({', '.join(profiles)} profile)" if profiles else "ours"
    return Inputs(table, load_curves(results_dir, experiment), ours)


def make_figures(results_dir: Path, experiment: str | None = None) -> list[Path]:
    """Draw the figures each experiment's spec names (one experiment, or all) from saved results;
    return the files. A figure that needs no results (β(s)) is drawn even without them."""
    written: list[Path] = []
    for name in [experiment] if experiment else list_experiments():
        spec = load_spec(name)
        inputs = _inputs(results_dir, name, spec["table"])
        for stem in spec.get("figures") or []:
            fig = FIGURES.get(stem)(inputs)
            if fig is None:
                logger.info("%s: %s skipped, its inputs are missing", name, stem)
                continue
            written += _save(fig, Path(results_dir) / name / "figures", stem)
    return written


def make_all(results_dir: Path) -> list[Path]:
    """Tables, the claims summary and figures for every experiment folder present under `results_dir`
    (`mr1 figures`)."""
    present = [name for name in list_experiments() if (Path(results_dir) / name / "records.jsonl").is_file()]
    if not present:
        raise Mr1Error(
            f"{results_dir}: no results to draw (no <experiment>/records.jsonl); run `mr1 reproduce` first"
        )
    written = [path for name in present for path in write_tables(results_dir, name, load_spec(name)["table"])]
    summary = write_summary(results_dir)
    return written + ([summary] if summary else []) + make_figures(results_dir)
