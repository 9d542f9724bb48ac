"""Training recipes by name (a method names its recipe in `mr1cli.core.methods`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mr1cli.core.registry import Registry
from mr1cli.training.recipes.grpo import GRPORecipe
from mr1cli.training.recipes.sft import SFTRecipe

RECIPES: Registry[Callable[..., Any]] = Registry("recipe")


@RECIPES.register("sft")
def _sft(cfg, examples, *, policy_path: str, base_path: str, total_steps: int, accelerator: Any) -> SFTRecipe:
    return SFTRecipe(cfg, examples, policy_path, total_steps, accelerator)


@RECIPES.register("grpo")
def _grpo(
    cfg, examples, *, policy_path: str, base_path: str, total_steps: int, accelerator: Any
) -> GRPORecipe:
    return GRPORecipe(cfg, examples, policy_path, base_path, total_steps, accelerator)
