"""Log-probs of G completions per prompt with the prompt (and its image) computed once, not G times.

`batching.sequence_log_probs` runs the model over all N = B·G full sequences: each prompt, vision
tower included, is recomputed for every one of its G completions. Attention is causal, so a prompt's
hidden states do not depend on what follows it; this module runs the B prompts once with a KV cache,
repeats the cache G times, and runs only the completion tokens against it. The log-probs (and so the
loss and its gradient, which flows back through the shared prompt states) are those of the simple
path up to float rounding; tests/integration/test_sampling.py compares them.

Requirements, checked by the caller: rows laid out prompt-major in runs of G identical prompts (as
`append_completions` builds them), a model that is not wrapped for distributed training, and no
gradient checkpointing when gradients are needed (it drops the KV cache).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mr1cli.core.grpo_loss import token_log_probs
from mr1cli.models.lora import base_model

# The processor outputs that make up a prompt (text, image patches and their grid).
PROMPT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")


def first_completion_column(full_batch: dict[str, Tensor]) -> int:
    """P: the column where every completion starts (prompts are left-padded to one width).

    >>> first_completion_column({"completion_mask": torch.tensor([[0, 0, 1, 1], [0, 0, 1, 0]])})
    2
    """
    columns = full_batch["completion_mask"].any(dim=0).nonzero()
    if not len(columns):
        raise ValueError("the batch has no completion tokens")
    return int(columns[0])


def prompt_rows(full_batch: dict[str, Tensor], num_generations: int, width: int) -> dict[str, Tensor]:
    """The B distinct prompts (first row of each run of G) with one copy of each image."""
    rows = {key: full_batch[key][::num_generations, :width] for key in ("input_ids", "attention_mask")}
    if "mm_token_type_ids" in full_batch:
        rows["mm_token_type_ids"] = full_batch["mm_token_type_ids"][::num_generations, :width]
    if "pixel_values" in full_batch:
        grid = full_batch["image_grid_thw"]  # [N, 3], image-major runs of G copies
        blocks = full_batch["pixel_values"].split(grid.prod(dim=-1).tolist(), dim=0)
        rows["pixel_values"] = torch.cat(blocks[::num_generations], dim=0)  # [patches of B images, D]
        rows["image_grid_thw"] = grid[::num_generations]  # [B, 3]
    return rows


def grouped_log_probs(
    model: Any, full_batch: dict[str, Tensor], *, num_generations: int, temperature: float = 1.0
) -> Tensor:
    """The [N, S-1] log-probs of `sequence_log_probs` (prompt positions 0), prompts computed once."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in full_batch.items() if k in (*PROMPT_KEYS, "completion_mask")}
    input_ids = batch["input_ids"]  # [N, S]
    n, seq_len = input_ids.shape
    if n % num_generations:
        raise ValueError(f"{n} sequences do not split into groups of {num_generations}")
    width = first_completion_column(batch)  # P
    prompt = model(**prompt_rows(batch, num_generations, width), use_cache=True, logits_to_keep=1)
    cache = prompt.cache
    cache.batch_repeat_interleave(num_generations)  # [N, heads, P, d] per layer, differentiable
    rope_deltas = base_model(model).model.rope_deltas.repeat_interleave(
        num_generations, dim=0
    )  # [N, 1] M-RoPE offset
    attention_mask = batch["attention_mask"]  # [N, S]
    text_position = attention_mask.long().cumsum(dim=-1) - 1  # [N, S] index among the real tokens
    completion = model(
        input_ids=input_ids[:, width:],  # [N, C]
        attention_mask=attention_mask,
        position_ids=text_position[:, width:] + rope_deltas,  # [N, C], the same on all three M-RoPE axes
        cache=cache,
        use_cache=True,
    )
    first = prompt.logits[:, -1:].repeat_interleave(num_generations, dim=0)  # [N, 1, V] predicts token P
    logits = torch.cat([first, completion.logits[:, :-1]], dim=1)  # [N, C, V] predicts tokens P … S-1
    picked = token_log_probs(logits.float() / temperature, input_ids[:, width:])  # [N, C]
    out = picked.new_zeros((n, seq_len - 1))  # [N, S-1]
    out[:, width - 1 :] = picked
    return out
