"""One row of an R1-V-style dataset → one Example: schema detection, validation, image lookup.

The two public schemas (R1-V and the datasets it published):

- train-style (`leonardPKU/clevr_cogen_a_train`, `leonardPKU/GEOQA_R1V_Train_8K`): columns
  `image` (an HF Image: a `{bytes, path}` struct, a PIL image, raw bytes or a path string),
  `problem` (the question) and `solution` (`"<answer> 3 </answer>"`);
- test-style (R1-V's `superclevr_test200_counting_problems.jsonl`, `geoqa_test_prompts.jsonl`):
  keys `image_path` (`"./images/superCLEVR_new_025000.png"`), `question`, `ground_truth`
  (`3` or `"140°"`).

The schema is read from the columns, whatever split the file is used for. Optional columns:
`id` (else the id is `"<file stem>-<row>"`) and `thinking` (a reasoning trace, else `""`).
Every problem with a row raises `DataError("{file}: row {n}: field '{field}': {what}")`, rows
numbered from 1 (a jsonl row number is its line number).
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mr1cli.core.errors import DataError
from mr1cli.core.task import Task
from mr1cli.data.example import Example, ImageRef

WHOLE_ROW = "(row)"  # the field named when a row as a whole is unusable (malformed JSON, not an object)


MAX_QUESTION_CHARS = 20_000  # far beyond any real question; longer is a broken row


@dataclass(frozen=True)
class Schema:
    """Where a schema keeps the question, the truth and (first found of `image`) the image."""

    name: str
    question: str
    truth: str
    image: tuple[str, ...]


TRAIN_STYLE = Schema(
    "train-style", question="problem", truth="solution", image=("image", "image_path", "file_name")
)
TEST_STYLE = Schema(
    "test-style", question="question", truth="ground_truth", image=("image_path", "image", "file_name")
)
SCHEMAS = (TRAIN_STYLE, TEST_STYLE)


class RowError(ValueError):
    """A problem with one field of one row; the loader adds the file and row number."""

    def __init__(self, field: str, what: str) -> None:
        super().__init__(f"field '{field}': {what}")
        self.field = field
        self.what = what


@dataclass(frozen=True)
class RowOrigin:
    """Where an example came from, for error messages: the file (or dataset id) and 1-based row."""

    file: str
    row: int
    image_field: str = "image"

    def error(self, field: str, what: str) -> DataError:
        """The one-line error for `field` of this row.

        >>> str(RowOrigin("test.jsonl", 3).error("question", "empty question"))
        "test.jsonl: row 3: field 'question': empty question"
        """
        return DataError(f"{self.file}: row {self.row}: field '{field}': {what}")


def detect_schema(columns: Iterable[str], file: str) -> Schema:
    """The schema whose question/truth columns are present; DataError if a needed column is missing.

    >>> detect_schema(["image", "problem", "solution", "thinking"], "a.parquet").name
    'train-style'
    >>> detect_schema(["image_path", "question", "ground_truth"], "b.jsonl").name
    'test-style'
    """
    present = set(columns)

    def score(schema: Schema) -> int:
        return 2 * ((schema.question in present) + (schema.truth in present)) + (schema.image[0] in present)

    best = max(SCHEMAS, key=score)  # ties go to train-style, the first listed
    if score(best) < 2:
        expected = "; ".join(f"{s.name}: {s.image[0]}, {s.question}, {s.truth}" for s in SCHEMAS)
        raise DataError(
            f"{file}: row 1: field '{TRAIN_STYLE.question}': no R1-V columns found "
            f"(expected {expected}; found: {', '.join(sorted(present)) or 'none'})"
        )
    for field in (best.question, best.truth):
        if field not in present:
            raise DataError(
                f"{file}: row 1: field '{field}': column missing ({best.name} schema; found: "
                f"{', '.join(sorted(present))})"
            )
    if image_column(best, present) is None:
        raise DataError(
            f"{file}: row 1: field '{best.image[0]}': column missing ({best.name} schema; found: "
            f"{', '.join(sorted(present))})"
        )
    return best


def image_column(schema: Schema, columns: Iterable[str]) -> str | None:
    """The first of the schema's image column names present, or None.

    >>> image_column(TEST_STYLE, ["image", "question", "ground_truth"])
    'image'
    """
    present = set(columns)
    return next((name for name in schema.image if name in present), None)


def candidate_paths(raw: str, image_root: Path) -> list[Path]:
    """Where an image path from a data file is looked for under `image_root`, most specific first.

    The path is normalised (`./` and inner `..` folded); then each of its trailing parts, longest
    first, is tried under the root — the whole relative path, then without its first folder, …,
    down to the bare file name. An absolute path from the authors' machine thus finds its file
    under the root by the longest suffix that exists there.

    >>> [str(p) for p in candidate_paths("/home/me/data/images/x.png", Path("/r"))]
    ['/r/home/me/data/images/x.png', '/r/me/data/images/x.png', '/r/data/images/x.png', '/r/images/x.png', '/r/x.png']
    >>> [str(p) for p in candidate_paths("./images/x.png", Path("/r"))]
    ['/r/images/x.png', '/r/x.png']
    """
    parts = [part for part in posixpath.normpath(raw).split("/") if part not in ("", ".")]
    return [image_root.joinpath(*parts[start:]) for start in range(len(parts))]


def resolve_image_path(raw: str, image_root: Path) -> Path:
    """The file an image path names. Raises ValueError saying what is wrong.

    The rule:
    1. an absolute path that exists is used as it is (the data file was made on this machine);
    2. otherwise the path is looked for under `image_root` by `candidate_paths`: `./images/x.png`
       → `root/images/x.png`, then `root/x.png`; `/home/someone/data/images/x.png` →
       `root/home/someone/data/images/x.png`, …, `root/images/x.png`, `root/x.png`;
       the first that exists wins;
    3. a relative path that climbs out of the root with `..`, or a found file whose real location
       (symlinks followed) lies outside the root, is refused.
    """
    if not raw.strip():
        raise ValueError("empty image path")
    path = Path(raw)
    if path.is_absolute() and path.is_file():
        return path
    if not path.is_absolute() and posixpath.normpath(raw).split("/")[0] == "..":
        raise ValueError(f"image path {raw!r} escapes the image root {image_root}")
    root = image_root.resolve()
    candidates = candidate_paths(raw, image_root)
    if not candidates:
        raise ValueError(f"image path {raw!r} names no file")
    for candidate in candidates:
        if candidate.is_file():
            real = candidate.resolve()
            if not real.is_relative_to(root):
                raise ValueError(
                    f"image path {raw!r} resolves to {real}, outside the image root {root} "
                    "(pass the folder that holds it as the image root)"
                )
            return candidate
    others = len(candidates) - 1
    tried = f"{candidates[0]}" + (
        f" and {others} shorter suffix{'es' if others > 1 else ''}" if others else ""
    )
    raise ValueError(f"image file not found: {raw!r} (looked for {tried}; set the image root to its folder)")


def image_ref(value: object, image_root: Path) -> ImageRef:
    """An ImageRef for an image cell, after a cheap header check. Raises ValueError saying what is wrong."""
    if isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
        if data is None and not path:
            raise ValueError("image struct has neither bytes nor a path")
        value = data if data is not None else path
    if isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.save(buffer, format=value.format or "PNG")
        value = buffer.getvalue()
    if isinstance(value, (bytes, bytearray, memoryview)):
        ref = ImageRef(data=bytes(value))
    elif isinstance(value, (str, os.PathLike)):
        ref = ImageRef(path=resolve_image_path(os.fspath(value), image_root))
    elif value is None:
        raise ValueError("no image")
    else:
        raise ValueError(
            f"expected an image (bytes, a path or a {{bytes, path}} struct), got {type(value).__name__}"
        )
    check_header(ref)
    return ref


def check_header(ref: ImageRef) -> None:
    """Open the image header without decoding the pixels; ValueError if it is not a readable image."""
    where = f"image file {ref.path}" if ref.path is not None else f"image bytes ({len(ref.data or b'')} B)"
    try:
        with Image.open(io.BytesIO(ref.data) if ref.data is not None else ref.path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{where} is not a readable image ({describe_image_error(exc)})") from None
    if width < 1 or height < 1:
        raise ValueError(f"{where} has an empty size {width}x{height}")


def describe_image_error(exc: BaseException) -> str:
    """A short cause for a PIL failure (PIL's own message names an in-memory buffer object).

    >>> describe_image_error(UnidentifiedImageError("cannot identify image file <_io.BytesIO at 0x1>"))
    'not a known image format'
    """
    if isinstance(exc, UnidentifiedImageError):
        return "not a known image format"
    return f"{type(exc).__name__}: {exc}"


def row_to_example(
    row: Mapping[str, object],
    *,
    schema: Schema,
    task: Task,
    origin: RowOrigin,
    image_root: Path,
    default_id: str,
) -> Example:
    """Validate one row and build its Example; DataError naming file, row and field if it does not fit."""
    try:
        return Example(
            id=_row_id(row, default_id),
            task=task.name,
            question=_question(row, schema.question),
            truth=_truth(row, schema.truth, task),
            image=_image(row, origin.image_field, image_root),
            thinking=_optional_text(row, "thinking"),
        )
    except RowError as exc:
        raise origin.error(exc.field, exc.what) from None


def _required(row: Mapping[str, object], field: str) -> object:
    if field not in row:
        raise RowError(field, f"missing (the row has: {', '.join(sorted(row)) or 'nothing'})")
    value = row[field]
    if value is None:
        raise RowError(field, "missing value (null)")
    return value


def _question(row: Mapping[str, object], field: str) -> str:
    value = _required(row, field)
    if not isinstance(value, str):
        raise RowError(field, f"expected text, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise RowError(field, "empty question")
    if len(value) > MAX_QUESTION_CHARS:
        raise RowError(field, f"question is {len(value)} characters, over the limit of {MAX_QUESTION_CHARS}")
    return value


def _truth(row: Mapping[str, object], field: str, task: Task) -> str:
    value = _required(row, field)
    try:
        return task.parse_truth(value)
    except ValueError as exc:
        raise RowError(field, f"not a {task.name} ground truth: {exc}") from None


def _image(row: Mapping[str, object], field: str, image_root: Path) -> ImageRef:
    value = _required(row, field)
    try:
        return image_ref(value, image_root)
    except ValueError as exc:
        raise RowError(field, str(exc)) from None


def _optional_text(row: Mapping[str, object], field: str) -> str:
    value = row.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError(field, f"expected text, got {type(value).__name__}")
    return value


def _row_id(row: Mapping[str, object], default_id: str) -> str:
    value = row.get("id")
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_id
    if isinstance(value, (bool, float)) or not isinstance(value, (str, int)):
        raise RowError("id", f"expected text or an integer, got {type(value).__name__} {value!r}")
    return str(value)
