"""Load a policy (and its frozen reference) from a hub id or a local folder, with user-facing errors.

One path for every checkpoint: `AutoModelForImageTextToText` + `AutoProcessor`, so Qwen2-VL,
Qwen2.5-VL and the embedded tiny model (`mr1cli.models.tiny`) load the same way. Weights are
read from safetensors only (never unpickled); `trust_remote_code` stays off unless asked for.
Every way a checkpoint can be unusable (missing folder, no config.json, another architecture,
missing or corrupt weights, a hub id that is not cached while offline) is a one-line
`CheckpointError` naming the checkpoint.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import is_offline_mode
from safetensors import SafetensorError
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.utils import cached_file
from transformers.utils import logging as hf_logging

from mr1cli.core.errors import CheckpointError, ConfigError
from mr1cli.core.registry import did_you_mean
from mr1cli.hub import hub_host, hub_usable, probe_failed
from mr1cli.models.lora import adapter_base, add_lora, is_adapter_folder, load_adapters
from mr1cli.models.precision import (
    MASTER_DTYPE,
    Precision,
    activations_in_compute_dtype,
    resolve_precision,
    store_frozen_weights,
)

logger = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class LoadedModel:
    """A policy model with its processor, and where and in which precision it runs."""

    model: torch.nn.Module
    processor: Any
    device: torch.device
    precision: Precision

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype (trained weights are float32 whatever it is: models/precision.py)."""
        return self.precision.compute


def resolve_device(device: str | None) -> torch.device:
    """The requested device, or CUDA when available and CPU otherwise.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"unknown device '{device}' ({error})") from None


def resolve_attn_implementation(requested: str, device: torch.device, dtype: torch.dtype) -> str:
    """The attention kernel to ask transformers for: flash_attention_2 only where flash_attn is
    installed and the model runs on CUDA in 16-bit precision, else sdpa (logged).

    >>> resolve_attn_implementation("flash_attention_2", torch.device("cpu"), torch.float32)
    'sdpa'
    """
    if requested not in ATTN_IMPLEMENTATIONS:
        raise ConfigError(
            f"unknown attention implementation '{requested}'{did_you_mean(requested, list(ATTN_IMPLEMENTATIONS))}"
        )
    if requested == "flash_attention_2":
        if importlib.util.find_spec("flash_attn") is None:
            logger.warning("flash_attn is not installed; using sdpa attention")
            return "sdpa"
        if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
            logger.warning("flash_attention_2 needs CUDA and bf16/fp16; using sdpa (%s, %s)", device, dtype)
            return "sdpa"
    logger.info("attention implementation: %s", requested)
    return requested


def load_model(
    name_or_path: str,
    *,
    device: str | None = None,
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    gradient_checkpointing: bool = False,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    freeze_vision: bool = False,
    trust_remote_code: bool = False,
    lora: Any = None,
    trainable: bool = True,
) -> LoadedModel:
    """Load a Qwen2-VL / Qwen2.5-VL model and its processor from a hub id or a local folder.

    `dtype` is the compute dtype (`model.dtype`): weights that train are kept in float32, frozen
    linear weights in `dtype` (models/precision.py); `trainable=False` (a reference or evaluation
    model) freezes them all. `lora` (a `model.lora` section) adds fresh trainable adapters, or makes the adapters of a
    LoRA checkpoint folder trainable; without it a LoRA folder's adapters are merged into the weights."""
    target = resolve_device(device)
    precision = resolve_precision(dtype, target)
    attention = resolve_attn_implementation(attn_implementation, target, precision.compute)
    # Loaded in float32 (exact master weights on resume; frozen embeddings and norms stay float32),
    # then the frozen linear weights are rounded to the compute dtype.
    model, processor = _load(
        name_or_path, MASTER_DTYPE, attention, gradient_checkpointing, freeze_vision, trust_remote_code, lora
    )
    set_pixel_budget(processor, min_pixels=min_pixels, max_pixels=max_pixels)
    if not trainable:
        model.requires_grad_(False)
    store_frozen_weights(model, precision)
    activations_in_compute_dtype(model)
    return LoadedModel(model=model.to(target), processor=processor, device=target, precision=precision)


def _load(
    name_or_path: str,
    dtype: torch.dtype,
    attention: str,
    gradient_checkpointing: bool,
    freeze_vision: bool,
    trust_remote_code: bool,
    lora: Any,
) -> tuple[torch.nn.Module, Any]:
    """The model (on the CPU, in `dtype`) and its processor, with adapters, freezing and checkpointing."""
    if is_adapter_folder(name_or_path):
        base, _ = _load(
            adapter_base(name_or_path),
            dtype,
            attention,
            gradient_checkpointing,
            False,
            trust_remote_code,
            None,
        )
        model = load_adapters(base, name_or_path, trainable=lora is not None)
        return model, _load_processor(name_or_path, name_or_path, trust_remote_code)
    source = _check_checkpoint(name_or_path)
    with quiet_progress_bars():
        try:
            model, info = AutoModelForImageTextToText.from_pretrained(
                source,
                dtype=dtype,
                attn_implementation=attention,
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
                output_loading_info=True,
            )
        except torch.OutOfMemoryError:
            raise
        except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as error:
            raise CheckpointError(
                f"{name_or_path}: could not load the weights ({_first_line(error)})"
            ) from None
        missing = sorted(info.get("missing_keys", ()))  # transformers would silently re-initialise them
        if missing:
            raise CheckpointError(
                f"{name_or_path}: weights missing for {len(missing)} parameters (e.g. {missing[0]})"
            )
        processor = _load_processor(name_or_path, source, trust_remote_code)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    if freeze_vision and lora is None:
        vision_tower(model).requires_grad_(False)
    if gradient_checkpointing:
        _checkpointing(model, enable=True)
    if lora is not None:
        model = add_lora(model, lora)
    return model, processor


def load_for_config(
    name_or_path: str, model_cfg: Any, *, device: str | None = None, trainable: bool = True
) -> LoadedModel:
    """`load_model` with a run config's `model` section; `trainable=False` (reference, evaluation)
    freezes every weight in the compute dtype and skips gradient checkpointing and vision freezing,
    which only matter for the trained policy."""
    m = model_cfg
    return load_model(
        name_or_path,
        device=device,
        dtype=m.dtype,
        attn_implementation=m.attn_implementation,
        gradient_checkpointing=m.gradient_checkpointing and trainable,
        min_pixels=m.min_pixels,
        max_pixels=m.max_pixels,
        freeze_vision=m.freeze_vision and trainable,
        trust_remote_code=m.trust_remote_code,
        lora=m.lora if m.lora.enabled and trainable else None,
        trainable=trainable,
    )


def vision_tower(model: torch.nn.Module) -> torch.nn.Module:
    """The vision encoder (patch embedding, ViT blocks and the patch merger) of a Qwen2(.5)-VL model."""
    for path in ("model.visual", "visual"):
        module: Any = model
        for name in path.split("."):
            module = getattr(module, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise ConfigError(f"cannot find the vision tower of {type(model).__name__} to freeze it")


def set_pixel_budget(processor: Any, *, min_pixels: int | None, max_pixels: int | None) -> None:
    """Set the image processor's min/max pixel budget (Qwen2-VL resizes every image into it)."""
    size = processor.image_processor.size
    low = min_pixels if min_pixels is not None else size.shortest_edge
    high = max_pixels if max_pixels is not None else size.longest_edge
    if low is not None and high is not None and low > high:
        raise ConfigError(f"min_pixels ({low}) must not exceed max_pixels ({high})")
    size.shortest_edge, size.longest_edge = low, high


def _check_checkpoint(name_or_path: str) -> str:
    """Validate a local folder or resolve a hub id's config; return what from_pretrained should load."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{name_or_path}: is a file, not a checkpoint folder")
        config_file = path / "config.json"
        if not config_file.is_file():
            raise CheckpointError(f"{name_or_path}: not a checkpoint folder (no config.json)")
        _check_config(name_or_path, config_file)
        _check_weight_files(name_or_path, path)
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or not _HUB_ID.match(name_or_path):
        raise CheckpointError(f"{name_or_path}: no such checkpoint folder")
    hub_usable()  # one probe; an unreachable hub turns this process offline (cached copies only)
    try:
        config_file = cached_file(name_or_path, "config.json")
    except OSError as error:
        if probe_failed():
            raise CheckpointError(
                f"{name_or_path}: not a local folder, not in the local Hugging Face cache, and the hub "
                f"({hub_host()[0]}) cannot be reached from here; download it on a machine with network "
                "or pass a local checkpoint folder"
            ) from None
        if is_offline_mode():
            raise CheckpointError(
                f"{name_or_path}: not a local folder, and not in the local Hugging Face cache while offline "
                "(HF_HUB_OFFLINE=1); download it first or pass a local checkpoint folder"
            ) from None
        raise CheckpointError(
            f"{name_or_path}: not a local folder, and the hub could not provide it ({_first_line(error)}); "
            "pass a local checkpoint folder"
        ) from None
    if config_file is None:
        raise CheckpointError(f"{name_or_path}: the hub repository has no config.json")
    _check_config(name_or_path, Path(config_file))
    return name_or_path


def _check_config(name: str, config_file: Path) -> None:
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{name}: config.json is unreadable ({_first_line(error)})") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{name}: model_type '{model_type}' is not a supported vision-language architecture "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )


def _check_weight_files(name: str, folder: Path) -> None:
    if any((folder / file).is_file() for file in WEIGHT_FILES):
        return
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
        raise CheckpointError(f"{name}: only pickle weights (*.bin/*.pt) found; mr1 loads safetensors only")
    raise CheckpointError(f"{name}: no weights (model.safetensors or model.safetensors.index.json)")


def _load_processor(name: str, source: str, trust_remote_code: bool) -> Any:
    try:
        return AutoProcessor.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise CheckpointError(
            f"{name}: could not load the processor/tokenizer ({_first_line(error)})"
        ) from None


def _checkpointing(model: Any, *, enable: bool) -> None:
    """Switch activation (gradient) checkpointing, by its transformers ≥ 5.2x name where it exists."""
    if enable:
        switch = (
            getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        )
        switch({"use_reentrant": False})
    else:
        switch = (
            getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
        )
        switch()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' per-file tqdm bars while loading (the CLI shows its own progress)."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
