"""The TRL engine's configuration: engine selection and refusals, the GRPOConfig mapping pinned field by
field, the LR schedule against mr1's, the metric names, and the β TRL is built with."""

from __future__ import annotations

import doctest
from types import SimpleNamespace

import pytest
import torch

from mr1cli.cli import main
from mr1cli.config_loading import load_config
from mr1cli.core import engines
from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import schedule_from_settings
from mr1cli.training.engines import trl as trl_engine
from mr1cli.training.engines import trl_mapping
from mr1cli.training.engines.trl_mapping import grpo_config_kwargs
from mr1cli.training.steps import build_lr_scheduler
from mr1cli.zoo.builds import warmup_key

# What mr1 sets in TRL's GRPOConfig for the paper profile's GRPO-D on geometry, on 8 processes.
PAPER_GEOMETRY_ON_8_GPUS = {
    "output_dir": "out",
    "seed": 42,
    "max_steps": 500,
    "per_device_train_batch_size": 8,  # 1 prompt × G = 8 completions per forward
    "gradient_accumulation_steps": 2,  # 16 prompts per step = 1 × 8 processes × 2
    "num_generations": 8,
    "shuffle_dataset": False,
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": False,
    "learning_rate": 1e-6,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "optim": "adamw_torch",
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "bf16": False,
    "fp16": False,
    "activation_checkpointing": True,
    "activation_checkpointing_kwargs": {"use_reentrant": False},
    "disable_dropout": False,
    "beta": 0.02,
    "loss_type": "grpo",
    "scale_rewards": "group",
    "use_bias_correction_kl": False,
    "epsilon": 0.2,
    "epsilon_high": 0.2,
    "num_iterations": 1,
    "importance_sampling_level": "token",
    "mask_truncated_completions": False,
    "reward_weights": [1.0, 1.0],
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 50,
    "min_p": None,
    "repetition_penalty": 1.0,
    "max_completion_length": 512,
    "generation_kwargs": {"suppress_tokens": [7, 9]},
    "use_vllm": False,
    "remove_unused_columns": False,
    "logging_strategy": "steps",
    "logging_steps": 1,
    "save_strategy": "no",
    "save_total_limit": 2,
    "eval_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "log_completions": False,
}


def paper_kwargs(*overrides: str, processes: int = 8) -> dict:
    cfg = load_config(method="grpo-d", task="geometry", profile="paper", overrides=list(overrides))
    return grpo_config_kwargs(
        cfg, output_dir="out", total_steps=500, beta=0.02, num_processes=processes, forbidden_tokens=[7, 9]
    )


def test_paper_profile_grpo_config_field_by_field():
    assert paper_kwargs() == PAPER_GEOMETRY_ON_8_GPUS


def test_trl_accepts_every_mapped_field():
    pytest.importorskip("trl")
    cfg = load_config(method="grpo-d", task="geometry", profile="paper")
    args = trl_mapping.build_grpo_config(cfg, output_dir="out", total_steps=500, beta=0.02, num_processes=8)
    for key, value in PAPER_GEOMETRY_ON_8_GPUS.items():
        if key in ("generation_kwargs", "report_to", "output_dir"):
            continue
        got = getattr(args, key)
        assert (getattr(got, "value", got)) == value, key
    assert args.gradient_checkpointing is True and args.bf16 is False and args.report_to == []
    assert args.generation_kwargs is None and args.beta == 0.02  # no vision ids given, no min length


def test_tiny_profile_mapping():
    cfg = load_config(method="grpo-d", task="counting", profile="tiny")
    kwargs = grpo_config_kwargs(cfg, output_dir="o", total_steps=40, beta=0.1)
    # 32 prompts × G = 8 per step in micro-batches of 16 prompts: 128 completions, accumulated twice
    assert (kwargs["per_device_train_batch_size"], kwargs["gradient_accumulation_steps"]) == (128, 2)
    assert (kwargs["learning_rate"], kwargs["lr_scheduler_type"], kwargs["top_k"]) == (
        1e-4,
        "constant_with_warmup",
        0,
    )
    assert kwargs["max_completion_length"] == 112 and kwargs["activation_checkpointing"] is False
    assert kwargs["warmup_steps"] == 4  # documents it; the trainer steps mr1's schedule (create_scheduler)


def test_loss_aggregation_vllm_and_fixed_length_mapping():
    assert paper_kwargs("rl.loss_aggregation=token_mean")["loss_type"] == "bnpo"
    vllm = paper_kwargs(
        "train.engine=trl",
        "rl.rollout_engine=vllm",
        "rl.vllm_gpu_memory_utilization=0.5",
        "rl.vllm_sleep_mode=true",
        "rl.min_completion_length=512",
    )
    assert {k: vllm[k] for k in vllm if k.startswith(("vllm_", "use_vllm", "generation_kwargs"))} == {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": 0.5,
        "vllm_enable_sleep_mode": True,
        "vllm_max_model_length": 1024 + 512,  # rl.max_prompt_length + rl.max_completion_length
        "vllm_tensor_parallel_size": 1,
        "vllm_importance_sampling_correction": False,
        "generation_kwargs": {"min_tokens": 512},
    }
    hf = paper_kwargs("rl.min_completion_length=512")["generation_kwargs"]
    assert hf == {"suppress_tokens": [7, 9], "min_new_tokens": 512}


def test_uneven_batches_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"multiple of train.micro_batch × processes = 1 × 3"):
        paper_kwargs(processes=3)


@pytest.mark.parametrize("name", ["constant", "linear", "cosine"])
@pytest.mark.parametrize("warmup_ratio", [0.0, 0.1])
def test_lr_schedule_equals_mr1s_at_every_step(name, warmup_ratio):
    """The TRL engine's trainer steps at mr1's learning rate at every step, warm-up included. Without
    warm-up, transformers' own schedule by the mapped name agrees too; with it, it does not (its ramp
    is s/w from 0, mr1's (s+1)/(w+1)), which is why the trainer builds mr1's."""
    pytest.importorskip("trl")
    from transformers import get_scheduler

    from mr1cli.training.engines.trl_trainer import Mr1GRPOTrainer

    overrides = [f"train.lr_scheduler={name}", f"train.warmup_ratio={warmup_ratio}"]
    cfg = load_config(method="grpo", task="counting", overrides=overrides)
    steps = 37

    def lrs(make) -> list[float]:
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
        scheduler = make(optimizer)
        values = []
        for _ in range(steps):
            values.append(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
        return values

    def trl_engine(optimizer):
        trainer = SimpleNamespace(lr_scheduler=None, optimizer=optimizer, mr1_config=cfg)
        return Mr1GRPOTrainer.create_scheduler(trainer, steps)

    ours = lrs(lambda o: build_lr_scheduler(o, cfg.train, steps))
    assert lrs(trl_engine) == ours
    warmup = int(warmup_ratio * steps)
    hf_name = trl_mapping.LR_SCHEDULERS[name]
    hf = lrs(lambda o: get_scheduler(hf_name, o, num_warmup_steps=warmup, num_training_steps=steps))
    assert (hf == pytest.approx(ours, rel=1e-12, abs=1e-18)) == (warmup == 0)
    assert warmup == 0 or (hf[0], ours[0]) == (0.0, pytest.approx(1e-4 / (warmup + 1)))


@pytest.mark.parametrize(
    ("method", "overrides", "message"),
    [
        ("sft", ["train.engine=trl"], "train.engine=trl does not train method 'sft'"),
        ("grpo", ["rl.rollout_engine=vllm"], "rl.rollout_engine=vllm needs train.engine=trl"),
        ("grpo", ["train.engine=trl", "train.report_to=[tensorboard]"], "train.report_to is not supported"),
        ("grpo", ["train.engine=trl", "rl.num_iterations=2"], "rl.num_iterations > 1 is not supported"),
        ("grpo", ["train.engine=trll"], "unknown training engine 'trll' (did you mean 'trl'?)"),
        ("grpo", ["train.engine=trl", "rl.rollout_engine=vlm"], "unknown rollout engine 'vlm'"),
        ("grpo", ["rl.vllm_gpu_memory_utilization=0"], "rl.vllm_gpu_memory_utilization must be in (0, 1]"),
    ],
)
def test_engine_mistakes_are_one_line_errors(method, overrides, message, capsys):
    argv = ["train", "--method", method, "--task", "counting", *overrides]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_engine_flag_is_the_config_key_and_enters_the_run_hash():
    plain = load_config(method="grpo-d", task="counting")
    trl = load_config(method="grpo-d", task="counting", overrides=["train.engine=trl"])
    assert plain.train.engine == "mr1" and trl.train.engine == "trl"
    assert plain.fingerprint() != trl.fingerprint()
    # the tiny base is an SFT warm-up, which always runs on mr1's engine: its cache key ignores the engine
    sft = load_config(method="sft", task="counting", profile="tiny-base")
    assert "engine" not in warmup_key(sft)["train"]
    assert engines.methods_of("trl", {"sft": "sft", "grpo": "grpo", "grpo-d": "grpo"}) == ["grpo", "grpo-d"]


def test_show_config_prints_the_trl_config(capsys):
    argv = ["train", "--method", "grpo-d", "--task", "geometry", "--profile", "paper", "--engine", "trl"]
    assert main([*argv, "--show-config"]) == 0
    out = capsys.readouterr().out
    trl_part = out[out.index("# TRL GRPOConfig") :]
    for line in (
        "loss_type: grpo",
        "use_bias_correction_kl: false",
        "top_k: 50",
        "lr_scheduler_type: linear",
    ):
        assert line in trl_part
    assert main([*argv[:-2], "--show-config"]) == 0  # mr1's engine: no TRL section
    assert "TRL GRPOConfig" not in capsys.readouterr().out


def test_initial_beta_loads_the_reference_whenever_beta_can_be_positive():
    from mr1cli.training.engines.trl import initial_beta

    geometry = load_config(method="grpo-d", task="geometry")  # Eq. 3 with β_min = 0, β_max = 0.02
    schedule = schedule_from_settings(geometry.rl.kl)
    assert schedule(12, 41) == 0.0 and initial_beta(geometry, 41) == pytest.approx(0.02)
    flat_zero = load_config(method="grpo", task="counting", overrides=["rl.kl.beta=0"])
    assert initial_beta(flat_zero, 41) == 0.0  # β ≡ 0: no reference model, as in mr1's engine


def test_mr1_metric_names_for_a_trl_step():
    from mr1cli.training.engines.trl_callbacks import step_row
    from mr1cli.training.engines.trl_trainer import StepRecord

    cfg = load_config(method="grpo-d", task="counting")
    logs = {
        "loss": 0.25,
        "reward": 1.5,
        "reward_std": 0.5,
        "rewards/accuracy/mean": 0.625,
        "rewards/format/mean": 0.875,
        "kl": 0.003,
        "grad_norm": 0.9,
        "learning_rate": 1e-4,
        "frac_reward_zero_std": 0.25,
        "completions/mean_length": 20.0,
    }
    record = StepRecord(beta=0.07, betas_used=[0.07], generation_s=2.0, generated_tokens=1280)
    row = step_row(logs, record, cfg)
    assert row["reward/accuracy"] == 0.625 and row["reward/format"] == 0.875 and row["reward/mean"] == 1.5
    assert row["kl/beta"] == 0.07 and row["kl/mean"] == 0.003 and row["loss/total"] == 0.25
    rollouts = cfg.train.prompts_per_step * cfg.rl.num_generations
    assert row["completion/tokens"] == 20.0 * rollouts and row["perf/gen_tokens_per_s"] == 640.0
    assert row["train/zero_adv_groups"] == 0.25 and row["train/skipped"] == 0.0
    skipped = step_row({"loss": 0.0, "reward": 0.0}, StepRecord(beta=0.05, skipped=True), cfg)
    assert skipped["kl/beta"] == 0.05 and skipped["train/skipped"] == 1.0 and skipped["kl/mean"] == 0.0
    with pytest.raises(Exception, match="different β"):
        step_row(logs, StepRecord(beta=0.07, betas_used=[0.07, 0.08]), cfg)


@pytest.mark.parametrize("module", [engines, trl_mapping, trl_engine])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0
