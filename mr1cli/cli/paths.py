"""Checks for the paths a user names on the command line: one clear line instead of a traceback.

Each check runs before any work starts, so a wrong path costs nothing and leaves nothing behind.

>>> input_file(Path(__file__), "--config") == Path(__file__)
True
"""

from __future__ import annotations

import os
from pathlib import Path

from mr1cli.core.errors import Mr1Error


class PathError(Mr1Error):
    """A path option that names a directory where a file is wanted, a missing file, or an unwritable place."""


def input_file(path: Path, option: str) -> Path:
    """An existing, readable file."""
    if path.is_dir():
        raise PathError(f"{option} {path}: is a directory, expected a file")
    if not path.is_file():
        raise PathError(f"{option} {path}: no such file")
    if not os.access(path, os.R_OK):
        raise PathError(f"{option} {path}: not readable (permission denied)")
    return path


def input_dir(path: Path, option: str) -> Path:
    """An existing, readable folder."""
    if not path.exists():
        raise PathError(f"{option} {path}: no such folder")
    if not path.is_dir():
        raise PathError(f"{option} {path}: is a file, expected a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise PathError(f"{option} {path}: not readable (permission denied)")
    return path


def output_file(path: Path, option: str) -> Path:
    """A file we may create or replace: not a folder, in a folder that exists or can be made writable."""
    if path.is_dir():
        raise PathError(f"{option} {path}: is a directory, expected a file name (e.g. {path / 'out.png'})")
    _creatable(path.parent, option, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise PathError(f"{option} {path}: not writable (permission denied)")
    return path


def output_dir(path: Path, option: str) -> Path:
    """A folder we may create or write into: not a file, and under a writable ancestor."""
    if path.exists() and not path.is_dir():
        raise PathError(f"{option} {path}: is a file, expected a folder")
    _creatable(path, option, path)
    return path


def _creatable(folder: Path, option: str, named: Path) -> None:
    """`folder` exists and is writable, or its nearest existing ancestor is a writable folder."""
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise PathError(f"{option} {named}: {probe} is a file, so nothing can be created under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PathError(f"{option} {named}: {probe} is not writable (permission denied)")
