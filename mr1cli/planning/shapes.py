"""Model shapes the planner needs (no weights): sizes of the text decoder and the vision tower,
and the parameter counts that follow from them, for the Qwen2-VL architecture."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mr1cli.config import TINY_BASE_NAMES
from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import Registry

PATCH = 14  # Qwen2-VL: 14-pixel patches,
MERGE = 2  # merged 2 × 2 into one language-model token,
TEMPORAL_PATCH = 2  # an image is repeated twice in time (a 3-D patch of 2 × 3 × 14 × 14 values).


@dataclass(frozen=True)
class ModelShape:
    """A Qwen2-VL-architecture model's sizes."""

    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    tied_embeddings: bool
    vision_depth: int
    vision_dim: int
    vision_mlp_ratio: float
    vision_heads: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def text_params(self) -> int:
        """Decoder parameters, embedding and LM head included (the head counted once when tied).

        >>> QWEN2_VL_2B.text_params()
        1543714304
        """
        head = 0 if self.tied_embeddings else self.vocab * self.hidden
        return self.vocab * self.hidden + self.layers * self.decoder_layer_params() + self.hidden + head

    def decoder_layer_params(self) -> int:
        """One decoder layer: attention (q and v biased, k biased too), SwiGLU MLP, two RMSNorms.

        >>> QWEN2_VL_2B.decoder_layer_params()
        46797824
        """
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        attention = h * h + h + 2 * (h * kv + kv) + h * h  # q (bias), k, v (bias), o
        return attention + 3 * h * i + 2 * h

    def vision_params(self) -> int:
        """Vision tower parameters: 3-D patch embedding, ViT blocks, and the 2 × 2 patch merger.

        >>> QWEN2_VL_2B.vision_params()
        665271296
        """
        e, merged = self.vision_dim, self.vision_dim * MERGE * MERGE
        merger = 2 * e + (merged * merged + merged) + (merged * self.hidden + self.hidden)
        return (
            3 * TEMPORAL_PATCH * PATCH * PATCH * e + self.vision_depth * self.vision_block_params() + merger
        )

    def vision_block_params(self) -> int:
        """One ViT block: two LayerNorms, qkv and output projections, the MLP (all biased).

        >>> QWEN2_VL_2B.vision_block_params()
        19677440
        """
        e, m = self.vision_dim, int(self.vision_dim * self.vision_mlp_ratio)
        return 4 * e + (3 * e * e + 3 * e) + (e * e + e) + (e * m + m) + (m * e + e)

    def root_params(self) -> int:
        """What lies outside the decoder layers and vision blocks (FSDP2's root unit): the embedding
        and LM head, the final norm, the patch embedding and the patch merger.

        >>> QWEN2_VL_2B.root_params()
        268968448
        """
        blocks = self.layers * self.decoder_layer_params() + self.vision_depth * self.vision_block_params()
        return self.total_params() - blocks

    def total_params(self) -> int:
        return self.text_params() + self.vision_params()

    def text_norm_params(self) -> int:
        """RMSNorm weights: two per decoder layer and the final norm."""
        return (2 * self.layers + 1) * self.hidden

    def vision_norm_params(self) -> int:
        """LayerNorm weights and biases: two per vision block and the patch merger's."""
        return (4 * self.vision_depth + 2) * self.vision_dim

    def embedding_params(self) -> int:
        """The token-embedding table (with tied embeddings, also the LM head)."""
        return self.vocab * self.hidden

    def lora_targets(self, modules: tuple[str, ...], vision: bool) -> list[tuple[int, int, int]]:
        """(in_features, out_features, copies) of every linear layer LoRA wraps, by module name."""
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        text = {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }
        e, m = self.vision_dim, int(self.vision_dim * self.vision_mlp_ratio)
        tower = {"qkv": (e, 3 * e), "proj": (e, e), "fc1": (e, m), "fc2": (m, e)}
        found = [(*text[name], self.layers) for name in modules if name in text]
        if vision:
            found += [(*tower[name], self.vision_depth) for name in modules if name in tower]
        return found


def image_patches(max_pixels: int) -> int:
    """Vision-tower patches of the largest image the pixel budget allows (14 × 14 pixels each).

    >>> image_patches(401408), image_patches(12544)
    (2048, 64)
    """
    return max_pixels // (PATCH * PATCH)


def image_tokens(max_pixels: int) -> int:
    """Language-model tokens of that image after the 2 × 2 merge (R1-V's 401 408 pixels: 512).

    >>> image_tokens(401408)
    512
    """
    return image_patches(max_pixels) // (MERGE * MERGE)


QWEN2_VL_2B = ModelShape(
    vocab=151936,
    hidden=1536,
    intermediate=8960,
    layers=28,
    heads=12,
    kv_heads=2,
    tied_embeddings=True,
    vision_depth=32,
    vision_dim=1280,
    vision_mlp_ratio=4,
    vision_heads=16,
)
# 7B: the same vision tower and depth; a wider decoder with untied embeddings.
QWEN2_VL_7B = dataclasses.replace(
    QWEN2_VL_2B, vocab=152064, hidden=3584, intermediate=18944, heads=28, kv_heads=4, tied_embeddings=False
)
# The embedded tiny model (zoo/tiny.py build_tiny_model defaults; a test checks they agree).
TINY = ModelShape(
    vocab=1040,
    hidden=128,
    intermediate=344,
    layers=2,
    heads=4,
    kv_heads=2,
    tied_embeddings=True,
    vision_depth=2,
    vision_dim=64,
    vision_mlp_ratio=4,
    vision_heads=4,
)

# Model names whose shape is known without reading a config.json (hub ids, the embedded models).
KNOWN_SHAPES: Registry[ModelShape] = Registry("model shape")
for _name in ("Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-VL-2B", "paper-shaped"):
    KNOWN_SHAPES.add(_name, QWEN2_VL_2B)
for _name in ("Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen2-VL-7B"):
    KNOWN_SHAPES.add(_name, QWEN2_VL_7B)
for _name in ("tiny", *TINY_BASE_NAMES):
    KNOWN_SHAPES.add(_name, TINY)


def shape_from_hf_config(config: dict[str, Any]) -> ModelShape:
    """The shape in a Qwen2-VL / Qwen2.5-VL config.json (text keys at the top level or in text_config)."""
    text = {**config, **config.get("text_config", {})}
    vision = config.get("vision_config", {})
    try:
        return ModelShape(
            vocab=text["vocab_size"],
            hidden=text["hidden_size"],
            intermediate=text["intermediate_size"],
            layers=text["num_hidden_layers"],
            heads=text["num_attention_heads"],
            kv_heads=text.get("num_key_value_heads", text["num_attention_heads"]),
            tied_embeddings=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
            vision_depth=vision["depth"],
            vision_dim=vision.get("embed_dim", vision.get("hidden_size")),
            vision_mlp_ratio=vision.get("mlp_ratio", 4),
            vision_heads=vision["num_heads"],
        )
    except KeyError as missing:
        raise ConfigError(f"config.json lacks {missing} needed to plan memory") from None


def shape_for(name_or_path: str) -> ModelShape:
    """A known model's shape, or the one in a local folder's config.json."""
    if name_or_path in KNOWN_SHAPES:
        return KNOWN_SHAPES.get(name_or_path)
    config = Path(name_or_path).expanduser() / "config.json"
    if not config.is_file():
        raise ConfigError(
            f"cannot plan for '{name_or_path}': not a known model ({', '.join(KNOWN_SHAPES.names())}) "
            "and not a local checkpoint folder with a config.json"
        )
    try:
        return shape_from_hf_config(json.loads(config.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{config}: unreadable ({error})") from None
