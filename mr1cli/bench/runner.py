"""`mr1 bench`: mr1's GRPO-D step against TRL's GRPOTrainer on identical work, and eval throughput.

`bench_grpo` builds both trainers on the same checkpoint folder and the same examples, then runs
TRL's own training loop with a callback that runs mr1's step k right after TRL's step k, so the two
alternate in one process (same machine state, same thread pool). The first `warmup` steps of each are
not counted. What is held equal (see `bench_config` and `mr1cli.bench.trl`):
- weights, data and order: one checkpoint folder; both take step k's prompts from mr1's data order;
- G, prompts per step, micro-batch, sampling settings, and a FIXED completion length: mr1 with
  `rl.min_completion_length = rl.max_completion_length`, TRL with `min_new_tokens` equal to
  `max_completion_length`, so neither stops a rollout at EOS and every step generates exactly
  prompts × G × length tokens (checked, and reported);
- β: GRPO-D's schedule with β_min = β_max, so β(s) is constant and equals TRL's `beta` (β(s) is a
  scalar per step, so its shape never changes the cost; both load and run a reference model);
- the loss (clipped ratio, k3 KL, per-completion mean then batch mean), AdamW and its settings,
  constant LR, gradient clipping, the model's dtype; every step does its update (mr1's skip of
  all-zero-advantage steps is off).
"""

from __future__ import annotations

import importlib.util
import logging
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mr1cli.bench.measure import MemoryMeter, now, synchronize
from mr1cli.bench.report import environment, write_eval_report, write_grpo_report
from mr1cli.bench.summary import assemble, mr1_record
from mr1cli.config import RunConfig
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import schedule_from_settings
from mr1cli.core.registry import Registry
from mr1cli.data.for_config import load_examples
from mr1cli.evaluation.evaluate import evaluate_model
from mr1cli.models.loading import load_for_config
from mr1cli.training.recipes.grpo import GRPORecipe
from mr1cli.training.steps import step_indices
from mr1cli.zoo.builds import resolve_model

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path("results/bench")


@dataclass(frozen=True)
class BenchProfile:
    """Which run config a bench profile measures, which model it uses, and whether it needs a GPU."""

    description: str
    config_profile: str
    default_model: str
    overrides: tuple[str, ...]
    needs_gpu: bool
    eval_model: str | None = None  # what `mr1 bench eval` measures, if not default_model


BENCH_PROFILES: Registry[BenchProfile] = Registry("bench profile")
BENCH_PROFILES.add(
    "tiny",
    BenchProfile(
        "the tiny profile's GRPO-D counting run cut to one micro-batch of 8 prompts per step (× G=8, "
        "112 tokens) on CPU, untrained tiny model",
        "tiny",
        "tiny",
        ("train.eval_every=0", "train.prompts_per_step=8", "train.micro_batch=8"),
        needs_gpu=False,
        eval_model="tiny-base",  # evaluation is measured on the model the tiny profile evaluates
    ),
)
BENCH_PROFILES.add(
    "paper-shaped",
    BenchProfile(
        "the paper's GRPO-D settings (G=8, 512 tokens, bf16, gradient checkpointing) on a random-weight "
        "Qwen2-VL-2B-shaped model, 2 prompts per step, synthetic 448-px counting scenes",
        "paper",
        "paper-shaped",
        (
            "data.train=synthetic:counting-train-400",
            "data.test=synthetic:counting-test-200",
            "data.image_root=",
            "data.synthetic_image_size=448",
            "train.prompts_per_step=2",
            "train.micro_batch=2",
            "train.eval_every=0",
            "train.save_every=0",
        ),
        needs_gpu=True,
    ),
)


def bench_config(profile: str, total_steps: int, model: str | None = None, overrides: Sequence[str] = ()):
    """The run config both trainers are given: the profile's GRPO-D counting config, fixed length, flat β."""
    spec = BENCH_PROFILES.get(profile)
    base = [*spec.overrides, f"model.name_or_path={model or spec.default_model}", *overrides]
    cfg = load_config(method="grpo-d", task="counting", profile=spec.config_profile, overrides=base)
    beta = cfg.rl.kl["beta_min"]
    fixed = [
        f"rl.min_completion_length={cfg.rl.max_completion_length}",  # no early stop at EOS
        "rl.kl.name=constant",  # β(s) ≡ GRPO-D's β_min, held flat to match TRL's constant β
        f"rl.kl.beta={beta}",
        "rl.skip_zero_advantage_steps=false",
        "data.probe_size=0",  # TRL has no held-out probe: time the training steps alone
        f"train.max_steps={total_steps}",
        "train.lr_scheduler=constant",
        "train.warmup_ratio=0",
    ]
    return load_config(
        method="grpo-d", task="counting", profile=spec.config_profile, overrides=[*base, *fixed]
    )


def prepare_model(cfg: RunConfig) -> str:
    """The checkpoint folder to benchmark (a built-in name such as `paper-shaped` is built once)."""
    return resolve_model(cfg.model.name_or_path, cfg)


def _device(profile: BenchProfile) -> torch.device:
    if profile.needs_gpu and not torch.cuda.is_available():
        raise ConfigError("this bench profile needs a CUDA GPU (none is visible); try --profile tiny")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bench_grpo(
    profile: str = "tiny",
    steps: int = 5,
    warmup: int = 2,
    *,
    model: str | None = None,
    overrides: Sequence[str] = (),
    out_dir: Path | None = DEFAULT_OUT,
    bandwidth_gbps: float | None = None,
) -> dict[str, Any]:
    """Time mr1's and TRL's GRPO steps, alternating, on identical work; write <out_dir>/<profile>.json/.md."""
    from accelerate import Accelerator

    from mr1cli.bench.trl import run_trl

    if steps < 1 or warmup < 0:
        raise ConfigError("bench needs --steps >= 1 and warm-up >= 0")
    spec = BENCH_PROFILES.get(profile)
    device = _device(spec)
    missing = [name for name in ("trl", "psutil") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"`mr1 bench grpo` needs {' and '.join(missing)}: run `make setup-bench` (pip install -e '.[bench]')"
        )
    total = warmup + steps
    cfg = bench_config(profile, total, model, overrides)
    if cfg.train.prompts_per_step != cfg.train.micro_batch:
        # accelerate's gradient-accumulation count is process-wide state that TRL's Trainer sets; with
        # one micro-batch per step it is 1 for both trainers.
        raise ConfigError(
            "the bench runs one micro-batch per step: set train.micro_batch = train.prompts_per_step"
        )
    model_path = prepare_model(cfg)
    examples = load_examples(cfg, "train")
    plan = [step_indices(len(examples), s, cfg.train.prompts_per_step, cfg.train.seed) for s in range(total)]
    beta = schedule_from_settings(cfg.rl.kl)(0, total)
    meter = MemoryMeter(device)
    logger.info("bench %s: loading both trainers from %s on %s", profile, model_path, device)
    recipe = GRPORecipe(cfg, examples, model_path, model_path, total, Accelerator(cpu=device.type == "cpu"))
    m = cfg.model
    trl_policy = load_for_config(model_path, m, device=str(device))  # float32 master weights, as mr1's
    mr1_records: list[dict[str, float]] = []

    def mr1_step(step: int, trl_record: dict[str, float]) -> None:
        synchronize(device)
        meter.begin()
        started = now()
        metrics = recipe.train_step(step, plan[step])
        synchronize(device)
        elapsed = now() - started
        mr1_records.append(mr1_record(metrics, elapsed, meter.end()))
        logger.info(
            "step %d/%d%s: TRL %.2f s, mr1 %.2f s",
            step + 1,
            total,
            " (warm-up)" if step < warmup else "",
            trl_record["step_s"],
            elapsed,
        )

    trl_records = run_trl(
        cfg,
        examples,
        plan,
        model=trl_policy.model,
        processor=trl_policy.processor,
        beta=beta,
        device=device,
        meter=meter,
        between_steps=mr1_step,
    )
    result = assemble(
        profile, spec, cfg, device, model_path, recipe, mr1_records, trl_records, warmup, beta, bandwidth_gbps
    )
    if out_dir is not None:
        result["written"] = [str(p) for p in write_grpo_report(result, Path(out_dir))]
    return result


def bench_eval(
    profile: str = "tiny",
    *,
    model: str | None = None,
    limit: int = 0,
    overrides: Sequence[str] = (),
    out_dir: Path | None = DEFAULT_OUT,
) -> dict[str, Any]:
    """Greedy evaluation throughput (examples/s, tokens/s) of `evaluate_model` on the profile's test set."""
    spec = BENCH_PROFILES.get(profile)
    device = _device(spec)
    limits = [f"data.test_limit={limit}"] if limit else []
    cfg = bench_config(profile, 1, model or spec.eval_model, [*overrides, *limits])
    model_path = prepare_model(cfg)
    m, e = cfg.model, cfg.eval
    loaded = load_for_config(model_path, m, device=str(device), trainable=False)
    examples = load_examples(cfg, "test")

    def run(batch: Sequence) -> tuple[float, Any]:
        synchronize(device)
        started = now()
        result = evaluate_model(loaded.model, loaded.processor, batch, cfg)
        synchronize(device)
        return now() - started, result

    run(examples[: e.batch_size])  # warm-up batch, not counted
    elapsed, result = run(examples)
    tokens = sum(p["length"] for p in result.predictions)
    report = {
        "profile": profile,
        "environment": environment(device),
        "model": model_path,
        "settings": {
            "examples": len(examples),
            "batch_size": e.batch_size,
            "max_new_tokens": e.max_new_tokens or None,
            "decoding": "greedy, stops at EOS",
        },
        "seconds": elapsed,
        "examples_per_s": len(examples) / elapsed,
        "generated_tokens": tokens,
        "tokens_per_s": tokens / elapsed,
        "accuracy": result.summary["accuracy"],
        "python": platform.python_version(),
    }
    if out_dir is not None:
        report["written"] = [str(p) for p in write_eval_report(report, Path(out_dir))]
    return report
