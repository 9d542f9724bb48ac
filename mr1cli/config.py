"""Run configuration: frozen dataclasses whose `help` metadata is the documentation.

Layering, later wins: dataclass defaults → profile YAML (experiments/profiles/<name>.yaml:
`base`, then `by_task.<task>`, then `by_method.<method>`) → a `--config` YAML file →
`key=value` overrides such as `rl.beta=0.02` or `reward.weights.format=0`.
Unknown keys and values of the wrong type raise ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import Registry

# The repository's experiments/ folder: profiles, experiment specs and the paper's numbers.
EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
PROFILES_DIR = EXPERIMENTS_DIR / "profiles"


def _f(default: Any, help: str) -> Any:
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class MethodSpec:
    trainer: str  # "sft" or "grpo"
    kl_schedule: str | None  # the registered KL schedule a GRPO method uses by default
    description: str


METHODS: Registry[MethodSpec] = Registry("method")
METHODS.add("sft", MethodSpec("sft", None, "supervised fine-tuning on the answers"))
METHODS.add("grpo", MethodSpec("grpo", "constant", "GRPO with a constant KL weight β"))
METHODS.add("grpo-d", MethodSpec("grpo", "dynamic", "GRPO-D: β follows the paper's Eq. 3 schedule"))


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    name_or_path: str = _f(
        "tiny-base", "hub id, local checkpoint folder, or 'tiny-base' (the embedded tiny model, warmed up)"
    )
    dtype: str = _f("auto", "auto (bf16 on CUDA, fp32 on CPU), bfloat16, float16 or float32")
    attn_implementation: str = _f(
        "sdpa", "sdpa, eager, or flash_attention_2 (used when flash-attn is installed)"
    )
    gradient_checkpointing: bool = _f(False, "recompute activations in the backward pass to save memory")
    min_pixels: int = _f(3136, "smallest image area (pixels) given to the vision tower")
    max_pixels: int = _f(401408, "largest image area (pixels); bigger images are resized down (R1-V: 401408)")
    freeze_vision: bool = _f(False, "keep the vision tower's weights fixed")
    trust_remote_code: bool = _f(
        False, "allow a checkpoint's own Python code to run (off unless you trust it)"
    )

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ConfigError(f"model.dtype must be auto, bfloat16, float16 or float32, got '{self.dtype}'")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError("model.min_pixels must be positive and at most model.max_pixels")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    train: str = _f("", "training set: local path, HF dataset id, or synthetic:<task>-<split>-<n>")
    test: str = _f("", "test set, same forms as data.train")
    warmup: str = _f("", "warm-up set used to build the tiny base model")
    image_root: str = _f(
        "", "folder that image paths in the data files are resolved under (default: the file's folder)"
    )
    skip_bad: bool = _f(False, "skip (and count) rows that fail validation instead of stopping")
    train_limit: int = _f(
        0, "use only the first N training examples (0 = all; the paper's few-shot counting uses 100)"
    )
    test_limit: int = _f(0, "evaluate on the first N test examples (0 = all)")
    synthetic_seed: int = _f(0, "seed of the synthetic data generators (fixed across run seeds)")
    synthetic_image_size: int = _f(112, "side in pixels of synthetic images")

    def __post_init__(self) -> None:
        if self.train_limit < 0 or self.test_limit < 0:
            raise ConfigError("data.train_limit and data.test_limit must be >= 0")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    learning_rate: float = _f(1e-6, "peak learning rate (R1-V / paper: 1e-6 for GRPO)")
    epochs: float = _f(2.0, "passes over the training set (the paper: 2)")
    max_steps: int = _f(0, "stop after this many optimizer steps (0 = run the epochs)")
    prompts_per_step: int = _f(
        16, "prompts per optimizer step across all processes (paper: 1 × 8 GPUs × 2 accumulation)"
    )
    micro_batch: int = _f(1, "prompts per forward/backward on one process (G completions each for GRPO)")
    lr_scheduler: str = _f("constant", "constant, linear or cosine decay after warm-up")
    warmup_ratio: float = _f(0.0, "fraction of steps spent warming the learning rate up linearly")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "clip the gradient norm to this (0 = no clipping)")
    seed: int = _f(42, "seed for initialisation, data order and sampling")
    save_every: int = _f(0, "write a checkpoint every N optimizer steps (0 = by time: train.save_minutes)")
    save_minutes: float = _f(
        5.0, "also write a checkpoint when this many minutes have passed since the last (0 = off)"
    )
    eval_every: int = _f(0, "evaluate on the test set every N steps (0 = only at the end); feeds figure 1")
    log_every: int = _f(1, "write metrics every N optimizer steps")
    tensorboard: bool = _f(False, "also log to TensorBoard (needs the tensorboard extra)")

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        for name in ("epochs", "max_steps", "save_every", "save_minutes", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.log_every < 1:
            raise ConfigError(f"train.log_every must be >= 1, got {self.log_every}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("set train.epochs > 0 or train.max_steps > 0")
        if self.prompts_per_step < 1 or self.micro_batch < 1:
            raise ConfigError("train.prompts_per_step and train.micro_batch must be >= 1")
        if self.lr_scheduler not in ("constant", "linear", "cosine"):
            raise ConfigError(
                f"train.lr_scheduler must be constant, linear or cosine, got '{self.lr_scheduler}'"
            )
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_grad_norm < 0 or self.weight_decay < 0:
            raise ConfigError("train.max_grad_norm and train.weight_decay must be >= 0")


@dataclass(frozen=True, kw_only=True)
class RLConfig:
    num_generations: int = _f(8, "G: completions sampled per prompt (paper: 8)")
    temperature: float = _f(1.0, "sampling temperature of the rollouts (R1-V: 1.0)")
    top_p: float = _f(1.0, "nucleus sampling of the rollouts")
    top_k: int = _f(
        0, "sample only among the k most likely tokens (0 = off; R1-V's TRL-0.14 generation used 50)"
    )
    max_prompt_length: int = _f(512, "prompts longer than this many tokens are refused")
    max_completion_length: int = _f(512, "new tokens per rollout (paper: 512)")
    sampler: str = _f(
        "mr1",
        "rollout sampler: mr1 (KV-cached loop, each prompt prefilled once for its G completions) or "
        "transformers (model.generate, the reference implementation; same distribution)",
    )
    shared_prompt_forward: bool = _f(
        True,
        "compute each prompt and its image once for its G completions (KV cache repeated G times) in the "
        "reference, old-policy and policy forwards; same loss. The policy update falls back to full "
        "sequences under gradient checkpointing or with several processes",
    )
    min_completion_length: int = _f(
        0,
        "new tokens sampled before an end-of-sequence token may end a rollout (0 = off; "
        "`mr1 bench` sets it to max_completion_length so every rollout has the same length)",
    )
    kl_schedule: str = _f("", "registered β schedule; empty = the method's (grpo: constant, grpo-d: dynamic)")
    beta: float = _f(0.04, "β of the constant schedule")
    beta_min: float = _f(0.04, "β_min of the dynamic and other shaped schedules")
    beta_max: float = _f(0.10, "β_max of the dynamic and other shaped schedules")
    explore_frac: float = _f(0.3, "w/t: fraction of steps in the exploration phase (paper: 0.3)")
    epsilon_low: float = _f(0.2, "lower clip range of the importance ratio")
    epsilon_high: float = _f(0.2, "upper clip range of the importance ratio")
    num_iterations: int = _f(1, "μ: policy updates per batch of rollouts (paper / R1-V: 1, ratio ≡ 1)")
    loss_aggregation: str = _f("sequence_mean", "sequence_mean (GRPO) or token_mean")
    skip_zero_advantage_steps: bool = _f(
        True,
        "skip the update of a step in which every group scored its G completions equally (no "
        "policy-gradient signal; the β·KL term is then not applied either); `mr1 bench` turns it off",
    )

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ConfigError(
                f"rl.num_generations (G) must be >= 2 for group-relative advantages, got {self.num_generations}"
            )
        if self.temperature <= 0:
            raise ConfigError(
                f"rl.temperature must be > 0 when sampling G > 1 completions, got {self.temperature}"
            )
        if self.top_k < 0:
            raise ConfigError(f"rl.top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"rl.top_p must be in (0, 1], got {self.top_p}")
        if self.max_prompt_length < 1 or self.max_completion_length < 1:
            raise ConfigError("rl.max_prompt_length and rl.max_completion_length must be >= 1")
        from mr1cli.models.sampling import SAMPLERS  # torch-heavy: imported only when a config is built

        SAMPLERS.get(self.sampler)
        if not 0 <= self.min_completion_length <= self.max_completion_length:
            raise ConfigError(
                f"rl.min_completion_length must be in [0, rl.max_completion_length={self.max_completion_length}], "
                f"got {self.min_completion_length}"
            )
        for name in ("beta", "beta_min", "beta_max", "epsilon_low", "epsilon_high"):
            if getattr(self, name) < 0:
                raise ConfigError(f"rl.{name} must be >= 0, got {getattr(self, name)}")
        if self.num_iterations < 1:
            raise ConfigError(f"rl.num_iterations must be >= 1, got {self.num_iterations}")
        if self.loss_aggregation not in ("sequence_mean", "token_mean"):
            raise ConfigError(
                f"rl.loss_aggregation must be sequence_mean or token_mean, got '{self.loss_aggregation}'"
            )


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    weights: dict[str, float] = _f(
        {"accuracy": 1.0, "format": 1.0}, "reward name → weight (paper: accuracy 1, format α = 1)"
    )
    scoring: str = _f("strict", "scoring mode of the accuracy reward: strict or r1v")

    def __post_init__(self) -> None:
        from mr1cli.core.rewards import check_weights  # rewards imports tasks; keep config import-light

        check_weights(self.weights)
        _check_scoring("reward.scoring", self.scoring)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    scoring: str = _f(
        "r1v", "headline scoring mode: r1v (as the published numbers) or strict; both are saved"
    )
    max_new_tokens: int = _f(0, "new tokens per answer (0 = the task's: counting 256, geometry 1024)")
    batch_size: int = _f(16, "test prompts generated together")

    def __post_init__(self) -> None:
        _check_scoring("eval.scoring", self.scoring)
        if self.max_new_tokens < 0 or self.batch_size < 1:
            raise ConfigError("eval.max_new_tokens must be >= 0 and eval.batch_size >= 1")


@dataclass(frozen=True, kw_only=True)
class SFTConfig:
    target: str = _f(
        "answer",
        "answer: train on '<answer> x </answer>' (the paper's SFT); reasoning: on the data's thinking trace too",
    )

    eval_wording_frac: float = _f(
        0.0,
        "fraction of examples shown with the evaluation prompt's wording instead of the training one "
        "(the tiny base uses 0.5 so it is robust to both, as a pretrained instruct model is)",
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.eval_wording_frac <= 1.0:
            raise ConfigError(f"sft.eval_wording_frac must be in [0, 1], got {self.eval_wording_frac}")
        if self.target not in ("answer", "reasoning"):
            raise ConfigError(f"sft.target must be answer or reasoning, got '{self.target}'")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    method: str = _f("grpo-d", "sft, grpo or grpo-d")
    task: str = _f("counting", "counting or geometry")
    profile: str = _f("", "the profile the config was built from (recorded, not used)")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)

    def __post_init__(self) -> None:
        METHODS.get(self.method)
        from mr1cli.tasks import get_task

        get_task(self.task)
        self.kl_schedule().can_be_positive(1)  # validates the schedule's name and parameters

    @property
    def trainer(self) -> str:
        return METHODS.get(self.method).trainer

    def kl_schedule_name(self) -> str:
        return self.rl.kl_schedule or METHODS.get(self.method).kl_schedule or "constant"

    def kl_schedule(self):
        from mr1cli.core.kl_schedules import build_schedule

        rl = self.rl
        return build_schedule(
            self.kl_schedule_name(),
            beta=rl.beta,
            beta_min=rl.beta_min,
            beta_max=rl.beta_max,
            explore_frac=rl.explore_frac,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not where logs go or how often)."""
        content = self.to_dict()
        content.pop("profile")
        for key in ("save_every", "save_minutes", "log_every", "tensorboard"):
            content["train"].pop(key)
        content["data"].pop("skip_bad")
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def run_name(self) -> str:
        return f"{self.method}-{self.task}-{self.fingerprint()}"


def _check_scoring(key: str, mode: str) -> None:
    from mr1cli.core.task import SCORING_MODES

    if mode not in SCORING_MODES:
        raise ConfigError(f"{key} must be one of {', '.join(SCORING_MODES)}, got '{mode}'")


# ---------------------------------------------------------------- layering and type checks


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a field's annotation (ints accepted for floats); ConfigError if wrong."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(key, value, option)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping like {{name: number}}, got {value!r}")
        _, value_type = typing.get_args(annotation)
        return {str(k): _coerce(f"{key}.{k}", v, value_type) for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {annotation!r}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    types_by_name = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in types_by_name:
            from mr1cli.core.registry import did_you_mean

            choices = [f"{prefix}{known}" for known in types_by_name]
            raise ConfigError(f"unknown config key '{key}'{did_you_mean(key, choices)}")
        annotation = types_by_name[name]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a section of keys, got {value!r}")
            kwargs[name] = _build(annotation, value, prefix=f"{key}.")
        else:
            kwargs[name] = _coerce(key, value, annotation)
    return cls(**kwargs)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; a mapping-valued field such as reward.weights is replaced key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """`a.b=value` → {"a": {"b": value}} with value read as YAML (numbers, true/false, strings).

    >>> parse_override("rl.beta=0.02")
    {'rl': {'beta': 0.02}}
    """
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value (e.g. rl.beta=0.02)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    nested: dict[str, Any] = value
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return content


def profiles_dir() -> Path:
    """experiments/profiles, or $MR1_PROFILES_DIR to use your own profiles."""
    return Path(os.environ.get("MR1_PROFILES_DIR") or PROFILES_DIR)


def profile_path(profile: str) -> Path:
    root = profiles_dir()
    path = root / f"{profile}.yaml"
    if not path.exists():
        from mr1cli.core.registry import did_you_mean

        names = sorted(p.stem for p in root.glob("*.yaml"))
        raise ConfigError(f"unknown profile '{profile}'{did_you_mean(profile, names)}")
    return path


def profile_layers(profile: str, task: str, method: str) -> list[dict[str, Any]]:
    """The profile's `base`, `by_task.<task>` and `by_method.<method>` sections, in order."""
    path = profile_path(profile)
    content = _read_yaml(path, "profile")
    unknown = set(content) - {"base", "by_task", "by_method", "description"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level section(s) {sorted(unknown)} (use base, by_task, by_method)"
        )
    return [
        content.get("base") or {},
        (content.get("by_task") or {}).get(task) or {},
        (content.get("by_method") or {}).get(method) or {},
    ]


def load_config(
    *,
    method: str,
    task: str,
    profile: str = "tiny",
    config_file: Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    extra_layers: list[dict[str, Any]] | None = None,
) -> RunConfig:
    """Resolve a run's configuration through every layer (see the module docstring)."""
    METHODS.get(method)
    layers = profile_layers(profile, task, method)
    layers += extra_layers or []
    if config_file is not None:
        layers.append(_read_yaml(config_file, "config"))
    layers += [parse_override(text) for text in overrides]
    values: dict[str, Any] = {}
    for layer in layers:
        values = _merge(values, layer)
    for fixed in ("method", "task", "profile"):
        values.pop(fixed, None)
    return _build(RunConfig, {**values, "method": method, "task": task, "profile": profile})


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig saved with `to_dict` (a run directory's config.json)."""
    return _build(RunConfig, values)


def describe_fields(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every leaf field: feeds `mr1 train --help-config` and the README."""
    rows: list[tuple[str, str, str]] = []
    instance = cls() if cls is not RunConfig else RunConfig()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            rows += describe_fields(type(value), prefix=f"{prefix}{f.name}.")
        else:
            rows.append((f"{prefix}{f.name}", repr(value), f.metadata.get("help", "")))
    return rows
