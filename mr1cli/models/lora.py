"""LoRA through peft (`model.lora.*`): add adapters, load saved ones, merge them for export.

A LoRA checkpoint folder holds only the adapters (`adapter_config.json`, `adapter_model.safetensors`)
and the processor; `adapter_config.json` names the base checkpoint, which is loaded first. The
reference model of a LoRA run is the policy with its adapters switched off (`reference_off`), so no
second copy of the weights is held (as TRL does).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from mr1cli.config import LORA_VISION_MODULES
from mr1cli.core.errors import CheckpointError, ConfigError

ADAPTER_CONFIG = "adapter_config.json"


def require_peft() -> None:
    if importlib.util.find_spec("peft") is None:
        raise ConfigError("model.lora.enabled=true needs the peft package: pip install -e '.[lora]'")


def is_adapter_folder(name_or_path: str) -> bool:
    return (Path(name_or_path).expanduser() / ADAPTER_CONFIG).is_file()


def adapter_base(folder: str) -> str:
    """The base checkpoint a LoRA folder's adapters were trained on."""
    config_file = Path(folder).expanduser() / ADAPTER_CONFIG
    try:
        base = json.loads(config_file.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{folder}: {ADAPTER_CONFIG} is unreadable or names no base model") from None
    if not base:
        raise CheckpointError(f"{folder}: {ADAPTER_CONFIG} names no base model")
    return str(base)


def target_pattern(target_modules: list[str], vision: bool) -> str:
    """A regex over module names: the named layers of the decoder, and the vision blocks' layers.

    >>> target_pattern(["q_proj", "v_proj"], vision=False)
    '.*language_model.*\\\\.(q_proj|v_proj)$'
    """
    text = rf".*language_model.*\.({'|'.join(map(re.escape, target_modules))})$"
    if not vision:
        return text
    tower = r".*visual\.blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)$"
    assert len(LORA_VISION_MODULES) == 4  # the four layers named in the pattern above
    return f"({text})|({tower})"


def add_lora(model: Any, lora: Any, *, seed: int = 0) -> Any:
    """Wrap `model` with fresh adapters as `model.lora` (a LoraConfig section) asks; only they train.
    The adapters' random init is seeded, so a run and its resumed twin start from the same adapters."""
    require_peft()
    from peft import LoraConfig, get_peft_model  # optional: checked above

    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target_pattern(list(lora.target_modules), lora.vision),
        bias="none",
    )
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            wrapped = get_peft_model(model, config)
    except ValueError as error:
        raise ConfigError(f"model.lora.target_modules: {str(error).splitlines()[0]}") from None
    if not lora.vision:
        _keep_frozen_vision_out_of_backward(wrapped)
    return wrapped


def _keep_frozen_vision_out_of_backward(model: Any) -> None:
    """With gradient checkpointing, peft makes every input embedding's output require grad
    (transformers' `enable_input_require_grads`), the vision tower's patch embedding included, so
    the backward pass ran through the whole frozen tower for gradients nothing uses (found by the
    real-size paper-profile test). Drop that hook from the vision tower's embedding only."""
    for module in model.modules():
        if "Vision" in type(module).__name__ and hasattr(module, "get_input_embeddings"):
            hooks = module.get_input_embeddings()._forward_hooks
            for key in [k for k, hook in hooks.items() if hook.__name__ == "make_inputs_require_grads"]:
                del hooks[key]


def load_adapters(model: Any, folder: str, *, trainable: bool) -> Any:
    """Attach the adapters saved in `folder`: trainable (resume), or merged into the weights (evaluation)."""
    require_peft()
    from peft import PeftModel  # optional: checked above

    try:
        wrapped = PeftModel.from_pretrained(model, folder, is_trainable=trainable)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(
            f"{folder}: could not load the LoRA adapters ({str(error).splitlines()[0]})"
        ) from None
    if not trainable:
        return wrapped.merge_and_unload()
    if not any(".visual." in name for name, _ in wrapped.named_modules() if name.endswith("lora_A")):
        _keep_frozen_vision_out_of_backward(wrapped)  # resuming: the same fix as a fresh add_lora
    return wrapped


def has_adapters(model: Any) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@contextlib.contextmanager
def reference_off(model: Any) -> Iterator[Any]:
    """The LoRA policy with its adapters off: the base model, i.e. the reference π_ref."""
    with model.disable_adapter():
        yield model


def base_model(model: Any) -> Any:
    """The transformers model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if has_adapters(model) else model
