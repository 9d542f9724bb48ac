"""mr1's run config → TRL's `GRPOConfig`, field by field, and TRL's logged metrics → mr1's names.

Pure: builds keyword arguments (a test pins every one), imports trl only in `build_grpo_config`.
What is matched, and why (R1-V's trainer is a fork of TRL 0.14's `GRPOTrainer`):
- loss: clipped ratio with k3 KL, averaged per completion then over completions (`loss_type="grpo"`,
  R1-V's and mr1's `sequence_mean`); `token_mean` → `bnpo` (per micro-batch token mean, mr1's);
  `use_bias_correction_kl=False`: TRL 0.14 had no importance ratio on the KL term;
- advantages (r − mean) / (std + 1e-4) per group, unbiased std (`scale_rewards="group"`), the rewards
  mr1's own functions weighted by `reward.weights` (summed, then normalised);
- sampling: temperature, top-p, top-k, the completion length, vision marker tokens never sampled;
  no repetition penalty, no min-p, no masking of truncated completions (R1-V had none);
- optimisation: AdamW (β 0.9/0.999, ε 1e-8, weight decay), the LR schedule by name with the same
  warm-up step count, gradient clipping, float32 weights with bf16 autocast when `model.dtype` resolves
  to bfloat16 on the training device (TRL's `bf16`, as mr1's engine; models/precision.py), dropout on;
- batches: `prompts_per_step` prompts × G completions per optimizer step, `micro_batch` prompts per
  forward on each process, gradient accumulation for the rest; data in mr1's order (no shuffling);
- β: TRL's `beta` is only the starting value: a callback sets β(s) before every step (trl_run.py).
Known differences: HF's warm-up ramps s/w where mr1's ramps (s+1)/(w+1) (no profile warms GRPO
up); HF exempts biases and norms from weight decay (no profile uses weight decay for GRPO).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.core.errors import ConfigError

# mr1's rl.loss_aggregation → TRL's loss_type
LOSS_TYPES = {"sequence_mean": "grpo", "token_mean": "bnpo"}
# mr1's train.lr_scheduler → transformers' lr_scheduler_type (a warm-up of 0 steps is no warm-up)
LR_SCHEDULERS = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


def _hf_generation(rl: Any, forbidden: Sequence[int]) -> dict[str, Any]:
    extra: dict[str, Any] = {"suppress_tokens": list(forbidden)} if forbidden else {}
    return extra | ({"min_new_tokens": rl.min_completion_length} if rl.min_completion_length else {})


def _vllm_generation(rl: Any, forbidden: Sequence[int]) -> dict[str, Any]:
    # vLLM's SamplingParams has no suppress_tokens; a pretrained Qwen2-VL does not sample its vision
    # markers, so they are left unsuppressed there (docs/gpus.md, "Engines").
    return {"min_tokens": rl.min_completion_length} if rl.min_completion_length else {}


# rl.rollout_engine → (the extra generation arguments it takes, the GRPOConfig fields it sets)
ROLLOUT_GENERATION: dict[str, Callable[[Any, Sequence[int]], dict[str, Any]]] = {
    "hf": _hf_generation,
    "vllm": _vllm_generation,
}


def _vllm_fields(cfg: RunConfig) -> dict[str, Any]:
    rl = cfg.rl
    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": rl.vllm_gpu_memory_utilization,
        "vllm_enable_sleep_mode": rl.vllm_sleep_mode,
        "vllm_max_model_length": rl.max_prompt_length + rl.max_completion_length,
        "vllm_tensor_parallel_size": 1,
        # R1-V sampled with the policy itself: no correction between sampler and trainer log-probs
        "vllm_importance_sampling_correction": False,
    }


ROLLOUT_FIELDS: dict[str, Callable[[RunConfig], dict[str, Any]]] = {
    "hf": lambda cfg: {"use_vllm": False},
    "vllm": _vllm_fields,
}


def world_size() -> int:
    """Processes of this launch (accelerate / torchrun set WORLD_SIZE), 1 without a launcher."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def batch_fields(cfg: RunConfig, num_processes: int) -> dict[str, int]:
    """Completions per forward on one process and micro-batches per optimizer step.

    >>> from mr1cli.config import RLConfig, TrainConfig
    >>> cfg = RunConfig(train=TrainConfig(prompts_per_step=16, micro_batch=1), rl=RLConfig(num_generations=8))
    >>> batch_fields(cfg, num_processes=8)
    {'per_device_train_batch_size': 8, 'gradient_accumulation_steps': 2, 'num_generations': 8}
    """
    train, g = cfg.train, cfg.rl.num_generations
    per_pass = train.micro_batch * num_processes  # prompts per forward over all processes
    if train.prompts_per_step % per_pass:
        raise ConfigError(
            f"train.prompts_per_step={train.prompts_per_step} must be a multiple of train.micro_batch × "
            f"processes = {train.micro_batch} × {num_processes} with train.engine=trl"
        )
    return {
        "per_device_train_batch_size": train.micro_batch * g,  # TRL counts completions
        "gradient_accumulation_steps": train.prompts_per_step // per_pass,
        "num_generations": g,
    }


def _bf16_compute(dtype: str) -> bool:
    """Whether `model.dtype` means bf16 compute on the device TRL will train on (CUDA when visible).

    >>> _bf16_compute("float32"), _bf16_compute("bfloat16")
    (False, True)
    """
    import torch

    from mr1cli.models.precision import resolve_precision

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return resolve_precision(dtype, device).mixed


def grpo_config_kwargs(
    cfg: RunConfig,
    *,
    output_dir: str,
    total_steps: int,
    beta: float,
    num_processes: int = 1,
    forbidden_tokens: Sequence[int] = (),
) -> dict[str, Any]:
    """Every GRPOConfig field mr1 sets for `cfg` (the rest are TRL's defaults and change nothing here)."""
    rl, train = cfg.rl, cfg.train
    warmup_steps = int(train.warmup_ratio * total_steps)  # the same count as mr1's scheduler
    return {
        "output_dir": output_dir,
        "seed": train.seed,
        "max_steps": total_steps,
        **batch_fields(cfg, num_processes),
        "shuffle_dataset": False,  # the dataset is laid out in mr1's step order
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,  # rows are prompts and PIL images, nothing to pin
        "learning_rate": train.learning_rate,
        "lr_scheduler_type": LR_SCHEDULERS[train.lr_scheduler],
        "warmup_steps": warmup_steps,
        "optim": "adamw_torch",
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "weight_decay": train.weight_decay,
        "max_grad_norm": train.max_grad_norm,
        "bf16": _bf16_compute(cfg.model.dtype),  # autocast over float32 weights, as mr1's engine
        "fp16": False,
        "activation_checkpointing": cfg.model.gradient_checkpointing,  # transformers 5's name
        "activation_checkpointing_kwargs": {"use_reentrant": False},
        "disable_dropout": False,
        "beta": beta,
        "loss_type": LOSS_TYPES[rl.loss_aggregation],
        "scale_rewards": "group",
        "use_bias_correction_kl": False,
        "epsilon": rl.epsilon_low,
        "epsilon_high": rl.epsilon_high,
        "num_iterations": rl.num_iterations,
        "importance_sampling_level": "token",
        "mask_truncated_completions": False,
        "reward_weights": [float(w) for w in cfg.reward.weights.values()],
        "temperature": rl.temperature,
        "top_p": rl.top_p,
        "top_k": rl.top_k,
        "min_p": None,
        "repetition_penalty": 1.0,
        "max_completion_length": rl.max_completion_length,
        "generation_kwargs": ROLLOUT_GENERATION[rl.rollout_engine](rl, forbidden_tokens) or None,
        **ROLLOUT_FIELDS[rl.rollout_engine](cfg),
        "remove_unused_columns": False,
        "logging_strategy": "steps",
        "logging_steps": 1,  # one log per optimizer step: mr1's metrics.jsonl rows (trl_run.py)
        "save_strategy": "no",  # checkpoints when mr1's cadence says (train.save_every / save_minutes)
        "save_total_limit": 2,
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "log_completions": False,
    }


def build_grpo_config(cfg: RunConfig, **kwargs: Any) -> Any:
    """TRL's GRPOConfig for `cfg` (keyword arguments as `grpo_config_kwargs`)."""
    from trl import GRPOConfig

    return GRPOConfig(**grpo_config_kwargs(cfg, **kwargs))


# TRL's per-step log (trainer.log, averaged over the step's micro-batches) → mr1's metric names
TRL_METRICS = {
    "loss": "loss/total",
    "reward": "reward/mean",
    "reward_std": "reward/std",
    "kl": "kl/mean",
    "entropy": "policy/entropy",
    "grad_norm": "train/grad_norm",
    "learning_rate": "train/lr",
    "frac_reward_zero_std": "train/zero_adv_groups",
    "clip_ratio/region_mean": "train/clip_fraction",
    "completions/mean_length": "completion/length",
}


def mr1_metrics(logs: dict[str, Any], reward_names: Sequence[str], completions: int) -> dict[str, float]:
    """mr1's metric names for one step of TRL's log; `completions` sampled in the step.

    >>> mr1_metrics({"reward": 1.5, "rewards/accuracy/mean": 0.5, "completions/mean_length": 10.0,
    ...              "epoch": 0.1}, ["accuracy"], completions=64)
    {'reward/mean': 1.5, 'completion/length': 10.0, 'reward/accuracy': 0.5, 'completion/tokens': 640.0}
    """
    row = {mr1: float(logs[trl]) for trl, mr1 in TRL_METRICS.items() if logs.get(trl) is not None}
    for name in reward_names:
        if logs.get(f"rewards/{name}/mean") is not None:
            row[f"reward/{name}"] = float(logs[f"rewards/{name}/mean"])
    if "completion/length" in row:
        row["completion/tokens"] = row["completion/length"] * completions
    return row


def show_grpo_config(cfg: RunConfig) -> str:
    """The GRPOConfig fields `--show-config` prints for train.engine=trl (values known only at the start
    of a run, such as the step count, are described instead)."""
    import yaml

    fields = grpo_config_kwargs(
        cfg, output_dir="<run dir>/checkpoints", total_steps=1, beta=0.0, num_processes=world_size()
    )
    fields["max_steps"] = (
        cfg.train.max_steps or "ceil(train.epochs × training examples / train.prompts_per_step)"
    )
    if cfg.train.warmup_ratio:
        fields["warmup_steps"] = f"int({cfg.train.warmup_ratio} × max_steps)"
    fields["beta"] = "the largest β(s) of rl.kl (0 when β ≡ 0); a callback sets β(s) before every step"
    extra = ROLLOUT_GENERATION[cfg.rl.rollout_engine](cfg.rl, ["<vision marker token ids>"])
    fields["generation_kwargs"] = extra or None
    header = (
        f"# TRL GRPOConfig built for train.engine=trl ({world_size()} process(es)): every field mr1 sets; "
        "the others are TRL's defaults.\n# rl.sampler and rl.shared_prompt_forward are mr1-engine settings "
        "that TRL does not read.\n"
    )
    return header + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True, width=110)
