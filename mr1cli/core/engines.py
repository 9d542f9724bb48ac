"""Training engines by name (`train.engine`) and rollout engines (`rl.rollout_engine`), with what each
supports. Pure data: no model, no import of the engines themselves.

An engine trains a run directory for a resolved config: `mr1` is mr1's own loop and recipes (the
reference implementation, every method); `trl` hands GRPO and GRPO-D to TRL's `GRPOTrainer` with
mr1's data, prompts, rewards and β schedule around it (mr1cli/training/engines/trl.py). Both write
the same run directory, so evaluation, status, reproduce, tables and figures never ask which ran.
An engine's `trainer` is a dotted path `package.module:function` imported on first use, so a
third-party engine registers a spec here without mr1 importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import Registry


@dataclass(frozen=True)
class RolloutEngine:
    description: str
    package: str = ""  # the module that must be importable ("" = none beyond the engine's)


ROLLOUT_ENGINES: Registry[RolloutEngine] = Registry("rollout engine")
ROLLOUT_ENGINES.add("hf", RolloutEngine("the policy's own forward passes in the training process"))
ROLLOUT_ENGINES.add(
    "vllm",
    RolloutEngine("vLLM colocated with training on the same GPUs (TRL's vllm_mode='colocate')", "vllm"),
)


@dataclass(frozen=True)
class EngineSpec:
    description: str
    recipes: tuple[str, ...]  # the method recipes it trains (mr1cli.core.methods)
    rollout_engines: tuple[str, ...]
    trainer: str  # "package.module:function" (cfg, run, resume, examples, base_path, describe) -> final/
    package: str = ""  # the module that must be importable to train with it
    install: str = ""  # how to get the package
    refusals: Callable[[Any], str | None] = lambda cfg: None  # a setting it cannot honour, or None
    show: str = ""  # "package.module:function" (cfg) -> text: the engine's own config, for --show-config


def _trl_refusals(cfg: Any) -> str | None:
    """Settings the TRL engine would silently change, refused instead (docs/gpus.md, "Engines")."""
    if cfg.train.report_to:
        return (
            "train.report_to is not supported with train.engine=trl yet (metrics.jsonl holds every "
            "metric); remove it or use train.engine=mr1"
        )
    if cfg.rl.num_iterations != 1:
        return (
            "rl.num_iterations > 1 is not supported with train.engine=trl: TRL counts each of the μ updates "
            "as an optimizer step, so β(s), the data order and the step count would no longer be mr1's"
        )
    return None


ENGINES: Registry[EngineSpec] = Registry("training engine")
ENGINES.add(
    "mr1",
    EngineSpec(
        "mr1's own loop and recipes: every method, the reference implementation, fastest on CPU",
        recipes=("sft", "grpo"),
        rollout_engines=("hf",),
        trainer="mr1cli.training.train:train_with_mr1",
    ),
)
ENGINES.add(
    "trl",
    EngineSpec(
        "TRL's GRPOTrainer (vLLM rollouts, DeepSpeed/FSDP through accelerate) with mr1's data, prompts, "
        "rewards and β schedule",
        recipes=("grpo",),
        rollout_engines=("hf", "vllm"),
        trainer="mr1cli.training.engines.trl:train_with_trl",
        package="trl",
        install="pip install -e '.[trl]'",
        refusals=_trl_refusals,
        show="mr1cli.training.engines.trl_mapping:show_grpo_config",
    ),
)


def methods_of(engine: str, methods: dict[str, str]) -> list[str]:
    """The methods (name → recipe) that `engine` trains.

    >>> methods_of("trl", {"sft": "sft", "grpo": "grpo", "grpo-d": "grpo"})
    ['grpo', 'grpo-d']
    """
    return [name for name, recipe in methods.items() if recipe in ENGINES.get(engine).recipes]


def check_engine(engine: str, method: str, recipe: str, rollout_engine: str) -> None:
    """One-line errors for an engine that cannot train the method or sample with the rollout engine.

    >>> check_engine("trl", "grpo-d", "grpo", "vllm")
    >>> check_engine("mr1", "grpo", "grpo", "vllm")
    Traceback (most recent call last):
    ...
    mr1cli.core.errors.ConfigError: rl.rollout_engine=vllm needs train.engine=trl (mr1's engine samples with its own KV-cached loop)
    """
    spec = ENGINES.get(engine)
    ROLLOUT_ENGINES.get(rollout_engine)
    if recipe not in spec.recipes:
        raise ConfigError(
            f"train.engine={engine} does not train method '{method}': {method} runs on mr1's engine "
            "(leave train.engine=mr1 for it)"
        )
    if rollout_engine not in spec.rollout_engines:
        able = [name for name in ENGINES.names() if rollout_engine in ENGINES.get(name).rollout_engines]
        raise ConfigError(
            f"rl.rollout_engine={rollout_engine} needs train.engine={' or '.join(able)} "
            "(mr1's engine samples with its own KV-cached loop)"
        )
