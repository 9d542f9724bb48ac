"""`mr1 eval --samples K`: K completions per example at the RL sampling settings, beside greedy.

The samples use the rollout sampler (`rl.sampler`) with `rl.temperature`, `rl.top_p` and `rl.top_k`
and the evaluation's token cap. The mr1 sampler draws each example's completions from that
example's own seed (the sample seed and its position), the transformers sampler from the batch's;
a rerun with the same settings (`eval.batch_size` included: batching changes float rounding) draws
the same completions. Scoring and the statistics (pass@k, majority@k, mean sampled accuracy) are in
`core/sampled_stats.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mr1cli.config import RunConfig
from mr1cli.core.sampled_stats import Sampling, majority_vote, sampled_summary
from mr1cli.core.task import SCORING_MODES
from mr1cli.models.batching import Decoding
from mr1cli.models.samplers import SAMPLERS
from mr1cli.tasks import get_task

__all__ = ["Sampling", "batch_seed", "draw_samples", "score_samples"]


def batch_seed(seed: int, first_example: int) -> int:
    """The RNG seed of the batch that starts at example `first_example`.

    >>> batch_seed(0, 0), batch_seed(0, 32), batch_seed(1, 0)
    (0, 32, 1000003)
    """
    return (seed * 1_000_003 + first_example) % (2**63 - 1)


def draw_samples(
    model: Any,
    processor: Any,
    prompt_batch: dict,
    cfg: RunConfig,
    sampling: Sampling,
    *,
    max_new_tokens: int,
    first_example: int,
) -> list[list[int]]:
    """`sampling.k` completions per prompt (prompt-major), without touching the global RNG state."""
    rl = cfg.rl
    decoding = Decoding(
        max_new_tokens=max_new_tokens,
        do_sample=True,
        num_return_sequences=sampling.k,
        temperature=rl.temperature,
        top_p=rl.top_p,
        top_k=rl.top_k,
        prompt_seeds=tuple(
            batch_seed(sampling.seed, first_example + i) for i in range(len(prompt_batch["input_ids"]))
        ),
    )
    device = next(model.parameters()).device
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(batch_seed(sampling.seed, first_example))
        return SAMPLERS.get(rl.sampler)(model, processor, prompt_batch, decoding)


def score_samples(rows: list[dict[str, Any]], task_name: str, scoring: str) -> dict[str, float]:
    """Score each row's `samples` (completion texts) in place and return the sampled statistics.

    Each row gets `samples` as [{completion, extracted_answer, correct, format}], `sampled_correct`
    (how many of K), `majority_answer` and `majority_correct`; rows without samples are left alone.
    """
    task = get_task(task_name)
    format_reward = SCORING_MODES.get(scoring).format
    per_example: list[list[bool]] = []
    majority: list[bool] = []
    formats: list[bool] = []
    for row in rows:
        texts: Sequence[str] = row.get("samples") or []
        if not texts or not isinstance(texts[0], str):
            continue
        scored = [
            {
                "completion": text,
                "extracted_answer": task.extract_answer(text, scoring),
                "correct": task.is_correct(text, row["truth"], scoring),
                "format": bool(format_reward(text)),
            }
            for text in texts
        ]
        flags = [s["correct"] for s in scored]
        answer, answer_correct = majority_vote([s["extracted_answer"] for s in scored], flags)
        row.update(
            samples=scored,
            sampled_correct=sum(flags),
            majority_answer=answer,
            majority_correct=answer_correct,
        )
        per_example.append(flags)
        majority.append(answer_correct)
        formats += [s["format"] for s in scored]
    if not per_example:
        return {}
    return {
        "sampled/k": len(per_example[0]),
        **sampled_summary(per_example, majority),
        "sampled/format_rate": round(100.0 * sum(formats) / len(formats), 4),
    }
