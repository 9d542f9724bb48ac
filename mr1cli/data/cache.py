"""The per-user cache (synthetic data sets, the tiny models) and a lock for building into it.

`MR1_CACHE` if set, else the platform's cache folder: `$XDG_CACHE_HOME/mr1` (default
`~/.cache/mr1`) on Linux, `~/Library/Caches/mr1` on macOS. One cache per user, so jobs started
from different folders share one build of the tiny base model; `build_lock` makes concurrent
jobs wait for that one build instead of repeating it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mr1cli.core.errors import ConfigError

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    explicit = os.environ.get("MR1_CACHE")
    if explicit:
        return _usable(Path(explicit).expanduser(), f"MR1_CACHE={explicit}")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "mr1"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mr1"


def _usable(path: Path, named: str) -> Path:
    """`path`, unless it (or the nearest part of it that exists) is a file: a folder cannot be made there."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise ConfigError(f"{named} {where}; point MR1_CACHE at a folder (or unset it for the default cache)")
    return path


@contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Hold `<cache>/locks/<name>.lock` (fcntl): a second process waits here, saying for whom."""
    locks = default_cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            logger.warning(
                "another mr1 process (pid %s) is building %s; waiting for it to finish", holder, name
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
