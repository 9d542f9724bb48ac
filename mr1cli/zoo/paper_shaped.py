"""A checkpoint with Qwen2-VL-2B's architecture and random weights, for `mr1 bench --profile paper-shaped`.

Speed depends on shapes, not on what the weights learned, so the benchmark needs no download: the
config below is Qwen/Qwen2-VL-2B-Instruct's (28 decoder layers 1536 wide, GQA 12/2 heads, SwiGLU 8960,
vocabulary 151 936 with tied embeddings; a 32-block, 1280-wide vision tower), the tokenizer and
processor are the embedded tiny model's (their special-token ids are written into the config), and
the weights are a seeded random init saved in bfloat16 (2.2 B parameters, about 4.4 GB).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoProcessor, Qwen2VLConfig, Qwen2VLForConditionalGeneration

from mr1cli.zoo.tiny import generation_config, qwen2_vl_config, save_checkpoint_folder

PAPER_SHAPED_VERSION = "1"

# Qwen/Qwen2-VL-2B-Instruct config.json (text and vision sizes).
TEXT_SHAPE = {
    "vocab_size": 151936,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
}
VISION_SHAPE = {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "mlp_ratio": 4, "num_heads": 16}


def paper_shaped_config(processor) -> Qwen2VLConfig:
    """Qwen2-VL-2B's config around the given (tiny) tokenizer's special-token ids."""
    return qwen2_vl_config(processor.tokenizer, TEXT_SHAPE, VISION_SHAPE, dtype="bfloat16")


def shrunk_paper_shaped_config(
    processor, *, text_layers: int = 2, vision_depth: int = 2, dtype: str = "float32"
) -> Qwen2VLConfig:
    """Qwen2-VL-2B's widths, GQA, vocabulary and vision patching with fewer decoder layers and vision
    blocks: the shapes that decide image-token counts, prompt lengths and dtypes, at CPU cost."""
    text = {**TEXT_SHAPE, "num_hidden_layers": text_layers}
    vision = {**VISION_SHAPE, "depth": vision_depth}
    return qwen2_vl_config(processor.tokenizer, text, vision, dtype=dtype)


def ensure_paper_shaped_model(cache_dir: Path, tokenizer_source: Path, *, seed: int = 0) -> Path:
    """Build the paper-shaped checkpoint once under `cache_dir` (atomically) and return its folder."""
    out_dir = cache_dir / f"qwen2-vl-2b-shaped-v{PAPER_SHAPED_VERSION}"
    if (out_dir / "config.json").is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    processor = AutoProcessor.from_pretrained(tokenizer_source)
    return save_random_model(paper_shaped_config(processor), processor, out_dir, seed=seed)


def save_random_model(config: Qwen2VLConfig, processor, out_dir: Path, *, seed: int = 0) -> Path:
    """A seeded random init of `config` in bfloat16, saved with `processor` as a checkpoint folder."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # random init of 2.2 B weights is slow on CPU
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device):
            model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config = generation_config(processor.tokenizer)
    return save_checkpoint_folder(model, processor, out_dir)
