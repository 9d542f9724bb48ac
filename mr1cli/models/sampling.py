"""A lean KV-cached sampler for GRPO rollouts: the same distribution as `model.generate`, less work.

What it saves over `transformers`' `generate(num_return_sequences=G)` (which `batching.generate`
wraps and which stays the reference implementation, see tests/integration/test_sampling.py):
- the prompt (vision tower included) is prefilled ONCE per prompt, and its KV cache is then
  repeated G times, instead of prefilling B·G copies of each prompt and image;
- each decode step is one text-model forward on the new tokens plus a few tensor ops for sampling
  (temperature → top-k → top-p, as transformers applies them; vision markers suppressed; EOS masked
  until `min_new_tokens`), without generate's per-step input preparation and processor objects, and
  the token is drawn by inverse CDF (one random number per sequence, where `torch.multinomial` draws
  one per vocabulary entry), from a generator of its prompt's own when `Decoding.prompt_seeds` is set:
  then how prompts are batched (rl.rollout_batch, the number of processes) does not change the draws;
- it stops as soon as every sequence has produced an end-of-sequence token — on every process when
  the model is sharded (FSDP), where each forward is a collective (`batching.in_lockstep`).

Positions follow Qwen2-VL's M-RoPE: the prefill computes 3-D positions and `rope_deltas` from the
image grid; every generated (text) token then sits at text position + rope_delta on all three axes,
exactly as `Qwen2VLForConditionalGeneration._prepare_position_ids_for_generation` places it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mr1cli.models.batching import (
    Decoding,
    all_finished,
    cut_after_eos,
    eos_token_ids,
    forbidden_token_ids,
    in_lockstep,
)
from mr1cli.models.lora import base_model
from mr1cli.models.shared_prompt import PROMPT_KEYS


def filter_logits(logits: Tensor, *, temperature: float, top_k: int, top_p: float) -> Tensor:
    """Temperature, then top-k, then nucleus (top-p) filtering, as transformers' warpers do.

    >>> filter_logits(torch.tensor([[1.0, 3.0, 2.0]]), temperature=1.0, top_k=2, top_p=1.0)
    tensor([[-inf, 3., 2.]])
    """
    logits = logits / temperature  # [N, V]
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # [N, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_index = torch.sort(logits, descending=False)  # [N, V] ascending
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # [N, V]
        remove_sorted = cumulative <= (1 - top_p)
        remove_sorted[..., -1:] = False  # keep at least the most likely token
        remove = remove_sorted.scatter(1, sorted_index, remove_sorted)  # [N, V] back in vocabulary order
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


def draw(probs: Tensor, uniform: Tensor) -> Tensor:
    """One token per row from `probs` [N, V] by inverse CDF, given one uniform number in [0, 1) per
    row [N]: the distribution of `torch.multinomial(probs, 1)` with one random number per row.

    >>> draw(torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), torch.tensor([0.3, 0.7])).tolist()
    [1, 2]
    """
    cdf = probs.cumsum(dim=-1)  # [N, V]
    target = uniform.to(cdf)[:, None] * cdf[:, -1:]  # [N, 1]
    index = torch.searchsorted(cdf, target, right=True).squeeze(1)  # [N] first entry with cdf > target
    return torch.where(index < probs.shape[-1], index, probs.argmax(dim=-1))  # float edge target == total


def uniforms(prompt_seeds: tuple[int, ...], group: int, rows: int, steps: int) -> Tensor:
    """[rows, steps] uniform numbers, one per sequence and decoding step: each prompt's G rows from a
    generator seeded with its own seed, or (no seeds) from torch's global generator.

    >>> first = uniforms((7, 8), group=2, rows=4, steps=3)
    >>> torch.equal(first[2:], uniforms((8,), group=2, rows=2, steps=3))
    True
    """
    if not prompt_seeds:
        return torch.rand(rows, steps)
    if len(prompt_seeds) * group != rows:
        raise ValueError(f"{len(prompt_seeds)} prompt seeds for {rows} sequences in groups of {group}")
    return torch.cat(
        [torch.rand(group, steps, generator=torch.Generator().manual_seed(seed)) for seed in prompt_seeds]
    )  # [rows, steps]


@torch.no_grad()
def sample_completions(
    model: Any,
    processor: Any,
    prompt_batch: dict[str, Tensor],
    decoding: Decoding,
    *,
    return_log_probs: bool = False,
) -> list[list[int]] | tuple[list[list[int]], Tensor]:
    """G sampled completions per prompt, prompt-major (p0g0 … p0gG-1, p1g0 …), each cut after its
    first end-of-sequence token (kept) — the contract of `batching.generate(do_sample=True)`.

    With `return_log_probs`, also the [N, steps] log-probabilities of the sampled tokens under the
    model at `temperature` (before suppression and filtering), for checking against a teacher-forced
    forward.
    """
    device = next(model.parameters()).device
    eos = torch.tensor(eos_token_ids(model, processor), device=device)
    suppress = forbidden_token_ids(processor)
    pad_id = processor.tokenizer.pad_token_id
    group = decoding.num_return_sequences
    temperature, top_p, top_k = decoding.temperature, decoding.top_p, decoding.top_k
    max_new_tokens, min_new_tokens = decoding.max_new_tokens, decoding.min_new_tokens
    was_training = model.training
    lockstep = in_lockstep(model)
    model.eval()
    try:
        inputs = {key: value.to(device) for key, value in prompt_batch.items() if key in PROMPT_KEYS}
        out = model(**inputs, use_cache=True, logits_to_keep=1)  # prefill: B prompts, vision once each
        cache = out.cache
        cache.batch_repeat_interleave(group)  # [B·G, heads, P, d] per layer
        rope_deltas = base_model(model).model.rope_deltas.repeat_interleave(group, dim=0)  # [N, 1]
        attention_mask = inputs["attention_mask"].repeat_interleave(group, dim=0)  # [N, P]
        logits = out.logits[:, -1].float().repeat_interleave(group, dim=0)  # [N, V]
        n = logits.shape[0]
        uniform = uniforms(decoding.prompt_seeds, group, n, max_new_tokens).to(device)  # [N, steps]
        finished = torch.zeros(n, dtype=torch.bool, device=device)  # [N]
        tokens, picked = [], []
        for step in range(max_new_tokens):
            if return_log_probs:
                log_probs = torch.log_softmax(logits / temperature, dim=-1)  # [N, V] the model's own
            logits[:, suppress] = float("-inf")
            if step < min_new_tokens:
                logits[:, eos] = float("-inf")  # no end-of-sequence before min_new_tokens
            probs = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p).softmax(-1)
            next_token = draw(probs, uniform[:, step])  # [N]
            if return_log_probs:
                picked.append(log_probs.gather(1, next_token[:, None]).squeeze(1))  # [N]
            next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)  # [N]
            tokens.append(next_token)
            finished |= torch.isin(next_token, eos)
            if step == max_new_tokens - 1 or all_finished(finished, lockstep):
                break
            attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
            text_position = attention_mask.sum(dim=1, keepdim=True) - 1  # [N, 1] index of the new token
            out = model(
                input_ids=next_token[:, None],
                attention_mask=attention_mask,
                position_ids=text_position + rope_deltas,  # [N, 1], the same on all three M-RoPE axes
                cache=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1].float()  # [N, V]
    finally:
        model.train(was_training)
    generated = torch.stack(tokens, dim=1)  # [N, steps]
    eos_list = eos.tolist()
    completions = [cut_after_eos(row, eos_list) for row in generated.tolist()]
    if not return_log_probs:
        return completions
    return completions, torch.stack(picked, dim=1)  # [N, steps]
