"""`<source>[start:stop]`: a range of a source's examples, as a Python slice (0-based, stop excluded).

`synthetic:counting-heldout-2000[1000:2000]` is the tiny profile's validation set: the examples
1,001-2,000 of the held-out generator, disjoint from the reported held-out set (its first 1,000).
"""

from __future__ import annotations

import re

from mr1cli.core.errors import ConfigError

_RANGE = re.compile(r"^(?P<source>.+)\[(?P<start>\d*):(?P<stop>\d*)\]$")


def split_row_range(source: str) -> tuple[str, slice | None]:
    """The source without its `[start:stop]` suffix, and that range (None without one).

    >>> split_row_range("synthetic:counting-heldout-2000[1000:2000]")
    ('synthetic:counting-heldout-2000', slice(1000, 2000, None))
    >>> split_row_range("data/test.jsonl[:50]")
    ('data/test.jsonl', slice(0, 50, None))
    >>> split_row_range("data/test.jsonl")
    ('data/test.jsonl', None)
    """
    found = _RANGE.match(source)
    if found is None:
        if source.endswith("]") and "[" in source:
            raise ConfigError(
                f"bad row range in '{source}': expected <source>[start:stop] with whole numbers,"
                " e.g. synthetic:counting-heldout-2000[1000:2000]"
            )
        return source, None
    start = int(found["start"] or 0)
    stop = int(found["stop"]) if found["stop"] else None
    if stop is not None and stop <= start:
        raise ConfigError(f"empty row range in '{source}': stop ({stop}) must be above start ({start})")
    return found["source"], slice(start, stop)


def rows_to_read(rows: slice | None, limit: int | None) -> int | None:
    """How many examples to read from the start of the source: up to the range's stop, and no more
    than `limit` past its start (None: all).

    >>> rows_to_read(slice(1000, 2000), None), rows_to_read(slice(1000, 2000), 50), rows_to_read(None, 50)
    (2000, 1050, 50)
    """
    if rows is None:
        return limit
    ends = [end for end in (rows.stop, rows.start + limit if limit else None) if end is not None]
    return min(ends) if ends else None
