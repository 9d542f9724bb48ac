"""One GRPO-D step under `accelerate launch` with FSDP2 on 2 processes (tests/integration/test_sharded.py),
in which process 0's completions end after 3 tokens and process 1's run to rl.max_completion_length.

usage: accelerate launch --config_file FSDP2.yaml sharded_probe.py MODEL_DIR OUT_DIR [key=value ...]

A forward hook on the policy's LM head, active only while sampling (the model in eval mode), forces
the end-of-sequence token from the 3rd decoding step on process 0 and forbids it on process 1. Each
process writes OUT_DIR/rank<N>.json: its completion lengths, the step's metrics, and how much of the
policy and of the reference model it holds (1.0: a full copy; 0.5: half, sharded over 2 processes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mr1cli.config_loading import load_config
from mr1cli.data.for_config import load_examples
from mr1cli.models.batching import eos_token_ids
from mr1cli.training.distributed import make_accelerator
from mr1cli.training.recipes import RECIPES
from mr1cli.training.steps import shard, step_indices


def held_fraction(model: torch.nn.Module) -> float:
    """The share of the model's elements stored on this process (a DTensor keeps its local shard)."""
    local = sum(getattr(p, "to_local", lambda p=p: p)().numel() for p in model.parameters())
    return local / sum(p.numel() for p in model.parameters())


def force_lengths(head: torch.nn.Module, eos: list[int], rank: int, stop_at: int) -> None:
    calls = 0

    def hook(module, inputs, logits):
        nonlocal calls
        if module.training:  # the update's forward: untouched
            return logits
        calls += 1  # one call per decoding step: the prefill gives token 1
        logits = logits.clone()
        if rank == 0 and calls >= stop_at:
            logits[..., eos] = 1e4
        else:
            logits[..., eos] = -1e4
        return logits

    head.register_forward_hook(hook)


def main(model_dir: str, out: str, *overrides: str) -> None:
    cfg = load_config(
        method="grpo-d",
        task="counting",
        profile="tiny",
        overrides=[f"model.name_or_path={model_dir}", *overrides],
    )
    accelerator = make_accelerator()
    examples = load_examples(cfg, "train")
    recipe = RECIPES.get("grpo")(
        cfg, examples, policy_path=model_dir, base_path=model_dir, total_steps=1, accelerator=accelerator
    )
    rank = accelerator.process_index
    force_lengths(
        recipe.model.get_output_embeddings(), eos_token_ids(recipe.model, recipe.processor), rank, stop_at=3
    )
    lengths: list[float] = []
    rollout = recipe.rollout

    def recording(chunk, timings):
        result = rollout(chunk, timings)
        lengths.extend(result.lengths.tolist())
        return result

    recipe.rollout = recording
    indices = step_indices(len(examples), 0, cfg.train.prompts_per_step, cfg.train.seed)
    metrics = recipe.train_step(0, shard(indices, rank, accelerator.num_processes))
    report = {
        "lengths": lengths,
        "metrics": metrics,
        "policy_held": held_fraction(recipe.model),
        "reference_held": held_fraction(recipe.reference),
        "sharded": accelerator.distributed_type.value,
    }
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
