"""`mr1 plan`'s memory estimate against a measured peak on CPU (tensor storage counted exactly by
`bench.tensor_memory.TensorPeak`): one micro-batch's policy update (forward, log-probs, backward) for
the tiny model and for a shrunk paper-shaped model (Qwen2-VL-2B's widths, vision tower and vocabulary,
2 decoder layers and 2 vision blocks)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

from mr1cli.bench.tensor_memory import TensorPeak
from mr1cli.models.batching import append_completions, chat_prompt, encode_prompts, sequence_log_probs
from mr1cli.models.loading import _checkpointing, set_pixel_budget
from mr1cli.planning.memory import Workload, memory_terms
from mr1cli.planning.shapes import TINY, image_tokens, shape_from_hf_config
from mr1cli.zoo.paper_shaped import shrunk_paper_shaped_config

TOLERANCE = 0.25  # |estimate / measured − 1| for the update phase


def measure_update(model, processor, *, side: int, prompts: int, generations: int, completion: int, dtype):
    """Measured peak bytes of one update, and the prompt length in tokens."""
    image = Image.new("RGB", (side, side), (120, 60, 30))
    text = [chat_prompt(processor, "How many objects are there? Output the thinking process.")] * prompts
    batch = encode_prompts(processor, text, [image] * prompts)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 200, (prompts * generations, completion), generator=generator).tolist()
    full = append_completions(batch, ids, processor.tokenizer.pad_token_id)
    full["pixel_values"] = full["pixel_values"].to(dtype)
    model.train()
    with TensorPeak() as meter:
        logp = sequence_log_probs(model, full)
        (logp * full["completion_mask"][:, 1:]).sum().backward()
    model.zero_grad(set_to_none=True)
    return meter.peak_bytes, int(batch["input_ids"].shape[1])


def update_estimate(workload: Workload) -> float:
    return sum(t.bytes for t in memory_terms(workload) if t.phase == "update")


@pytest.mark.parametrize("checkpointing", [False, True])
def test_tiny_model_update_memory_matches_the_estimate(tiny_model_dir, checkpointing):
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    shape = shape_from_hf_config(model.config.to_dict())
    # The planner's tiny shape is the real one (the vocabulary size depends on the tokenizer's corpus).
    assert shape == dataclasses.replace(TINY, vocab=shape.vocab)
    if checkpointing:
        _checkpointing(model, enable=True)
    set_pixel_budget(processor, min_pixels=3136, max_pixels=112 * 112)
    measured, prompt = measure_update(
        model, processor, side=112, prompts=4, generations=8, completion=48, dtype=torch.float32
    )
    workload = Workload(
        shape=shape,
        dtype_bytes=4,
        micro_batch=4,
        generations=8,
        prompt_text_tokens=prompt - image_tokens(112 * 112),
        max_pixels=112 * 112,
        completion_tokens=48,
        gradient_checkpointing=checkpointing,
        shared_prompt=False,
    )
    estimate = update_estimate(workload)
    print(
        f"tiny (checkpointing={checkpointing}): measured {measured / 2**20:.2f} MiB, estimate {estimate / 2**20:.2f} MiB"
    )
    assert abs(estimate / measured - 1) < TOLERANCE


@pytest.fixture(scope="module")
def shrunk_paper_shaped(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    config = shrunk_paper_shaped_config(processor, text_layers=2, vision_depth=2)
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config)
    return model, processor, shape_from_hf_config(config.to_dict())


@pytest.mark.slow  # ~2 min on one CPU thread
@pytest.mark.parametrize("checkpointing", [False, True])
def test_shrunk_paper_shaped_update_memory_matches_the_estimate(shrunk_paper_shaped, checkpointing):
    model, processor, shape = shrunk_paper_shaped
    assert (shape.vocab, shape.hidden, shape.vision_dim) == (151936, 1536, 1280)
    _checkpointing(model, enable=checkpointing)
    pixels = 224 * 224  # 256 patches, 64 image tokens
    set_pixel_budget(processor, min_pixels=3136, max_pixels=pixels)
    measured, prompt = measure_update(
        model, processor, side=224, prompts=1, generations=4, completion=32, dtype=torch.float32
    )
    workload = Workload(
        shape=shape,
        dtype_bytes=4,
        micro_batch=1,
        generations=4,
        prompt_text_tokens=prompt - image_tokens(pixels),
        max_pixels=pixels,
        completion_tokens=32,
        gradient_checkpointing=checkpointing,
        shared_prompt=False,
    )
    estimate = update_estimate(workload)
    print(
        f"paper-shaped (checkpointing={checkpointing}): measured {measured / 2**20:.1f} MiB, estimate {estimate / 2**20:.1f} MiB"
    )
    assert abs(estimate / measured - 1) < TOLERANCE
