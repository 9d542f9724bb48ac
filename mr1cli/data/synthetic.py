"""Deterministic synthetic datasets for the offline tiny profile, written in the R1-V public schemas.

`generate` draws rows in memory; `write_split` writes them where the real-dataset adapters read
them: train and warm-up splits as `data.parquet` (columns `image` as the Hugging Face Image
feature's struct<bytes, path>, `problem`, `solution` = "<answer> {answer} </answer>", and the
extra `thinking`), the test and held-out splits as `test.jsonl` / `heldout.jsonl` rows
`{"image_path": "./images/<id>.png", "question", "ground_truth"}` beside an `images/` folder,
plus `meta.json` in both cases.

Every example has its own seed stream, derived from (task, split, seed, index): the same
arguments give byte-identical files, and train, warm-up and test never share a stream.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import did_you_mean
from mr1cli.core.task import SyntheticGenerator
from mr1cli.tasks import get_task

logger = logging.getLogger(__name__)

SPLITS = ("train", "warmup", "heldout", "test")
# heldout: fresh draws from the training distribution (unshifted), written like a test set
GENERATOR_VERSION = 2  # bump whenever the same arguments would produce different files
MIN_IMAGE_SIZE = 32


@dataclass(frozen=True)
class SyntheticRow:
    """One generated example: `answer` is the canonical ground truth, `thinking` a reasoning trace."""

    id: str
    question: str
    answer: str
    thinking: str
    image_png: bytes


def example_id(task: str, split: str, index: int) -> str:
    """The id of the index-th example.

    >>> example_id("counting", "train", 12)
    'counting-train-000012'
    """
    return f"{task}-{split}-{index:06d}"


def example_rng(task: str, split: str, seed: int, index: int) -> random.Random:
    """The example's own random stream (string seeds hash with SHA-512: stable across runs)."""
    return random.Random(f"mr1-synthetic/v{GENERATOR_VERSION}/{task}/{split}/{seed}/{index}")


def _check(task: str, split: str, n: int, image_size: int) -> SyntheticGenerator:
    synth = get_task(task).synthetic
    if synth is None:
        raise ConfigError(f"task '{task}' has no synthetic generator")
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'{did_you_mean(split, list(SPLITS))}")
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"image_size must be at least {MIN_IMAGE_SIZE} pixels, got {image_size}")
    return synth


def sample_spec(task: str, split: str, *, seed: int, index: int) -> Any:
    """The structured scene (counting) or problem (geometry) behind example `index`."""
    synth = _check(task, split, 1, MIN_IMAGE_SIZE)
    return synth.sample(example_rng(task, split, seed, index), split)


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes with fixed options and no metadata (so equal pictures give equal bytes)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6, optimize=False)
    return buffer.getvalue()


def generate(
    task: str,
    split: str,
    *,
    n: int,
    seed: int,
    image_size: int = 112,
    progress: Callable[[int], None] | None = None,
) -> list[SyntheticRow]:
    """Draw and render `n` examples; `progress(k)` is called after the k-th."""
    synth = _check(task, split, n, image_size)
    rows = []
    for index in range(n):
        spec = synth.sample(example_rng(task, split, seed, index), split)
        png = encode_png(synth.render(spec, image_size))
        rows.append(
            SyntheticRow(example_id(task, split, index), spec.question, spec.answer, spec.thinking, png)
        )
        if progress is not None:
            progress(index + 1)
    return rows


# Sets this large take a minute or more to draw (about 230 scenes/s per process), so their drawing is
# logged every tenth, with its rate and time left.
PROGRESS_FROM = 10_000


def logged_progress(source: str, n: int) -> Callable[[int], None] | None:
    """A `progress` callback for `write_split` that logs every tenth of a set of `n` examples (None
    for a set smaller than PROGRESS_FROM)."""
    if n < PROGRESS_FROM:
        return None
    started = time.monotonic()
    step = max(1, n // 10)

    def report(done: int) -> None:
        if done % step and done != n:
            return
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (n - done) / rate if rate else 0.0
        logger.info(
            "drawing %s: %d/%d (%d %%), %.0f examples/s, %d:%02d left",
            source,
            done,
            n,
            100 * done // n,
            rate,
            left // 60,
            left % 60,
        )

    return report


# ---- files in the R1-V schemas ------------------------------------------------------------------

_IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_STRING = {"dtype": "string", "_type": "Value"}
# What `datasets` stores in a parquet schema, so load_dataset("parquet") decodes `image` as an Image.
_HF_FEATURES = {"image": {"_type": "Image"}, "problem": _STRING, "solution": _STRING, "thinking": _STRING}


def _write_parquet(rows: list[SyntheticRow], folder: Path, synth: SyntheticGenerator, split: str) -> str:
    schema = pa.schema(
        [
            ("image", _IMAGE_TYPE),
            ("problem", pa.string()),
            ("solution", pa.string()),
            ("thinking", pa.string()),
        ],
        metadata={"huggingface": json.dumps({"info": {"features": _HF_FEATURES}})},
    )
    columns = {
        "image": [{"bytes": row.image_png, "path": f"{row.id}.png"} for row in rows],
        "problem": [row.question for row in rows],
        "solution": [f"<answer> {row.answer} </answer>" for row in rows],
        "thinking": [row.thinking for row in rows],
    }
    pq.write_table(
        pa.Table.from_pydict(columns, schema=schema), folder / "data.parquet", compression="snappy"
    )
    return "data.parquet"


def _write_jsonl(rows: list[SyntheticRow], folder: Path, synth: SyntheticGenerator, split: str) -> str:
    """`<split>.jsonl` (test.jsonl, heldout.jsonl) in R1-V's test-set schema, beside `images/`."""
    (folder / "images").mkdir()
    lines = []
    for row in rows:
        (folder / "images" / f"{row.id}.png").write_bytes(row.image_png)
        record = {"image_path": f"./images/{row.id}.png", "question": row.question}
        record["ground_truth"] = synth.ground_truth(row.answer)
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    (folder / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
    return f"{split}.jsonl"


_WRITERS: dict[str, Callable[[list[SyntheticRow], Path, SyntheticGenerator, str], str]] = {
    "train": _write_parquet,
    "warmup": _write_parquet,
    "heldout": _write_jsonl,
    "test": _write_jsonl,
}


def _meta(task: str, split: str, n: int, seed: int, image_size: int) -> dict[str, object]:
    return {
        "task": task,
        "split": split,
        "n": n,
        "seed": seed,
        "image_size": image_size,
        "generator_version": GENERATOR_VERSION,
        "data_file": f"{split}.jsonl" if _WRITERS[split] is _write_jsonl else "data.parquet",
    }


def _existing(out_dir: Path, meta: dict[str, object]) -> Path | None:
    """The data file of an identical finished dataset in out_dir; None if out_dir is free (absent/empty)."""
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        return None
    meta_file = out_dir / "meta.json"
    try:
        found = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(
            f"{out_dir} exists and is not a synthetic dataset; choose another output folder"
        ) from None
    if not isinstance(found, dict) or {**found, "data_file": meta["data_file"]} != meta:
        raise ConfigError(
            f"{out_dir} holds a different synthetic dataset ({_describe(found)}); "
            "delete it or choose another folder"
        )
    return out_dir / str(found["data_file"])  # held-out sets written before heldout.jsonl: test.jsonl


def _describe(meta: object) -> str:
    if not isinstance(meta, dict):
        return "unreadable meta.json"
    keys = ("task", "split", "n", "seed", "image_size", "generator_version")
    return ", ".join(f"{key}={meta.get(key)}" for key in keys)


def write_split(
    task: str,
    split: str,
    *,
    n: int,
    seed: int,
    out_dir: Path,
    image_size: int = 112,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write the split under out_dir in its R1-V schema and return the data file's path.

    Returns at once if out_dir already holds this exact dataset; raises ConfigError if it holds
    anything else. Files are written to a hidden sibling folder then renamed into place, so an
    interrupted run never leaves a dataset that looks complete.
    """
    synth = _check(task, split, n, image_size)
    out_dir = Path(out_dir)
    meta = _meta(task, split, n, seed, image_size)
    done = _existing(out_dir, meta)
    if done is not None:
        return done
    rows = generate(task, split, n=n, seed=seed, image_size=image_size, progress=progress)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the dataset is an ordinary folder
    try:
        data_file = _WRITERS[split](rows, staging, synth, split)
        (staging / "meta.json").write_text(
            json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        try:
            os.replace(staging, out_dir)  # atomic; fails if out_dir gained files meanwhile
        except OSError:
            done = _existing(out_dir, meta)  # a concurrent writer finished the same dataset first
            if done is None:
                raise
            return done
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / data_file
