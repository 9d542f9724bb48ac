"""Atomic, checksummed checkpoints.

A checkpoint is a folder `step-000120/` holding a loadable Hugging Face checkpoint (model
weights as safetensors, processor files) plus `trainer_state.pt` (optimizer and LR
scheduler state, tensors only) and `manifest.json` (sha256 of every file). It is written
under a temporary name and renamed into place only when complete, and the manifest is
written last, so a killed write never leaves a folder that looks complete. Loading checks
every checksum and names the file that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from mr1cli.core.errors import CheckpointError

MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.pt"
_PREFIX = "step-"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(
    root: Path,
    step: int,
    save_model: Callable[[Path], None],
    trainer_state: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write `root/step-<step>` atomically; `save_model(dir)` writes the HF checkpoint files."""
    final = root / f"{_PREFIX}{step:06d}"
    staging = root / f".tmp-{_PREFIX}{step:06d}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        save_model(staging)
        torch.save(trainer_state, staging / TRAINER_STATE)
        (staging / "meta.json").write_text(json.dumps({"step": step, **meta}, indent=1, sort_keys=True))
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest = {"step": step, "files": {str(p.relative_to(staging)): sha256_file(p) for p in files}}
        for path in files:
            with path.open("rb+") as handle:
                os.fsync(handle.fileno())
        manifest_tmp = staging / (MANIFEST + ".tmp")
        manifest_tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(manifest_tmp, staging / MANIFEST)
        _fsync_dir(staging)
        if final.exists():
            _discard(final)
        os.replace(staging, final)
        _fsync_dir(root)
    except BaseException as error:  # a full disk, Ctrl-C, anything: no staging folder is left behind
        shutil.rmtree(staging, ignore_errors=True)
        reason = write_failure(error)
        if reason is None:
            raise
        raise CheckpointError(f"could not write checkpoint {final}: {reason}") from None
    return final


def write_failure(error: BaseException) -> str | None:
    """Why a write failed, in a few words, for a file-system error (None for anything else).
    safetensors reports a full disk as `SafetensorError: Error while serializing: IoError(Os { code:
    28, kind: StorageFull, message: "No space left on device" })`.

    >>> write_failure(SafetensorError('IoError(Os { code: 28, message: "No space left on device" })'))
    'No space left on device'
    >>> write_failure(OSError(28, "No space left on device")), write_failure(ValueError("x"))
    ('No space left on device', None)
    """
    if isinstance(error, OSError):
        return error.strerror or str(error)
    if isinstance(error, SafetensorError):
        found = re.search(r'message: "([^"]+)"', str(error))
        return found.group(1) if found else str(error).splitlines()[0]
    return None


def verify_checkpoint(path: Path) -> dict[str, Any]:
    """The manifest, after checking that every listed file exists with its checksum."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{manifest_path} is corrupt") from None
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint file missing: {file}")
        if sha256_file(file) != expected:
            raise CheckpointError(f"checkpoint file corrupt (checksum mismatch): {file}")
    return manifest


def check_checkpoint(path: Path, advice: Callable[[Path], str]) -> dict[str, Any]:
    """`verify_checkpoint`; when `path` fails and an older checkpoint of the same run verifies, the
    error ends with `advice(older)` (how to use that one instead)."""
    try:
        return verify_checkpoint(path)
    except CheckpointError as error:
        older = previous_good_checkpoint(path)
        if older is None:
            raise
        raise CheckpointError(f"{error}; {advice(older)}") from None


def previous_good_checkpoint(path: Path) -> Path | None:
    """The newest checkpoint older than `path` in the same folder whose files all verify."""
    if not path.name.startswith(_PREFIX) or not path.name[len(_PREFIX) :].isdigit():
        return None
    step = int(path.name[len(_PREFIX) :])
    for older in reversed(list_checkpoints(path.parent)):
        if int(older.name[len(_PREFIX) :]) < step:
            try:
                verify_checkpoint(older)
            except CheckpointError:
                continue
            return older
    return None


def list_checkpoints(root: Path) -> list[Path]:
    """Complete-looking checkpoints (those with a manifest), oldest first."""
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def load_trainer_state(path: Path) -> dict[str, Any]:
    """Optimizer/scheduler state; tensors and plain containers only (no arbitrary unpickling)."""
    try:
        return torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"cannot read {path / TRAINER_STATE}: {reason}") from None


def _discard(path: Path) -> None:
    """Remove a checkpoint folder so that no kill can leave it half-deleted under its real name:
    rename it out of the way first (atomic), then delete."""
    doomed = path.with_name(f".tmp-discard-{path.name}-{os.getpid()}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints, and stale staging folders."""
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        _discard(old)
