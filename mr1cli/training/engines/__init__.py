"""The training engines' entry points (`train.engine`, specs in mr1cli.core.engines): each trains a
bound run directory and returns its final/ folder."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.core.engines import ENGINES, ROLLOUT_ENGINES
from mr1cli.core.errors import ConfigError


def _function(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def trainer_for(engine: str) -> Callable[..., Path]:
    """The function that trains with `engine`: (cfg, run, resume, train_examples, base_path, describe)."""
    return _function(ENGINES.get(engine).trainer)


def engine_config_text(cfg: RunConfig) -> str:
    """The engine's own configuration built from `cfg` (`--show-config`), or "" when it has none."""
    show = ENGINES.get(cfg.train.engine).show
    return _function(show)(cfg) if show else ""


def check_engine_packages(cfg: RunConfig) -> None:
    """Fail in one line, before any model is loaded, when the engine or rollout engine is not installed."""
    spec = ENGINES.get(cfg.train.engine)
    if spec.package and importlib.util.find_spec(spec.package) is None:
        raise ConfigError(f"train.engine={cfg.train.engine} needs the {spec.package} package: {spec.install}")
    rollout = ROLLOUT_ENGINES.get(cfg.rl.rollout_engine)
    if rollout.package and importlib.util.find_spec(rollout.package) is None:
        raise ConfigError(
            f"rl.rollout_engine={cfg.rl.rollout_engine} needs the {rollout.package} package, which needs a CUDA "
            "machine: pip install -e '.[vllm]'"
        )
