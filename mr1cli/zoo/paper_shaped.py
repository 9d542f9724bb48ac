"""A checkpoint with Qwen2-VL-2B's architecture and random weights, for `mr1 bench --profile paper-shaped`.

Speed depends on shapes, not on what the weights learned, so the benchmark needs no download: the
config below is Qwen/Qwen2-VL-2B-Instruct's (28 decoder layers 1536 wide, GQA 12/2 heads, SwiGLU 8960,
vocabulary 151 936 with tied embeddings; a 32-block, 1280-wide vision tower), the tokenizer and
processor are the embedded tiny model's (their special-token ids are written into the config), and
the weights are a seeded random init saved in bfloat16 (2.2 B parameters, about 4.4 GB).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoProcessor, Qwen2VLConfig, Qwen2VLForConditionalGeneration

from mr1cli.models.loading import quiet_progress_bars
from mr1cli.zoo.tiny import MERGE_SIZE, PATCH_SIZE, _replace_dir, generation_config, mrope_sections

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
    token_id = processor.tokenizer.convert_tokens_to_ids
    endoftext, im_end = token_id("<|endoftext|>"), token_id("<|im_end|>")
    head_dim = TEXT_SHAPE["hidden_size"] // TEXT_SHAPE["num_attention_heads"]  # 128
    text_config = {
        **TEXT_SHAPE,
        "max_window_layers": TEXT_SHAPE["num_hidden_layers"],
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": mrope_sections(head_dim),  # [16, 24, 24], as the 2B model
        },
        "bos_token_id": endoftext,
        "eos_token_id": im_end,
        "pad_token_id": endoftext,
    }
    vision_config = {
        **VISION_SHAPE,
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
        dtype="bfloat16",
    )


def ensure_paper_shaped_model(cache_dir: Path, tokenizer_source: Path, *, seed: int = 0) -> Path:
    """Build the paper-shaped checkpoint once under `cache_dir` (atomically) and return its folder."""
    out_dir = cache_dir / f"qwen2-vl-2b-shaped-v{PAPER_SHAPED_VERSION}"
    if (out_dir / "config.json").is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    processor = AutoProcessor.from_pretrained(tokenizer_source)
    config = paper_shaped_config(processor)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # random init of 2.2 B weights is slow on CPU
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device):
            model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config = generation_config(processor.tokenizer)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with quiet_progress_bars():
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
