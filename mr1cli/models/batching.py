"""Prompt, rollout and training batches for Qwen2-VL-style models (used by SFT, GRPO and eval).

Layout conventions (shapes: B prompts, N = B·G sequences, P prompt width, C completion width):
- prompts are LEFT-padded (generation appends on the right), completions RIGHT-padded, so the
  completion of every row starts at the same column P;
- `completion_mask` [N, P+C] is 1 on completion tokens, including the <|im_end|> that ends a
  completion and excluding the padding after it;
- log-probs are [N, P+C-1]: position j holds log π(token j+1 | tokens ≤ j), so the loss uses
  `completion_mask[:, 1:]`;
- Qwen2-VL flattens the pixels of all images into one [patches, channels·patch²] tensor
  (`pixel_values`), with one (t, h, w) row per image in `image_grid_thw`; repeating a sample
  repeats its image's t·h·w rows, never single rows;
- transformers ≥ 5 also needs `mm_token_type_ids` (0 text, 1 image, 2 video) to place the
  M-RoPE positions; the processor returns it and every batch here carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from mr1cli.core.grpo_loss import token_log_probs
from mr1cli.models.shared_prompt import PROMPT_KEYS, grouped_log_probs

# Tokens a completion must never contain: they only mark where the processor put image features.
VISION_MARKER_TOKENS = (
    "<|image_pad|>",
    "<|video_pad|>",
    "<|vision_pad|>",
    "<|vision_start|>",
    "<|vision_end|>",
)
IGNORE_INDEX = -100
TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")  # [B, P] per-token prompt tensors


def chat_prompt(processor: Any, question_text: str) -> str:
    """The generation prompt for one image-then-text user turn, in the model's own chat template
    (for Qwen2-VL-Instruct that adds the default system message)."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question_text}]}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompts(processor: Any, prompts: list[str], images: list[Image.Image]) -> dict[str, Tensor]:
    """Tokenize prompts (one image each) LEFT-padded for generation, with their pixels."""
    if len(prompts) != len(images):
        raise ValueError(f"{len(prompts)} prompts but {len(images)} images (one image per prompt)")
    encoded = processor(text=prompts, images=images, padding=True, padding_side="left", return_tensors="pt")
    return {key: encoded[key] for key in PROMPT_KEYS if key in encoded}


def repeat_images(pixel_values: Tensor, image_grid_thw: Tensor, repeats: int) -> tuple[Tensor, Tensor]:
    """Repeat each image `repeats` times in place (image-major), whole patch blocks at a time.

    >>> pv = torch.arange(6.0).view(6, 1); grid = torch.tensor([[1, 2, 2], [1, 1, 2]])
    >>> rp, rg = repeat_images(pv, grid, 2)
    >>> rp.view(-1).tolist(), rg[:, 2].tolist()
    ([0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 5.0], [2, 2, 2, 2])
    """
    rows_per_image = image_grid_thw.prod(dim=-1).tolist()  # patches per image = t·h·w
    blocks = pixel_values.split(rows_per_image, dim=0)
    repeated = torch.cat([block for block in blocks for _ in range(repeats)], dim=0)  # [repeats·patches, D]
    return repeated, image_grid_thw.repeat_interleave(repeats, dim=0)  # [repeats·images, 3]


def split_prompts(prompt_batch: dict[str, Tensor]) -> list[dict[str, Tensor]]:
    """One batch per prompt of a left-padded prompt batch, its padding dropped, with its image's rows."""
    images: list[Tensor | None] = [None] * prompt_batch["input_ids"].shape[0]
    if "pixel_values" in prompt_batch:
        images = list(prompt_batch["pixel_values"].split(prompt_batch["image_grid_thw"].prod(-1).tolist()))
    singles = []
    for row, pixels in enumerate(images):
        keep = prompt_batch["attention_mask"][row].bool()  # [P] left padding → False
        single = {
            k: prompt_batch[k][row : row + 1, keep] for k in TOKEN_KEYS if k in prompt_batch
        }  # [1, P_i]
        if pixels is not None:
            single["pixel_values"] = pixels  # [patches of this image, D]
            single["image_grid_thw"] = prompt_batch["image_grid_thw"][row : row + 1]  # [1, 3]
        singles.append(single)
    return singles


def stack_prompts(prompts: list[dict[str, Tensor]], pad_id: int) -> dict[str, Tensor]:
    """Left-pad single prompts to the widest and stack them: the inverse of `split_prompts`.

    >>> one = {"input_ids": torch.tensor([[5, 6]]), "attention_mask": torch.tensor([[1, 1]])}
    >>> two = {"input_ids": torch.tensor([[7]]), "attention_mask": torch.tensor([[1]])}
    >>> stack_prompts([one, two], pad_id=0)["input_ids"].tolist()
    [[5, 6], [0, 7]]
    """
    width = max(p["input_ids"].shape[1] for p in prompts)
    fill = {"input_ids": pad_id, "attention_mask": 0, "mm_token_type_ids": 0}
    batch = {
        key: torch.cat(
            [torch.nn.functional.pad(p[key], (width - p[key].shape[1], 0), value=fill[key]) for p in prompts]
        )  # [B, P]
        for key in TOKEN_KEYS
        if key in prompts[0]
    }
    if "pixel_values" in prompts[0]:
        batch["pixel_values"] = torch.cat([p["pixel_values"] for p in prompts])  # [patches of B images, D]
        batch["image_grid_thw"] = torch.cat([p["image_grid_thw"] for p in prompts])  # [B, 3]
    return batch


def pad_right(sequences: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad token lists into ids [N, L] and a 0/1 mask [N, L].

    >>> pad_right([[5, 6], [7]], pad_id=0)
    (tensor([[5, 6],
            [7, 0]]), tensor([[1, 1],
            [1, 0]]))
    """
    width = max((len(seq) for seq in sequences), default=0)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def append_completions(
    prompt_batch: dict[str, Tensor], completion_ids: list[list[int]], pad_id: int
) -> dict[str, Tensor]:
    """Full sequences (left-padded prompt + right-padded completion) for B prompts and N = B·G
    completions laid out prompt-major (p0g0 … p0gG-1, p1g0 …), with `completion_mask`."""
    num_prompts = prompt_batch["input_ids"].shape[0]
    if not completion_ids or len(completion_ids) % num_prompts:
        raise ValueError(f"{len(completion_ids)} completions do not split evenly over {num_prompts} prompts")
    num_generations = len(completion_ids) // num_prompts
    device = prompt_batch["input_ids"].device
    completion, completion_pad = (t.to(device) for t in pad_right(completion_ids, pad_id))  # [N, C]
    batch: dict[str, Tensor] = {}
    prompt_ids = prompt_batch["input_ids"].repeat_interleave(num_generations, dim=0)  # [N, P]
    prompt_mask = prompt_batch["attention_mask"].repeat_interleave(num_generations, dim=0)  # [N, P]
    batch["input_ids"] = torch.cat([prompt_ids, completion], dim=1)  # [N, P+C]
    batch["attention_mask"] = torch.cat(
        [prompt_mask, completion_pad.to(prompt_mask.dtype)], dim=1
    )  # [N, P+C]
    batch["completion_mask"] = torch.cat([torch.zeros_like(prompt_mask), completion_pad], dim=1)  # [N, P+C]
    if "mm_token_type_ids" in prompt_batch:
        types = prompt_batch["mm_token_type_ids"].repeat_interleave(num_generations, dim=0)  # [N, P]
        batch["mm_token_type_ids"] = torch.cat([types, torch.zeros_like(completion)], dim=1)  # [N, P+C] text
    if "pixel_values" in prompt_batch:
        if prompt_batch["image_grid_thw"].shape[0] != num_prompts:
            raise ValueError("append_completions expects exactly one image per prompt")
        batch["pixel_values"], batch["image_grid_thw"] = repeat_images(
            prompt_batch["pixel_values"], prompt_batch["image_grid_thw"], num_generations
        )
    return batch


def eos_token_ids(model: Any, processor: Any) -> list[int]:
    """Every id that ends a completion: the generation config's eos ids and the tokenizer's eos."""
    configured = model.generation_config.eos_token_id
    ids = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    ids.append(processor.tokenizer.eos_token_id)
    return sorted({i for i in ids if i is not None})


def forbidden_token_ids(processor: Any) -> list[int]:
    """Ids of the vision marker tokens that a completion may never sample."""
    tokenizer = processor.tokenizer
    ids = tokenizer.convert_tokens_to_ids(list(VISION_MARKER_TOKENS))
    return [i for i in ids if i is not None and i != tokenizer.unk_token_id]


def cut_after_eos(tokens: list[int], eos_ids: list[int]) -> list[int]:
    """Keep tokens up to and including the first end-of-sequence token.

    >>> cut_after_eos([4, 9, 2, 0, 0], eos_ids=[2])
    [4, 9, 2]
    """
    for position, token in enumerate(tokens):
        if token in eos_ids:
            return tokens[: position + 1]
    return tokens


@dataclass(frozen=True, kw_only=True)
class Decoding:
    """How completions are decoded: greedy, or sampled `num_return_sequences` times per prompt with
    exactly `temperature`, `top_p` and `top_k` (0 = off). The one settings object every sampler takes.
    `prompt_seeds` (one per prompt) make the mr1 sampler draw each prompt's completions from a
    generator of its own (models/sampling.py)."""

    max_new_tokens: int
    do_sample: bool = True
    num_return_sequences: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_new_tokens: int = 0
    prompt_seeds: tuple[int, ...] = ()


def in_lockstep(model: Any) -> bool:
    """True when `model` is sharded over several processes (FSDP): each of its forwards is a
    collective, so every process must decode as many steps as the one with the longest completion.

    >>> in_lockstep(torch.nn.Linear(2, 2))
    False
    """
    from torch.distributed.fsdp import FSDPModule

    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return isinstance(model, FSDPModule) and distributed and torch.distributed.get_world_size() > 1


def all_finished(finished: Tensor, lockstep: bool) -> bool:
    """Every sequence has ended: here, or with `lockstep` on every process (one all-reduce).

    >>> all_finished(torch.tensor([True, False]), lockstep=False)
    False
    """
    done = finished.all().to(torch.int32)  # []
    if lockstep:
        torch.distributed.all_reduce(done, op=torch.distributed.ReduceOp.MIN)
    return bool(done)


@torch.no_grad()
def generate(
    model: Any, processor: Any, prompt_batch: dict[str, Tensor], decoding: Decoding
) -> list[list[int]]:
    """Completion token ids per sample, prompt-major (p0g0 … p0gG-1, p1g0 …), each cut after its
    first end-of-sequence token (kept). Vision marker tokens are never sampled.

    Sampling uses exactly `temperature`, `top_p` and `top_k` (0 = off), whatever the checkpoint's
    generation_config says (Qwen2-VL-Instruct ships top_k=1, top_p=0.001, temperature=0.01, and
    transformers fills an unset top_k with 50); there is no repetition penalty.
    """
    eos_ids = eos_token_ids(model, processor)
    d = decoding
    sampling: dict[str, Any] = {"do_sample": d.do_sample}
    if d.do_sample:
        sampling.update(
            temperature=d.temperature,
            top_p=d.top_p,
            top_k=d.top_k,
            num_return_sequences=d.num_return_sequences,
        )
    was_training = model.training
    model.eval()  # KV cache on, even when the policy trains with gradient checkpointing
    try:
        inputs = {key: value.to(model.device) for key, value in prompt_batch.items() if key in PROMPT_KEYS}
        output = model.generate(
            **inputs,
            max_new_tokens=d.max_new_tokens,
            min_new_tokens=d.min_new_tokens,
            eos_token_id=eos_ids,
            pad_token_id=processor.tokenizer.pad_token_id,
            suppress_tokens=forbidden_token_ids(processor),
            repetition_penalty=1.0,
            use_cache=True,
            synced_gpus=in_lockstep(
                model
            ),  # transformers' own lockstep: it stops when all processes are done
            **sampling,
        )  # [B·G, P + new]
    finally:
        model.train(was_training)
    new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()  # [B·G, new]
    completions = [cut_after_eos(tokens, eos_ids) for tokens in new_tokens]
    if not d.do_sample:  # greedy is deterministic: transformers refuses G > 1, so copy the one result
        completions = [list(tokens) for tokens in completions for _ in range(d.num_return_sequences)]
    return completions


def sequence_log_probs(
    model: Any, full_batch: dict[str, Tensor], *, temperature: float = 1.0, prompt_groups: int = 1
) -> Tensor:
    """Per-token log π(token j+1 | tokens ≤ j, image) for the actual next tokens: [N, S-1].

    With a `completion_mask` in the batch, only the logits from the last prompt column onward are
    computed (the vocabulary projection of the prompt is the memory peak on real models), and the
    prompt positions hold 0; callers mask with `completion_mask[:, 1:]` anyway. `prompt_groups` = G
    (rows in runs of G copies of a prompt) computes each prompt once: see models/shared_prompt.py.
    """
    if prompt_groups > 1:
        return grouped_log_probs(model, full_batch, num_generations=prompt_groups, temperature=temperature)
    device = next(model.parameters()).device
    input_ids = full_batch["input_ids"].to(device)  # [N, S]
    seq_len = input_ids.shape[1]
    first = 1  # first predicted position whose log-prob is computed
    if "completion_mask" in full_batch:
        columns = full_batch["completion_mask"].any(dim=0).nonzero()
        first = int(columns[0]) if len(columns) else seq_len
        first = max(first, 1)
    keep = seq_len - first + 1  # logits for positions first-1 … S-1
    inputs = {key: full_batch[key].to(device) for key in PROMPT_KEYS if key in full_batch}
    logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits  # [N, keep, V]
    logits = logits[:, :-1].float() / temperature  # [N, S-first, V] positions first-1 … S-2
    picked = token_log_probs(logits, input_ids[:, first:])  # [N, S-first]
    out = picked.new_zeros((input_ids.shape[0], seq_len - 1))  # [N, S-1]
    out[:, first - 1 :] = picked
    return out


def sft_batch(
    processor: Any, prompts: list[str], images: list[Image.Image], targets: list[str]
) -> dict[str, Tensor]:
    """Supervised batch: prompt + target + <|im_end|>, RIGHT-padded, `labels` = -100 except on the
    target tokens and the closing <|im_end|>. Targets are tokenized on their own and appended to
    the prompt ids, exactly as generated completions are."""
    if len(targets) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")
    tokenizer = processor.tokenizer
    encoded = encode_prompts(processor, prompts, images)
    keep = encoded["attention_mask"].bool()  # [B, P] left padding → drop the masked columns
    end = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    target_tokens = tokenizer(targets, add_special_tokens=False)["input_ids"]
    rows, labels, types = [], [], []
    for row, tokens in enumerate(target_tokens):
        prompt_ids = encoded["input_ids"][row][keep[row]].tolist()
        target_ids = list(tokens) + end
        rows.append(prompt_ids + target_ids)
        labels.append([IGNORE_INDEX] * len(prompt_ids) + target_ids)
        if "mm_token_type_ids" in encoded:
            types.append(encoded["mm_token_type_ids"][row][keep[row]].tolist() + [0] * len(target_ids))
    batch = {key: encoded[key] for key in ("pixel_values", "image_grid_thw") if key in encoded}
    batch["input_ids"], batch["attention_mask"] = pad_right(rows, tokenizer.pad_token_id)  # [B, L]
    batch["labels"] = pad_right(labels, IGNORE_INDEX)[0]  # [B, L]
    if types:
        batch["mm_token_type_ids"] = pad_right(types, 0)[0]  # [B, L]
    return batch
