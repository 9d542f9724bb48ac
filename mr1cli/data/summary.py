"""`summarize`: what `mr1 data check` reports about a loaded split, decoding every image on the way.

Loading only opens image headers; a file truncated in the middle of its pixels is caught here,
with the same one-line `"{file}: row {n}: field '{field}': …"` error as the loader's.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Callable, Sequence

from PIL import Image

from mr1cli.core.errors import DataError
from mr1cli.data.adapters import RowOrigin, describe_image_error
from mr1cli.data.example import Example
from mr1cli.data.sources import LoadedSplit

TOP_ANSWERS = 10
SAMPLE_ROWS = 3
MAX_BAD_IMAGES = 5


def stats(values: Sequence[float]) -> dict[str, float]:
    """min / mean / median / max of a non-empty list (all 0 when empty).

    >>> stats([3, 1, 2])
    {'min': 1, 'mean': 2.0, 'median': 2, 'max': 3}
    """
    if not values:
        return {"min": 0, "mean": 0.0, "median": 0, "max": 0}
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 2),
        "median": statistics.median(values),
        "max": max(values),
    }


def answer_distribution(truths: Sequence[str], top_k: int = TOP_ANSWERS) -> list[tuple[str, int]]:
    """The `top_k` most common answers with their counts, most common first (ties by answer).

    >>> answer_distribution(["3", "2", "3", "1", "2", "3"], top_k=2)
    [('3', 3), ('2', 2)]
    """
    return sorted(Counter(truths).items(), key=lambda item: (-item[1], item[0]))[:top_k]


def summarize(
    split: LoadedSplit,
    *,
    decode_images: bool = True,
    skip_bad: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Counts, answer distribution, question lengths, image sizes and a few rows of `split`.

    With `decode_images` every image is fully decoded: the first one that fails raises DataError
    naming its file, row and field, or with `skip_bad` the failures are counted under `bad_images`.
    `on_progress(done, total)` is called after each image (for a progress bar).
    """
    examples = split.examples
    truths = [example.truth for example in examples]
    ids = Counter(example.id for example in examples)
    summary: dict = {
        "source": split.source,
        "path": str(split.path) if split.path is not None else None,
        "task": examples[0].task if examples else None,
        "examples": len(examples),
        "skipped": split.skipped,
        "skipped_reasons": list(split.skipped_reasons),
        "duplicate_ids": sum(count - 1 for count in ids.values() if count > 1),
        "distinct_answers": len(set(truths)),
        "truth_kinds": dict(split.truth_kinds),
        "answers": answer_distribution(truths),
        "question_chars": stats([len(example.question) for example in examples]),
        "with_thinking": sum(bool(example.thinking) for example in examples),
        "samples": [_sample(example) for example in examples[:SAMPLE_ROWS]],
    }
    if decode_images:
        summary.update(_image_summary(split, skip_bad=skip_bad, on_progress=on_progress))
    return summary


def _image_summary(
    split: LoadedSplit, *, skip_bad: bool, on_progress: Callable[[int, int], None] | None
) -> dict:
    widths: list[int] = []
    heights: list[int] = []
    modes: Counter[str] = Counter()
    bad: list[str] = []
    total = len(split.examples)
    for index, example in enumerate(split.examples):
        try:
            width, height, mode = _decode(example)
        except DataError as exc:
            error = _located(exc, split.origins[index] if index < len(split.origins) else None, example)
            if not skip_bad:
                raise error from None
            bad.append(str(error))
        else:
            widths.append(width)
            heights.append(height)
            modes[mode] += 1
        if on_progress is not None:
            on_progress(index + 1, total)
    return {
        "images_decoded": len(widths),
        "bad_images": len(bad),
        "bad_image_reasons": bad[:MAX_BAD_IMAGES],
        "image_width": stats(widths),
        "image_height": stats(heights),
        "image_pixels": stats([w * h for w, h in zip(widths, heights, strict=True)]),
        "image_modes": dict(modes.most_common()),
    }


def _decode(example: Example) -> tuple[int, int, str]:
    """Decode the whole image (pixels included): (width, height, mode), or DataError saying why not."""
    ref = example.image
    source = io.BytesIO(ref.data) if ref.data is not None else ref.path
    if source is None:
        raise DataError("the example has neither image bytes nor an image path")
    try:
        with Image.open(source) as image:
            image.load()
            return image.width, image.height, image.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot decode the image ({describe_image_error(exc)})") from None


def _located(exc: DataError, origin: RowOrigin | None, example: Example) -> DataError:
    if origin is None:
        return DataError(f"example {example.id}: field 'image': {exc}")
    return origin.error(origin.image_field, str(exc))


def _sample(example: Example) -> dict[str, str]:
    ref = example.image
    image = str(ref.path) if ref.data is None else f"<{len(ref.data)} bytes>"
    return {"id": example.id, "question": example.question, "truth": example.truth, "image": image}
