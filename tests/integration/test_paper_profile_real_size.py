"""The paper profile at real size on CPU: `--profile paper` end to end on a shrunk paper-shaped model.

The model has Qwen2-VL-2B's widths, GQA, vocabulary size (151 936; the ids come from the embedded
tiny tokenizer, as the real Qwen2 tokenizer cannot be built offline) and vision patching, with 2
decoder layers and VISION_DEPTH vision blocks instead of 28 and 32. Measured on this 2-core AVX2 CPU,
which has no bf16 instructions: one bf16 vision block over a 512-token image (2048 patches) takes
~12 s, so the 32-block tower would take ~6 min per image forward and the run over an hour. The data
are in the published schemas (a parquet of embedded image bytes like `leonardPKU/clevr_cogen_a_train`;
R1-V's SuperCLEVR jsonl with `./images/superCLEVR_new_025000.png` paths), at real resolution under
`max_pixels` 401408. Run: `make test-paper`. It passed in 15 min 6 s on a shared 2-core machine,
with a fresh-clone `make test` running beside it: about 6.5 min per GRPO-D step, and peak RSS 3.22 GiB.
With float32 master weights and bf16 autocast (models/precision.py) it passed in 3 min 28 s at
lighter load: about 29 s per GRPO-D step (how much of the change is the load was not isolated), peak
RSS 4.21 GiB (the LoRA base now keeps its embeddings and norms in float32).
"""

from __future__ import annotations

import json
import math
import resource

import pytest
import torch
from fixtures_data import COUNT_QUESTION, image_struct, png_bytes, superclevr_test, write_parquet
from PIL import Image
from transformers import AutoProcessor

from mr1cli.config_loading import load_config
from mr1cli.data.for_config import load_examples
from mr1cli.evaluation.evaluate import evaluate_model
from mr1cli.models.batching import chat_prompt, encode_prompts
from mr1cli.models.loading import load_for_config, set_pixel_budget
from mr1cli.models.lora import is_adapter_folder
from mr1cli.tasks import get_task
from mr1cli.training import run_training
from mr1cli.zoo.paper_shaped import save_random_model, shrunk_paper_shaped_config

VISION_DEPTH = 2
FULL_SIZE = (896, 448)  # 896 × 448 = 401408 pixels: 32 × 64 patches, 512 image tokens
CLEVR_SIZE = (480, 320)  # CLEVR and SuperCLEVR images: 308 × 476 after resizing, 187 image tokens


def prompt_tokens(processor, size):
    """(image tokens, prompt tokens) of the paper's counting training prompt around one image."""
    question = get_task("counting").train_prompt(COUNT_QUESTION)
    batch = encode_prompts(processor, [chat_prompt(processor, question)], [Image.new("RGB", size)])
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    return int((batch["input_ids"] == image_id).sum()), int(batch["attention_mask"].sum())


def test_a_full_size_image_fits_the_paper_prompt_length(tiny_model_dir):
    cfg = load_config(method="grpo-d", task="counting", profile="paper")
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    set_pixel_budget(processor, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    assert cfg.model.max_pixels == 401408
    image, prompt = prompt_tokens(processor, FULL_SIZE)
    assert image == 512
    assert 512 < prompt <= cfg.rl.max_prompt_length  # R1-V's 512 would refuse this image
    assert prompt_tokens(processor, CLEVR_SIZE)[0] == 187
    assert prompt_tokens(processor, (1024, 1024))[0] == 484  # bigger images are resized down


@pytest.fixture(scope="module")
def published_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    train = write_parquet(
        root / "clevr_cogen_a_train" / "data" / "train-00000-of-00001.parquet",
        {
            "image": [image_struct(png_bytes(s), f"clevr_{i}.png") for i, s in enumerate([FULL_SIZE] * 2)],
            "problem": [COUNT_QUESTION] * 2,
            "solution": ["<answer> 3 </answer>", "<answer> 5 </answer>"],
        },
    )
    test = superclevr_test(root / "superclevr", [3, 5, 2, 7, 4], [CLEVR_SIZE] * 3 + [FULL_SIZE] * 2)
    return train, test


@pytest.mark.paper
def test_paper_profile_runs_grpo_d_and_evaluates_at_real_size(tiny_model_dir, published_files, tmp_path):
    train, test = published_files
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    config = shrunk_paper_shaped_config(processor, text_layers=2, vision_depth=VISION_DEPTH, dtype="bfloat16")
    assert (config.text_config.vocab_size, config.vision_config.embed_dim) == (151936, 1280)
    model_dir = save_random_model(config, processor, tmp_path / "qwen2-vl-2b-shrunk")
    overrides = [
        f"data.train={train}",
        f"data.test={test}",
        f"data.image_root={test.parent}",
        "data.test_limit=4",
        "model.dtype=bfloat16",
        "model.lora.enabled=true",
        "rl.num_generations=2",
        "rl.max_completion_length=8",
        "train.max_steps=2",
        "train.prompts_per_step=1",
        "eval.batch_size=4",
    ]
    cfg = load_config(method="grpo-d", task="counting", profile="paper", overrides=overrides)
    assert cfg.model.gradient_checkpointing and cfg.model.max_pixels == 401408
    assert cfg.rl.max_prompt_length == 1024

    checkpoint = run_training(cfg, base_model=str(model_dir), output_dir=tmp_path / "run")
    assert is_adapter_folder(str(checkpoint))
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "loss/total" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert all(math.isfinite(m["loss/total"]) and m["completion/length"] <= 8 for m in steps)
    assert all(0.04 <= m["kl/beta"] <= 0.1 + 1e-9 for m in steps)  # GRPO-D on counting: β in [0.04, 0.10]

    loaded = load_for_config(str(checkpoint), cfg.model, device="cpu", trainable=False)
    assert loaded.dtype == torch.bfloat16  # the compute dtype; frozen linear weights stored in it
    stored = {name: p.dtype for name, p in loaded.model.named_parameters()}
    assert stored["model.language_model.layers.0.mlp.down_proj.weight"] == torch.bfloat16
    assert stored["model.language_model.embed_tokens.weight"] == torch.float32  # autocast leaves lookups
    examples = load_examples(cfg, "test")
    assert [ex.truth for ex in examples] == ["3", "5", "2", "7"]  # canonical answers are strings
    result = evaluate_model(loaded.model, loaded.processor, examples, cfg)
    assert len(result.predictions) == 4 and result.summary["n"] == 4
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS {peak_gib:.2f} GiB")
    assert peak_gib < 12
