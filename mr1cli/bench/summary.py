"""`mr1 bench grpo` results: per-step records → per-trainer summaries, the ratio and the roofline."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch

from mr1cli.bench.measure import (
    decode_roofline,
    decoder_weight_bytes,
    device_bandwidth_gbps,
    kv_bytes_per_token,
    speedup,
    time_stats,
)
from mr1cli.bench.report import device_name, environment
from mr1cli.config import RunConfig
from mr1cli.models.batching import chat_prompt, encode_prompts
from mr1cli.tasks import get_task

PHASES = ("generation", "reference", "update", "other")


def mr1_record(metrics: dict[str, float], elapsed: float, memory: dict[str, int]) -> dict[str, float]:
    phases = {f"{p}_s": metrics[f"perf/{p}_s"] for p in ("generation", "reference", "update")}
    return {
        "step_s": elapsed,
        **phases,
        "other_s": elapsed - sum(phases.values()),
        "tokens": metrics["completion/tokens"],
        "skipped": metrics.get("train/skipped", 0.0),
        **memory,
    }


def summarize_trainer(records: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Step-time stats, throughput, the phase split and peak memory of one trainer's measured steps.

    >>> r = [{"step_s": 2.0, "generation_s": 1.0, "reference_s": 0.5, "update_s": 0.4, "other_s": 0.1,
    ...       "tokens": 100, "start_bytes": 10, "peak_bytes": 30}] * 2
    >>> s = summarize_trainer(r)
    >>> s["step_s"]["median"], s["tokens_per_s"], s["gen_tokens_per_s"], s["split"]["generation"]["fraction"]
    (2.0, 50.0, 100.0, 0.5)
    """
    step_s = [r["step_s"] for r in records]
    tokens = sum(r["tokens"] for r in records)
    split = {}
    for phase in PHASES:
        values = [r[f"{phase}_s"] for r in records]
        split[phase] = {"median_s": statistics.median(values), "fraction": sum(values) / sum(step_s)}
    return {
        "step_s": time_stats(step_s),
        "steps": [round(v, 4) for v in step_s],
        "tokens_per_step": sorted({int(r["tokens"]) for r in records}),
        "tokens_per_s": tokens / sum(step_s),
        "gen_tokens_per_s": tokens / max(sum(r["generation_s"] for r in records), 1e-12),
        "split": split,
        "peak_memory_bytes": max(r["peak_bytes"] for r in records),
        "peak_memory_above_step_start_bytes": max(r["peak_bytes"] - r["start_bytes"] for r in records),
    }


def assemble(profile, spec, cfg, device, model_path, recipe, mr1_records, trl_records, warmup, beta, bw):
    rl, train = cfg.rl, cfg.train
    mr1, trl = mr1_records[warmup:], trl_records[warmup:]
    expected_tokens = train.prompts_per_step * rl.num_generations * rl.max_completion_length
    trainers = {"mr1": summarize_trainer(mr1), "trl": summarize_trainer(trl)}
    policy = recipe.accelerator.unwrap_model(recipe.model)
    return {
        "profile": profile,
        "description": spec.description,
        "environment": environment(device),
        "model": model_path,
        "settings": {
            "method": cfg.method,
            "task": cfg.task,
            "prompts_per_step": train.prompts_per_step,
            "micro_batch": train.micro_batch,
            "num_generations": rl.num_generations,
            "completion_length": rl.max_completion_length,
            "beta": beta,
            "learning_rate": train.learning_rate,
            "dtype": str(recipe.precision.compute).replace("torch.", ""),  # compute; master weights float32
            "gradient_checkpointing": cfg.model.gradient_checkpointing,
            "mr1_sampler": rl.sampler,
            "mr1_shared_prompt_forward": rl.shared_prompt_forward,
            "mr1_update_shares_prompts": rl.shared_prompt_forward and recipe._can_share_with_grad(),
            "warmup_steps": warmup,
            "measured_steps": len(mr1),
        },
        "fixed_length": {
            "expected_tokens_per_step": expected_tokens,
            "ok": all(
                t == [expected_tokens]
                for t in (trainers["mr1"]["tokens_per_step"], trainers["trl"]["tokens_per_step"])
            ),
            "how": "mr1: rl.min_completion_length = rl.max_completion_length; TRL: "
            "generation_kwargs min_new_tokens = max_completion_length (EOS cannot end a rollout early)",
        },
        "mr1_skipped_updates": int(sum(r["skipped"] for r in mr1)),
        "trainers": trainers,
        "speedup": speedup([r["step_s"] for r in mr1], [r["step_s"] for r in trl]),
        "roofline": roofline_report(policy, cfg, device, trainers, recipe, bw),
    }


def roofline_report(policy, cfg: RunConfig, device: torch.device, trainers, recipe, bandwidth_gbps) -> dict:
    """Decoding bound (weights + KV read per step, at the mean context) against measured generation."""
    rl = cfg.rl
    dtype_bytes = recipe.precision.compute.itemsize  # decoding reads the compute-dtype copies
    weight_bytes = decoder_weight_bytes(policy, dtype_bytes)
    batch = cfg.train.micro_batch * rl.num_generations  # sequences decoded together (both trainers)
    prompt_tokens = _mean_prompt_tokens(recipe, cfg)
    context = prompt_tokens + rl.max_completion_length / 2
    kv = kv_bytes_per_token(policy.config.get_text_config(), dtype_bytes)
    report: dict[str, Any] = {
        "decoder_weight_bytes": weight_bytes,
        "kv_bytes_per_token": kv,
        "mean_context_tokens": context,
        "decode_batch": batch,
        "bandwidth_gbps": bandwidth_gbps or device_bandwidth_gbps(device_name(device)),
    }
    if report["bandwidth_gbps"] is None:
        report["note"] = "no memory bandwidth known for this device (pass bandwidth_gbps): no bound computed"
        return report
    bound = decode_roofline(
        weight_bytes=weight_bytes,
        bandwidth_bytes_per_s=report["bandwidth_gbps"] * 1e9,
        batch=batch,
        kv_bytes_per_token=kv,
        mean_context=context,
    )
    report["bound_tokens_per_s"] = bound.tokens_per_s
    for name, summary in trainers.items():
        report[f"{name}_fraction_of_bound"] = summary["gen_tokens_per_s"] / bound.tokens_per_s
    return report


def _mean_prompt_tokens(recipe, cfg: RunConfig) -> float:
    task, m = get_task(cfg.task), cfg.model
    sample = recipe.examples[: cfg.train.micro_batch]
    prompts = [chat_prompt(recipe.processor, task.train_prompt(ex.question)) for ex in sample]
    images = [ex.load_image(max_pixels=m.max_pixels, min_pixels=m.min_pixels) for ex in sample]
    return float(
        encode_prompts(recipe.processor, prompts, images)["attention_mask"].sum(dim=1).float().mean()
    )
