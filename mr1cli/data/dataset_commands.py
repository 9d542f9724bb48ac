"""`mr1 data make|check|show`: build a synthetic set, validate any set, look at examples."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mr1cli.core.errors import ConfigError, DataError
from mr1cli.data.contact_sheet import make_contact_sheet
from mr1cli.data.sources import load_split
from mr1cli.data.summary import summarize
from mr1cli.data.synthetic import write_split

console = Console(stderr=True)


def make_dataset(*, task: str, split: str, n: int, out: Path, seed: int, image_size: int) -> Path:
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    with console.status(f"generating {n} {task} {split} examples"):
        path = write_split(task, split, n=n, seed=seed, out_dir=out, image_size=image_size)
    console.print(f"wrote {path}")
    return path


def check_dataset(source: str, *, task: str, image_root: Path | None, skip_bad: bool) -> dict:
    with console.status(f"reading {source}"):
        loaded = load_split(source, task=task, image_root=image_root, skip_bad=skip_bad)
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("decoding images", total=len(loaded.examples))
        summary = summarize(
            loaded,
            decode_images=True,
            skip_bad=skip_bad,
            on_progress=lambda done, total: progress.update(bar, completed=done),
        )
    table = Table(title=f"{source} ({task})", show_header=False)
    keys = (
        "examples",
        "skipped",
        "duplicate_ids",
        "distinct_answers",
        "truth_kinds",
        "answers",
        "question_chars",
        "with_thinking",
        "images_decoded",
        "bad_images",
        "image_width",
        "image_height",
    )
    for key in keys:
        if key in summary:
            table.add_row(key, json.dumps(summary[key], ensure_ascii=False, default=str)[:200])
    out = Console()
    out.print(table)
    for row in summary.get("samples", [])[:3]:
        out.print(f"[dim]{row}[/]", highlight=False)
    if summary.get("skipped"):
        console.print(f"skipped {summary['skipped']} bad rows (--skip-bad)")
    return summary


def show_dataset(source: str, *, task: str, out: Path, n: int, image_root: Path | None) -> Path:
    loaded = load_split(source, task=task, image_root=image_root, limit=n)
    if not loaded.examples:
        raise DataError(f"{source}: no examples to show")
    items = [(ex.load_image(), ex.question, ex.truth) for ex in loaded.examples]
    path = make_contact_sheet(items, out)
    console.print(f"wrote {path} ({len(items)} examples)")
    return path
