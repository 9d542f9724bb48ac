"""Rows of a JSON or JSON Lines data file, each numbered and either a dict or the RowError that
says what is wrong with it (malformed JSON, not an object, bytes that are not UTF-8), so that the
loader can name the file, row and field, and `--skip-bad` can skip just that row."""

from __future__ import annotations

import json
from pathlib import Path

from mr1cli.core.errors import DataError
from mr1cli.data.adapters import WHOLE_ROW, RowError

Row = tuple[int, dict[str, object] | RowError]


def json_rows(path: Path) -> list[Row]:
    """The rows of a jsonl file (numbered by line) or of a JSON list (numbered from 1)."""
    try:  # bytes that are not UTF-8 survive as surrogates, so that only their row is refused
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # "Extra data": one object per line, i.e. jsonl named .json
                raise DataError(f"{path}: line {exc.lineno}: malformed JSON ({exc.msg})") from None
        else:
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of rows, got a {type(data).__name__}")
            return [(n, _as_row(item)) for n, item in enumerate(data, start=1)]
    rows: list[Row] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((line_no, _as_row(json.loads(line))))
        except json.JSONDecodeError as exc:
            rows.append(
                (line_no, RowError(WHOLE_ROW, f"malformed JSON line ({exc.msg} at column {exc.colno})"))
            )
    return rows


def _as_row(item: object) -> dict[str, object] | RowError:
    if not isinstance(item, dict):
        return RowError(WHOLE_ROW, f"expected a JSON object, got {type(item).__name__}")
    for key, value in item.items():
        if _undecoded(key):
            return RowError(WHOLE_ROW, f"a key is not UTF-8 text ({_undecoded(key)})")
        if _undecoded(value):
            return RowError(key, f"not UTF-8 text ({_undecoded(value)})")
    return item


def _undecoded(value: object) -> str:
    """Where a decoded JSON value holds a byte that was not UTF-8 (kept as a surrogate); '' if none.

    >>> _undecoded("caf\\udce9 au lait"), _undecoded(["ok", {"a": "\\udcff"}]), _undecoded(3)
    ('byte 0xe9 at character 4', 'byte 0xff', '')
    """
    if isinstance(value, str):
        at = next((i for i, c in enumerate(value) if 0xDC80 <= ord(c) <= 0xDCFF), None)
        return "" if at is None else f"byte 0x{ord(value[at]) - 0xDC00:02x} at character {at + 1}"
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    found = next((where for where in map(_undecoded, items) if where), "")
    return found.split(" at ")[0]
