"""Build the embedded tiny model: a real Qwen2-VL checkpoint, small enough for a laptop CPU.

Everything a hub checkpoint ships is made here, offline, and written with `save_pretrained`,
so `load_model(path)` reads it through exactly the code path that reads
`Qwen/Qwen2-VL-2B-Instruct`:

- a byte-level BPE tokenizer trained on the caller's corpus with Qwen2's pre-tokenizer
  (digits split one by one), Qwen2-VL's special tokens after the BPE vocabulary (as in the
  real model), `<think>`/`</think>`/`<answer>`/`</answer>` as added *non-special* tokens so
  they survive `decode(..., skip_special_tokens=True)`, eos `<|im_end|>`, pad `<|endoftext|>`,
  and Qwen2-VL's chat template;
- a `Qwen2VLImageProcessor` whose pixel budget turns a 112×112 image into an 8×8 patch grid
  (patch 14), i.e. 16 visual tokens after the 2×2 merge, and the `Qwen2VLProcessor` around both;
- a `Qwen2VLConfig` with a 2-layer, 128-wide text model (GQA 4/2 heads, M-RoPE sections for
  head_dim 32) and a 2-block, 64-wide vision tower, tied embeddings like the 2B model, seeded
  fp32 init; a generation config that decodes greedily and stops at `<|im_end|>`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    Qwen2Tokenizer,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)

from mr1cli.core.errors import CheckpointError
from mr1cli.models.loading import quiet_progress_bars

# Qwen2's pre-tokenizer pattern (transformers/models/qwen2/tokenization_qwen2.py): \p{N} alone, so
# every digit is its own token, exactly as in the real model.
PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# Qwen2-VL-Instruct's added special tokens, in the real model's id order (151643 … 151656).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Reasoning-format tags: whole tokens, but not special (they must survive skip_special_tokens).
FORMAT_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")

# Qwen2-VL-Instruct's chat template (chat_template.json of Qwen/Qwen2-VL-2B-Instruct), verbatim.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Always in the tokenizer's training text, whatever the caller's corpus: the characters geometry
# answers use and the R1-V prompt templates (paper.md, "Prompts").
BASE_CORPUS = (
    "0 1 2 3 4 5 6 7 8 9 10 100 ° ∠ ∥ △ ⊙ π √ + - × ÷ = . , : ; ? ! ( )",
    "Output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags.",
    "First output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags.",
    "You are a helpful assistant.",
    "system user assistant",
)

PATCH_SIZE = 14
MERGE_SIZE = 2


def mrope_sections(head_dim: int) -> list[int]:
    """M-RoPE (temporal, height, width) split of the head_dim/2 rotary frequencies, in Qwen2-VL's
    proportions (16, 24, 24 of 64 for head_dim 128).

    >>> mrope_sections(128), mrope_sections(32)
    ([16, 24, 24], [4, 6, 6])
    """
    half = head_dim // 2
    temporal = half // 4
    height = (half - temporal) // 2
    return [temporal, height, half - temporal - height]


def _training_text(corpus: Iterable[str]) -> Iterator[str]:
    yield from BASE_CORPUS
    yield from corpus


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 1024) -> Qwen2Tokenizer:
    """A byte-level BPE tokenizer with Qwen2's pre-tokenizer, Qwen2-VL's special tokens and chat template."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_text(corpus), trainer=trainer)
    vocab = bpe.get_vocab()
    merges = [tuple(pair) for pair in _merges(bpe)]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|endoftext|>",  # registered first so it gets the first added id, as in Qwen2-VL
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]}
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in FORMAT_TOKENS])
    tokenizer.eos_token = "<|im_end|>"  # Qwen2-VL-Instruct: eos <|im_end|>, pad <|endoftext|>
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _merges(bpe: Tokenizer) -> list[list[str]]:
    """The trained merges, as [left, right] pairs, from the tokenizer's JSON form."""
    merges = json.loads(bpe.to_str())["model"]["merges"]
    return [m.split(" ") if isinstance(m, str) else m for m in merges]


def build_processor(tokenizer: Qwen2Tokenizer, image_size: int) -> Qwen2VLProcessor:
    """Qwen2-VL's processor with a pixel budget that maps an image_size² image to itself."""
    image_processor = Qwen2VLImageProcessor(
        min_pixels=(PATCH_SIZE * MERGE_SIZE) ** 2,
        max_pixels=image_size * image_size,
        patch_size=PATCH_SIZE,
        temporal_patch_size=2,
        merge_size=MERGE_SIZE,
    )
    # Unused by mr1, but Qwen2VLProcessor requires one (as the real checkpoint ships).
    video_processor = Qwen2VLVideoProcessor(
        min_pixels=(PATCH_SIZE * MERGE_SIZE) ** 2, max_pixels=image_size * image_size, merge_size=MERGE_SIZE
    )
    return Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def qwen2_vl_config(
    tokenizer: Any, text_shape: dict[str, Any], vision_shape: dict[str, Any], *, dtype: str
) -> Qwen2VLConfig:
    """A Qwen2-VL config of the given text and vision shapes around `tokenizer`'s special tokens:
    M-RoPE sections from the head size, 14-pixel patches merged 2×2, tied embeddings."""
    token_id = tokenizer.convert_tokens_to_ids
    endoftext, im_end = token_id("<|endoftext|>"), token_id("<|im_end|>")
    head_dim = text_shape["hidden_size"] // text_shape["num_attention_heads"]
    text_config = {
        **text_shape,
        "max_window_layers": text_shape["num_hidden_layers"],
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": mrope_sections(head_dim),
        },
        "bos_token_id": endoftext,
        "eos_token_id": im_end,
        "pad_token_id": endoftext,
    }
    vision_config = {
        **vision_shape,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": MERGE_SIZE,
        "temporal_patch_size": 2,
    }
    return Qwen2VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=token_id("<|image_pad|>"),
        video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"),
        vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=True,
        dtype=dtype,
    )


def tiny_config(
    tokenizer: Qwen2Tokenizer, *, text_hidden: int, text_layers: int, vision_depth: int
) -> Qwen2VLConfig:
    """A Qwen2-VL config with Qwen2-VL-2B's shape ratios scaled down (GQA, tied embeddings, M-RoPE)."""
    text_shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": text_hidden,
        "intermediate_size": 8 * math.ceil(text_hidden / 3),  # SwiGLU width ≈ 8/3·d, a multiple of 8
        "num_hidden_layers": text_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
    }
    vision_shape = {
        "depth": vision_depth,
        "embed_dim": 64,
        "hidden_size": text_hidden,
        "mlp_ratio": 4,
        "num_heads": 4,
    }
    return qwen2_vl_config(tokenizer, text_shape, vision_shape, dtype="float32")


def generation_config(tokenizer: Qwen2Tokenizer) -> GenerationConfig:
    """Greedy by default; stops at <|im_end|> (or <|endoftext|>), like Qwen2-VL-Instruct."""
    endoftext, im_end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    return GenerationConfig(
        bos_token_id=endoftext, pad_token_id=endoftext, eos_token_id=[im_end, endoftext], do_sample=False
    )


def build_tiny_model(
    out_dir: Path,
    *,
    corpus: Iterable[str],
    seed: int = 0,
    image_size: int = 112,
    text_hidden: int = 128,
    text_layers: int = 2,
    vision_depth: int = 2,
    vocab_size: int = 1024,
    overwrite: bool = False,
) -> Path:
    """Build, randomly initialise (seeded) and save the tiny Qwen2-VL checkpoint; return its folder.

    The folder is written next to `out_dir` under a temporary name and renamed into place, so a
    killed build never leaves a half-written checkpoint. An existing `out_dir` is an error unless
    `overwrite`.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise CheckpointError(
            f"{out_dir} already exists; remove it or pass overwrite=True to rebuild the tiny model"
        )
    if image_size % (PATCH_SIZE * MERGE_SIZE):
        raise ValueError(f"image_size must be a multiple of {PATCH_SIZE * MERGE_SIZE}, got {image_size}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(corpus, vocab_size=vocab_size)
    processor = build_processor(tokenizer, image_size)
    config = tiny_config(
        tokenizer, text_hidden=text_hidden, text_layers=text_layers, vision_depth=vision_depth
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = generation_config(tokenizer)
    return save_checkpoint_folder(model, processor, out_dir)


def save_checkpoint_folder(model: Any, processor: Any, out_dir: Path) -> Path:
    """`save_pretrained` of model and processor into a staging folder, then one rename into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with quiet_progress_bars():
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
        replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def replace_dir(staging: Path, out_dir: Path) -> None:
    """Move `staging` to `out_dir`; an existing `out_dir` is set aside first and deleted after."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
    os.replace(out_dir, old / out_dir.name)
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
