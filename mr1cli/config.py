"""Run configuration: frozen dataclasses whose `help` metadata is the documentation.

A leaf: range checks live here, registry names (method, task, rewards, KL schedule, sampler) are
checked in one explicit step when a config is loaded (`mr1cli.config_loading.load_config`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mr1cli.core.aggregation import LOSS_AGGREGATIONS, aggregation_error
from mr1cli.core.errors import ConfigError

# The repository's experiments/ folder: profiles, experiment specs and the paper's numbers.
EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
PROFILES_DIR = EXPERIMENTS_DIR / "profiles"
# The tiny bases: each is built from its recipe, experiments/profiles/<name>.yaml, and checked against
# <name>.expected.json. The one list that the model names (zoo/builds.py) and the planner's shapes read.
TINY_BASE_NAMES = ("tiny-base", "tiny-base-long", "tiny-base-longer")


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


LORA_TEXT_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_VISION_MODULES = ["qkv", "proj", "fc1", "fc2"]


@dataclass(frozen=True, kw_only=True)
class LoraConfig:
    enabled: bool = _f(False, "train low-rank adapters (peft) instead of every weight; needs the lora extra")
    rank: int = _f(64, "adapter rank r")
    alpha: float = _f(128.0, "adapter scale numerator: updates are scaled by alpha / rank")
    dropout: float = _f(0.05, "dropout on the adapters' input")
    target_modules: list[str] = _f(
        LORA_TEXT_MODULES, "decoder linear layers that get adapters (names inside each decoder layer)"
    )
    vision: bool = _f(False, f"also adapt the vision tower's {', '.join(LORA_VISION_MODULES)} layers")

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError("model.lora: rank must be >= 1, alpha > 0 and dropout in [0, 1)")
        if not self.target_modules:
            raise ConfigError("model.lora.target_modules: name at least one layer")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    name_or_path: str = _f(
        "tiny-base", "hub id, local checkpoint folder, or 'tiny-base' (the embedded tiny model, warmed up)"
    )
    dtype: str = _f(
        "auto",
        "the COMPUTE dtype: auto (bfloat16 on CUDA, float32 on CPU), bfloat16 or float32. Trained weights, "
        "their gradients and AdamW moments stay float32 (master weights) and the forward runs under "
        "autocast; frozen weights (the reference model, LoRA's base) are stored in this dtype",
    )
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
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        if self.dtype == "float16":
            raise ConfigError(
                "model.dtype=float16 is not supported (it needs loss scaling): use bfloat16 or float32"
            )
        if self.dtype not in ("auto", "bfloat16", "float32"):
            raise ConfigError(f"model.dtype must be auto, bfloat16 or float32, got '{self.dtype}'")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError("model.min_pixels must be positive and at most model.max_pixels")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    train: str = _f("", "training set: local path, HF dataset id, or synthetic:<task>-<split>-<n>")
    test: str = _f("", "test set, same forms as data.train")
    heldout: str = _f(
        "",
        "unshifted held-out set from the training distribution (tiny profile: synthetic:<task>-heldout-<n>);"
        " evaluated beside data.test, and its first data.probe_size examples are the training probe",
    )
    validation: str = _f(
        "",
        "validation set for choosing settings (`mr1 eval --split validation`), disjoint from the reported"
        " sets; not used by training (tiny profile: synthetic:<task>-heldout-2000[1000:2000])",
    )
    probe_size: int = _f(
        0,
        "examples of data.heldout scored greedily (probe/accuracy) before training, every train.probe_every"
        " steps and at the last step (0 = off)",
    )
    balance_answers: bool = _f(
        False,
        "with data.train_limit N: pick the N training examples round-robin over their answers from the"
        " whole training set, so that no single answer dominates the reward",
    )
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
        if self.train_limit < 0 or self.test_limit < 0 or self.probe_size < 0:
            raise ConfigError("data.train_limit, data.test_limit and data.probe_size must be >= 0")
        if self.probe_size and not self.heldout:
            raise ConfigError("data.probe_size needs data.heldout, the set whose first examples it scores")
        if self.balance_answers and not self.train_limit:
            raise ConfigError("data.balance_answers needs data.train_limit, the number of examples to pick")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    learning_rate: float = _f(1e-6, "peak learning rate (R1-V / paper: 1e-6 for GRPO)")
    epochs: float = _f(2.0, "passes over the training set (the paper: 2)")
    max_steps: int = _f(0, "stop after this many optimizer steps (0 = run the epochs)")
    prompts_per_step: int = _f(
        16, "prompts per optimizer step across all processes (paper: 1 × 8 GPUs × 2 accumulation)"
    )
    micro_batch: int = _f(
        1,
        "prompts per forward/backward on one process (G completions each for GRPO; rollouts are sampled "
        "in rl.rollout_batch chunks)",
    )
    lr_scheduler: str = _f("constant", "constant, linear or cosine decay after warm-up")
    warmup_ratio: float = _f(0.0, "fraction of steps spent warming the learning rate up linearly")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "clip the gradient norm to this (0 = no clipping)")
    seed: int = _f(42, "seed for initialisation, data order and sampling")
    save_every: int = _f(0, "write a checkpoint every N optimizer steps (0 = by time: train.save_minutes)")
    save_minutes: float = _f(
        5.0, "also write a checkpoint when this many minutes have passed since the last (0 = off)"
    )
    eval_every: int = _f(
        0,
        "evaluate on the test set every N steps (0 = never while training; `mr1 eval` after); feeds figure 1",
    )
    probe_every: int = _f(
        0, "score the held-out probe (data.probe_size) every N steps (0 = every train.eval_every steps)"
    )
    log_every: int = _f(1, "write metrics every N optimizer steps")
    engine: str = _f(
        "mr1",
        "training engine: mr1 (mr1's own loop, every method) or trl (TRL's GRPOTrainer for grpo and "
        "grpo-d, with mr1's data, prompts, rewards and β schedule; needs the trl extra); same run directory",
    )
    report_to: list[str] = _f(
        [],
        "experiment trackers through accelerate, e.g. [tensorboard, wandb, mlflow] (the trackers extra); "
        "they log the metrics.jsonl metrics and the run config",
    )

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        for name in ("epochs", "max_steps", "save_every", "save_minutes", "eval_every", "probe_every"):
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
    rollout_batch: int = _f(
        0,
        "prompts sampled together in one call, G completions each (0 = all of this process's prompts of the "
        "step); the update then runs in train.micro_batch chunks. Sampling is seeded per prompt, so this "
        "changes speed and memory, not the draws",
    )
    min_completion_length: int = _f(
        0,
        "new tokens sampled before an end-of-sequence token may end a rollout (0 = off; "
        "`mr1 bench` sets it to max_completion_length so every rollout has the same length)",
    )
    kl: dict[str, Any] = _f(
        {},
        "the KL schedule β(s) and its own parameters, e.g. {name: dynamic, beta_min: 0.04, beta_max: 0.1, "
        "explore_frac: 0.3}; name defaults to the method's (grpo: constant, grpo-d: dynamic) and unset "
        "parameters to the task's (paper per-task β); a parameter the schedule does not take is an error",
    )
    epsilon_low: float = _f(0.2, "lower clip range of the importance ratio")
    epsilon_high: float = _f(0.2, "upper clip range of the importance ratio")
    num_iterations: int = _f(1, "μ: policy updates per batch of rollouts (paper / R1-V: 1, ratio ≡ 1)")
    loss_aggregation: str = _f(
        "sequence_mean", "; ".join(f"{name}: {meaning}" for name, meaning in LOSS_AGGREGATIONS.items())
    )
    skip_zero_advantage_steps: bool = _f(
        True,
        "skip the update of a step in which every group scored its G completions equally (no "
        "policy-gradient signal; the β·KL term is then not applied either); `mr1 bench` turns it off",
    )

    rollout_engine: str = _f(
        "hf",
        "what samples the rollouts: hf (the policy in the training process) or vllm (vLLM colocated on the "
        "training GPUs; needs train.engine=trl, a CUDA GPU and the vllm extra)",
    )
    vllm_gpu_memory_utilization: float = _f(
        0.3, "rl.rollout_engine=vllm: fraction of each GPU's memory vLLM may take (TRL's default 0.3)"
    )
    vllm_sleep_mode: bool = _f(
        False,
        "rl.rollout_engine=vllm: offload vLLM's weights and KV cache during the update (less memory, slower)",
    )

    def __post_init__(self) -> None:
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ConfigError(
                f"rl.vllm_gpu_memory_utilization must be in (0, 1], got {self.vllm_gpu_memory_utilization}"
            )
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
        if self.rollout_batch < 0:
            raise ConfigError(
                f"rl.rollout_batch must be >= 0 (0 = all of the step's prompts), got {self.rollout_batch}"
            )
        if self.max_prompt_length < 1 or self.max_completion_length < 1:
            raise ConfigError("rl.max_prompt_length and rl.max_completion_length must be >= 1")
        if not 0 <= self.min_completion_length <= self.max_completion_length:
            raise ConfigError(
                f"rl.min_completion_length must be in [0, rl.max_completion_length={self.max_completion_length}], "
                f"got {self.min_completion_length}"
            )
        for name in ("epsilon_low", "epsilon_high"):
            if getattr(self, name) < 0:
                raise ConfigError(f"rl.{name} must be >= 0, got {getattr(self, name)}")
        if self.num_iterations < 1:
            raise ConfigError(f"rl.num_iterations must be >= 1, got {self.num_iterations}")
        if self.loss_aggregation not in LOSS_AGGREGATIONS:
            raise ConfigError(f"rl.loss_aggregation: {aggregation_error(self.loss_aggregation)}")


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    weights: dict[str, float] = _f(
        {"accuracy": 1.0, "format": 1.0}, "reward name → weight (paper: accuracy 1, format α = 1)"
    )
    scoring: str = _f("strict", "scoring mode of the accuracy reward: strict or r1v")

    def __post_init__(self) -> None:
        for name, weight in self.weights.items():
            if weight < 0:
                raise ConfigError(f"reward.weights.{name} must be >= 0, got {weight}")
        if not any(weight > 0 for weight in self.weights.values()):
            raise ConfigError("reward.weights: at least one reward needs a positive weight")


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    scoring: str = _f(
        "r1v", "headline scoring mode: r1v (as the published numbers) or strict; both are saved"
    )
    max_new_tokens: int = _f(0, "new tokens per answer (0 = the task's: counting 256, geometry 1024)")
    batch_size: int = _f(16, "test prompts generated together")

    def __post_init__(self) -> None:
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


# train.* keys that say where logs go or how often, not what is learned: left out of fingerprints.
UNSCORED_TRAIN_KEYS = ("save_every", "save_minutes", "log_every", "report_to")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    method: str = _f("grpo-d", "sft, grpo or grpo-d")
    task: str = _f("counting", "a registered task (mr1cli.tasks.TASKS), e.g. counting or geometry")
    profile: str = _f("", "the profile the config was built from (recorded, not used)")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not where logs go or how often)."""
        content = self.to_dict()
        content.pop("profile")
        for key in UNSCORED_TRAIN_KEYS:
            content["train"].pop(key)
        content["data"].pop("skip_bad")
        content["data"].pop("validation")  # read only by `mr1 eval --split validation`
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def run_name(self) -> str:
        return f"{self.method}-{self.task}-{self.fingerprint()}"


def describe_fields(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every leaf field: feeds `mr1 config` and the README."""
    rows: list[tuple[str, str, str]] = []
    instance = cls()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            rows += describe_fields(type(value), prefix=f"{prefix}{f.name}.")
        else:
            rows.append((f"{prefix}{f.name}", repr(value), f.metadata.get("help", "")))
    return rows
