"""`mr1 export`: a standalone checkpoint folder (LoRA adapters merged into the weights) that loads
with plain transformers, without mr1 or peft."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mr1cli.core.errors import ConfigError
from mr1cli.models.loading import load_model, quiet_progress_bars
from mr1cli.models.lora import is_adapter_folder


def export_checkpoint(checkpoint: str, out: Path, *, merge: bool) -> Path:
    """Write `checkpoint` (a run's final/ or step folder, or any checkpoint) as a full checkpoint at `out`."""
    if is_adapter_folder(checkpoint) and not merge:
        raise ConfigError(f"{checkpoint} holds LoRA adapters: pass --merge to fold them into the weights")
    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new folder")
    loaded = load_model(checkpoint, device="cpu", dtype="auto")  # a LoRA folder's adapters are merged on load
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with quiet_progress_bars():
            loaded.model.save_pretrained(staging, safe_serialization=True)
            loaded.processor.save_pretrained(staging)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
