"""Helpers that write small datasets in the exact public R1-V schemas (for the adapter tests)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

COUNT_QUESTION = "How many items are there in the image?"
SUPERCLEVR_QUESTION = "How many different items are there in the image?"
GEO_QUESTION = "As shown in the figure, AB ∥ CD, ∠1 = 40°, then ∠2 is ()"


def png_bytes(
    size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30), noisy: bool = False
) -> bytes:
    """A PNG of `size`; `noisy` fills it with seeded random pixels (so its data stream is long)."""
    if noisy:
        rng = random.Random(size[0] * 1000 + size[1])
        image = Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3)))
    else:
        image = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: Path, size: tuple[int, int], **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(size, **kwargs))
    return path


def image_struct(data: bytes | None, path: str | None = None) -> dict[str, object]:
    """An HF `Image` feature cell as stored in parquet."""
    return {"bytes": data, "path": path}


def write_parquet(path: Path, columns: dict[str, list]) -> Path:
    """A parquet file; an `image` column of dicts becomes the HF struct<bytes: binary, path: string>."""
    arrays = {}
    for name, values in columns.items():
        if name == "image" and any(isinstance(v, dict) for v in values):
            kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            arrays[name] = pa.array(values, type=kind)
        else:
            arrays[name] = pa.array(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), path)
    return path


def counting_train_columns(sizes: list[tuple[int, int]], counts: list[int]) -> dict[str, list]:
    """`leonardPKU/clevr_cogen_a_train` columns (plus the optional `thinking`)."""
    return {
        "image": [image_struct(png_bytes(size), f"clevr_{i}.png") for i, size in enumerate(sizes)],
        "problem": [COUNT_QUESTION] * len(sizes),
        "solution": [f"<answer> {count} </answer>" for count in counts],
        "thinking": [f"I see {count} objects." for count in counts],
    }


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    return write_lines(path, [json.dumps(row, ensure_ascii=False) for row in rows])


def superclevr_test(folder: Path, counts: list[int], sizes: list[tuple[int, int]]) -> Path:
    """R1-V's `superclevr_test200_counting_problems.jsonl` layout: rows + `images/superCLEVR_new_0250NN.png`."""
    rows = []
    for i, (count, size) in enumerate(zip(counts, sizes, strict=True)):
        name = f"superCLEVR_new_{25000 + i:06d}.png"
        write_png(folder / "images" / name, size)
        rows.append(
            {"image_path": f"./images/{name}", "question": SUPERCLEVR_QUESTION, "ground_truth": count}
        )
    return write_jsonl(folder / "superclevr_test200_counting_problems.jsonl", rows)
