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
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

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
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise CheckpointError(f"could not write checkpoint {final}: {error.strerror or error}") from None
    return final


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
