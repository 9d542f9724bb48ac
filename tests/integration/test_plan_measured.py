"""`mr1 plan`'s memory estimate against what the code holds, on CPU: the weights, gradients, AdamW
moments and reference that a recipe keeps, byte for byte; and the measured peak (tensor storage
counted exactly by `bench.tensor_memory.TensorPeak`) of one micro-batch's policy update (forward,
log-probs, backward) in float32 and under bf16 autocast over float32 weights, for the tiny model and
for a shrunk paper-shaped model (Qwen2-VL-2B's widths, vision tower and vocabulary, 2 decoder layers
and 2 vision blocks)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from accelerate import Accelerator
from PIL import Image
from support import tiny_grpo_config
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

from mr1cli.bench.tensor_memory import TensorPeak
from mr1cli.data.for_config import load_examples
from mr1cli.models.batching import append_completions, chat_prompt, encode_prompts, sequence_log_probs
from mr1cli.models.loading import _checkpointing, set_pixel_budget
from mr1cli.models.precision import Precision, activations_in_compute_dtype
from mr1cli.planning.for_config import workload_for_config
from mr1cli.planning.memory import memory_terms, update_peak_bytes
from mr1cli.planning.shapes import TINY, image_tokens, shape_from_hf_config
from mr1cli.planning.workload import Workload
from mr1cli.training.recipes.grpo import GRPORecipe
from mr1cli.training.steps import step_indices
from mr1cli.zoo.paper_shaped import shrunk_paper_shaped_config

TOLERANCE = 0.25  # |estimate / measured − 1| for the update phase


def measure_update(
    model, processor, *, side: int, prompts: int, generations: int, completion: int, mixed: bool
):
    """Measured peak bytes of one update (bf16 autocast over the float32 weights when `mixed`, autocast's
    weight copies included), and the prompt length in tokens."""
    image = Image.new("RGB", (side, side), (120, 60, 30))
    text = [chat_prompt(processor, "How many objects are there? Output the thinking process.")] * prompts
    batch = encode_prompts(processor, text, [image] * prompts)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 200, (prompts * generations, completion), generator=generator).tolist()
    full = append_completions(batch, ids, processor.tokenizer.pad_token_id)
    model.train()
    with TensorPeak() as meter:
        with Precision(torch.bfloat16 if mixed else torch.float32, "cpu").autocast():
            logp = sequence_log_probs(model, full)
        (logp * full["completion_mask"][:, 1:]).sum().backward()
    model.zero_grad(set_to_none=True)
    return meter.peak_bytes, int(batch["input_ids"].shape[1])


def update_estimate(workload: Workload) -> float:
    """The update's planned peak (autocast's weight copies are made inside the measured window)."""
    return update_peak_bytes(memory_terms(workload))


@pytest.mark.parametrize("mixed", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_tiny_model_update_memory_matches_the_estimate(tiny_model_dir, checkpointing, mixed):
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32)
    activations_in_compute_dtype(model)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    shape = shape_from_hf_config(model.config.to_dict())
    # The planner's tiny shape is the real one (the vocabulary size depends on the tokenizer's corpus).
    assert shape == dataclasses.replace(TINY, vocab=shape.vocab)
    if checkpointing:
        _checkpointing(model, enable=True)
    set_pixel_budget(processor, min_pixels=3136, max_pixels=112 * 112)
    measured, prompt = measure_update(
        model, processor, side=112, prompts=4, generations=8, completion=48, mixed=mixed
    )
    workload = Workload(
        shape=shape,
        dtype_bytes=2 if mixed else 4,
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
        f"tiny (checkpointing={checkpointing}, mixed={mixed}): measured {measured / 2**20:.2f} MiB, estimate {estimate / 2**20:.2f} MiB"
    )
    assert abs(estimate / measured - 1) < TOLERANCE


@pytest.fixture(scope="module")
def shrunk_paper_shaped(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    config = shrunk_paper_shaped_config(processor, text_layers=2, vision_depth=2)
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config)
    activations_in_compute_dtype(model)
    return model, processor, shape_from_hf_config(config.to_dict())


@pytest.mark.slow  # ~2 min per case on one CPU thread
@pytest.mark.parametrize("mixed", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_shrunk_paper_shaped_update_memory_matches_the_estimate(shrunk_paper_shaped, checkpointing, mixed):
    model, processor, shape = shrunk_paper_shaped
    assert (shape.vocab, shape.hidden, shape.vision_dim) == (151936, 1536, 1280)
    _checkpointing(model, enable=checkpointing)
    pixels = 224 * 224  # 256 patches, 64 image tokens
    set_pixel_budget(processor, min_pixels=3136, max_pixels=pixels)
    measured, prompt = measure_update(
        model, processor, side=224, prompts=1, generations=4, completion=32, mixed=mixed
    )
    workload = Workload(
        shape=shape,
        dtype_bytes=2 if mixed else 4,
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
        f"paper-shaped (checkpointing={checkpointing}, mixed={mixed}): measured {measured / 2**20:.1f} MiB, estimate {estimate / 2**20:.1f} MiB"
    )
    assert abs(estimate / measured - 1) < TOLERANCE


def storage_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_the_plan_counts_the_weights_gradients_and_moments_the_recipe_keeps(
    tiny_model_dir, module_cache, lora
):
    """Byte for byte, on the tiny model with bf16 compute: the policy's float32 master weights (and a
    LoRA base's frozen bf16 linear weights), the float32 gradients and AdamW moments after a step, the
    reference stored bf16 where autocast rounds anyway; and autocast's bf16 copies, counted as the
    distinct bf16 tensors the update's backward saves for the trained weights."""
    if lora:
        pytest.importorskip("peft", reason="LoRA needs the lora extra (peft)")
    extra = ("model.lora.enabled=true", "model.lora.rank=8", "model.lora.dropout=0.0") if lora else ()
    cfg = tiny_grpo_config(
        tiny_model_dir, "model.dtype=bfloat16", "rl.skip_zero_advantage_steps=false", *extra
    )
    examples = load_examples(cfg, "train")
    recipe = GRPORecipe(cfg, examples, str(tiny_model_dir), str(tiny_model_dir), 1, Accelerator(cpu=True))
    grads = {}
    step = recipe.optimizer.step

    def capture(*args, **kwargs):
        grads.update({n: p.grad for n, p in recipe.model.named_parameters() if p.grad is not None})
        return step(*args, **kwargs)

    recipe.optimizer.step = capture
    recipe.train_step(0, step_indices(len(examples), 0, cfg.train.prompts_per_step, cfg.train.seed))
    shape = shape_from_hf_config(recipe.model.config.to_dict())
    workload = workload_for_config(cfg, shape, gpus=1).with_(dtype_bytes=2)  # bf16 here, on CPU
    planned = {t.name: t.bytes for t in memory_terms(workload)}
    moments = [t for state in recipe.optimizer.state.values() for t in state.values() if t.dim()]
    assert storage_bytes(recipe.model.parameters()) == planned["policy weights"]
    assert storage_bytes(grads.values()) == planned["gradients"]
    assert storage_bytes(moments) == planned["optimiser state"]
    reference = recipe.reference.parameters() if recipe.reference is not None else []
    assert storage_bytes(reference) == planned["reference model"]
    trained = [p for p in recipe.model.parameters() if p.requires_grad]
    sampled = recipe.sample([examples[i] for i in range(2)], [1, 2], {"generation": 0.0})
    batch = append_completions(sampled.prompt_batch, sampled.completions, recipe.pad_id)
    with WeightCasts(trained) as casts, recipe.precision.autocast():
        sequence_log_probs(recipe.model, batch)
    assert casts.bytes == planned["bf16 weight copies"]
    assert casts.repeats == 0  # one copy per weight per autocast region (autocast's cache)


class WeightCasts(TorchDispatchMode):
    """Bytes of the casts autocast makes of the given weights (a cache hit dispatches nothing)."""

    def __init__(self, weights) -> None:
        super().__init__()
        self.weights = {w.data_ptr() for w in weights}
        self.cast: set[int] = set()
        self.bytes = self.repeats = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        source = args[0] if args else None
        if func is torch.ops.aten._to_copy.default and source.data_ptr() in self.weights:
            self.repeats += source.data_ptr() in self.cast
            self.cast.add(source.data_ptr())
            self.bytes += out.numel() * out.element_size()
        return out
