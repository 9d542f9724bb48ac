"""The tiny model, checkpoint loading and the batches SFT / GRPO / eval feed to the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from mr1cli.core.errors import CheckpointError, ConfigError
from mr1cli.models import batching
from mr1cli.models.loading import LoadedModel, load_model, vision_tower
from mr1cli.zoo.tiny import FORMAT_TOKENS, SPECIAL_TOKENS

QUESTION = "How many items are there? Output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags."


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> LoadedModel:
    return load_model(str(tiny_model_dir), device="cpu")


def images(n: int, size: int = 112) -> list[Image.Image]:
    return [Image.new("RGB", (size, size), (40 * i % 256, 90, 200 - 30 * i % 200)) for i in range(n)]


def prompts_for(processor, questions: list[str]) -> list[str]:
    return [batching.chat_prompt(processor, q) for q in questions]


def completion_columns(batch: dict, row: int) -> torch.Tensor:
    """Indices j of the log-prob row (position j predicts token j+1) that score completion tokens."""
    return batch["completion_mask"][row, 1:].nonzero().squeeze(1)


# --- the tiny checkpoint ----------------------------------------------------------------------


def test_tiny_checkpoint_is_a_small_qwen2_vl(tiny_model_dir: Path, tiny: LoadedModel) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2_vl" and config["tie_word_embeddings"] is True
    assert (tiny_model_dir / "model.safetensors").is_file()
    assert not list(tiny_model_dir.parent.glob(".tiny-qwen2-vl.*"))  # no staging left behind
    model = tiny.model
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 1_500_000
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert tiny.dtype == torch.float32 and tiny.device == torch.device("cpu")
    im_end = tiny.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in model.generation_config.eos_token_id and model.generation_config.do_sample is False


def test_tokenizer_follows_qwen2_vl_instruct(tiny: LoadedModel) -> None:
    tokenizer = tiny.processor.tokenizer
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert ids == list(range(ids[0], ids[0] + len(SPECIAL_TOKENS)))  # after the BPE vocab, in Qwen's order
    text = "<think> ∠ABC = 140°, 25π, √2 </think><answer> 12 </answer>"
    encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode([*encoded, tokenizer.eos_token_id], skip_special_tokens=True) == text
    for tag in FORMAT_TOKENS:
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1
    assert tokenizer.convert_ids_to_tokens(tokenizer("12", add_special_tokens=False)["input_ids"]) == [
        "1",
        "2",
    ]


def test_chat_prompt_has_qwen2_vl_structure(tiny: LoadedModel) -> None:
    assert batching.chat_prompt(tiny.processor, "How many?") == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>How many?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_encode_prompts_left_pads_and_gives_16_visual_tokens(tiny: LoadedModel) -> None:
    processor = tiny.processor
    batch = batching.encode_prompts(
        processor, prompts_for(processor, ["A long question, " * 4, "Short?"]), images(2)
    )
    assert batch["image_grid_thw"].tolist() == [[1, 8, 8], [1, 8, 8]]
    assert batch["pixel_values"].shape == (128, 3 * 2 * 14 * 14)
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (batch["input_ids"] == image_pad).sum(dim=1).tolist() == [16, 16]
    assert batch["attention_mask"][1, 0] == 0 and batch["attention_mask"][:, -1].tolist() == [1, 1]
    assert torch.equal(batch["mm_token_type_ids"].bool(), batch["input_ids"] == image_pad)


def test_pixel_budget_and_frozen_vision(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir), device="cpu", max_pixels=56 * 56, freeze_vision=True)
    batch = batching.encode_prompts(loaded.processor, prompts_for(loaded.processor, ["Q?"]), images(1))
    assert batch["image_grid_thw"].tolist() == [[1, 4, 4]]  # 112² squeezed into 56²: 4 visual tokens
    visual = {id(p) for p in vision_tower(loaded.model).parameters()}
    for parameter in loaded.model.parameters():
        assert parameter.requires_grad is (id(parameter) not in visual)


# --- batches --------------------------------------------------------------------------------


def test_append_completions_masks_and_repeats_images_by_block() -> None:
    prompt_batch = {
        "input_ids": torch.tensor([[0, 5, 6], [7, 8, 9]]),
        "attention_mask": torch.tensor([[0, 1, 1], [1, 1, 1]]),
        "mm_token_type_ids": torch.tensor([[0, 1, 0], [1, 1, 0]]),
        "pixel_values": torch.arange(12.0).view(12, 1),  # image 0: rows 0-3, image 1: rows 4-11
        "image_grid_thw": torch.tensor([[1, 2, 2], [1, 2, 4]]),
    }
    batch = batching.append_completions(prompt_batch, [[1, 2], [3], [4, 5, 2], [2]], pad_id=0)
    ids, attention, completion = (
        batch[k].tolist() for k in ("input_ids", "attention_mask", "completion_mask")
    )
    assert ids == [[0, 5, 6, 1, 2, 0], [0, 5, 6, 3, 0, 0], [7, 8, 9, 4, 5, 2], [7, 8, 9, 2, 0, 0]]
    assert attention == [[0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]
    assert completion == [[0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 0, 0]]
    types = batch["mm_token_type_ids"]
    assert types[:, 3:].sum() == 0 and types[3, :3].tolist() == [1, 1, 0]
    image0, image1 = list(range(4)), list(range(4, 12))
    assert batch["pixel_values"].view(-1).tolist() == image0 + image0 + image1 + image1
    assert batch["image_grid_thw"].tolist() == [[1, 2, 2], [1, 2, 2], [1, 2, 4], [1, 2, 4]]
    with pytest.raises(ValueError, match="do not split evenly"):
        batching.append_completions(prompt_batch, [[1], [2], [3]], pad_id=0)


def test_sft_batch_labels_exactly_the_target(tiny: LoadedModel) -> None:
    processor, tokenizer = tiny.processor, tiny.processor.tokenizer
    targets = ["<answer> 3 </answer>", "<think> 2 + 2 = 4 </think><answer> 4 </answer>"]
    prompts = prompts_for(processor, ["How many cubes are there in this picture?", "Q?"])
    batch = batching.sft_batch(processor, prompts, images(2), targets)
    alone = batching.encode_prompts(processor, prompts[1:], images(1))["input_ids"][0].tolist()
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, target in enumerate(targets):
        labels, ids, mask = batch["labels"][row], batch["input_ids"][row], batch["attention_mask"][row]
        expected = tokenizer(target, add_special_tokens=False)["input_ids"] + [im_end]
        assert labels[labels != -100].tolist() == expected
        start = int((labels != -100).nonzero()[0])
        assert ids[start : start + len(expected)].tolist() == expected
        assert (
            mask[: start + len(expected)].all() and not mask[start + len(expected) :].any()
        )  # right padding
    assert batch["input_ids"][1, : len(alone)].tolist() == alone  # no padding in front
    loss = tiny.model(**batch).loss
    assert torch.isfinite(loss)


# --- generation and log-probs -----------------------------------------------------------------


def test_generate_never_samples_vision_tokens(tiny: LoadedModel) -> None:
    model, processor = tiny.model, tiny.processor
    banned = batching.forbidden_token_ids(processor)
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") in banned

    def push_vision_tokens(module, inputs, output):  # make the banned tokens overwhelmingly likely
        output[..., banned] += 1e4
        return output

    batch = batching.encode_prompts(processor, prompts_for(processor, [QUESTION, "Q?"]), images(2))
    handle = model.lm_head.register_forward_hook(push_vision_tokens)
    try:
        raw = model.generate(**batch, max_new_tokens=3, do_sample=False)  # sanity: the hook works
        assert all(t in banned for t in raw[:, batch["input_ids"].shape[1] :].flatten().tolist())
        torch.manual_seed(0)
        sampled = batching.generate(
            model,
            processor,
            batch,
            batching.Decoding(max_new_tokens=12, do_sample=True, num_return_sequences=3),
        )
        greedy = batching.generate(
            model, processor, batch, batching.Decoding(max_new_tokens=12, do_sample=False)
        )
    finally:
        handle.remove()
    assert len(sampled) == 6 and len(greedy) == 2
    vocab = model.config.text_config.vocab_size
    for tokens in sampled + greedy:
        assert tokens and all(0 <= t < vocab and t not in banned for t in tokens)


def test_generate_is_prompt_major_and_cut_after_eos(tiny: LoadedModel) -> None:
    model, processor = tiny.model, tiny.processor
    batch = batching.encode_prompts(processor, prompts_for(processor, [QUESTION, "Q?"]), images(2))
    greedy = batching.generate(
        model, processor, batch, batching.Decoding(max_new_tokens=8, do_sample=False, num_return_sequences=2)
    )
    assert greedy[0] == greedy[1] and greedy[2] == greedy[3]
    alone = batching.generate(
        model,
        processor,
        {k: v for k, v in batch.items()},
        batching.Decoding(max_new_tokens=8, do_sample=False),
    )
    assert alone == [greedy[0], greedy[2]]
    eos = batching.eos_token_ids(model, processor)
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    lm_head_bias = torch.zeros(model.config.text_config.vocab_size)
    lm_head_bias[im_end] = 8.0  # make <|im_end|> likely but not certain
    handle = model.lm_head.register_forward_hook(lambda m, i, out: out + lm_head_bias)
    try:
        torch.manual_seed(1)
        sampled = batching.generate(
            model,
            processor,
            batch,
            batching.Decoding(max_new_tokens=6, do_sample=True, num_return_sequences=4),
        )
        forced = batching.generate(
            model, processor, batch, batching.Decoding(max_new_tokens=6, do_sample=True, min_new_tokens=3)
        )
    finally:
        handle.remove()
    assert any(len(tokens) < 6 for tokens in sampled)
    for tokens in sampled + forced:
        assert all(t not in eos for t in tokens[:-1])  # only the last token may end the completion
    assert all(len(tokens) >= 3 for tokens in forced)


def test_generate_scores_match_sequence_log_probs(tiny: LoadedModel) -> None:
    """What the sampler saw (transformers' own G-fold expansion) is what the loss recomputes."""
    model, processor = tiny.model, tiny.processor
    batch = batching.encode_prompts(processor, prompts_for(processor, [QUESTION, "Q?"]), images(2))
    torch.manual_seed(2)
    out = model.generate(
        **batch, max_new_tokens=5, min_new_tokens=5, do_sample=True, top_k=0, num_return_sequences=3,
        output_logits=True, return_dict_in_generate=True,
    )  # fmt: skip
    width = batch["input_ids"].shape[1]
    completions = out.sequences[:, width:].tolist()
    expected = torch.stack(out.logits, dim=1).log_softmax(-1)  # [6, 5, V]
    expected = expected.gather(-1, out.sequences[:, width:].unsqueeze(-1)).squeeze(-1)  # [6, 5]
    full = batching.append_completions(batch, completions, processor.tokenizer.pad_token_id)
    with torch.no_grad():
        logp = batching.sequence_log_probs(model, full)  # [6, S-1]
    assert torch.allclose(logp[:, width - 1 :], expected, atol=1e-4)


def test_sequence_log_probs_equals_manual_computation(tiny: LoadedModel) -> None:
    model, processor = tiny.model, tiny.processor
    batch = batching.encode_prompts(processor, prompts_for(processor, ["Q?"]), images(1))
    full = batching.append_completions(batch, [[11, 12, 13, 14]], processor.tokenizer.pad_token_id)
    inputs = {k: v for k, v in full.items() if k != "completion_mask"}
    with torch.no_grad():
        logits = model(**inputs).logits[0]  # [S, V]
        for temperature in (1.0, 0.7):
            got = batching.sequence_log_probs(model, full, temperature=temperature)[0]
            manual = torch.log_softmax(logits[:-1] / temperature, dim=-1)  # [S-1, V]
            manual = manual[torch.arange(len(manual)), full["input_ids"][0, 1:]]  # [S-1]
            columns = completion_columns(full, 0)
            assert columns.tolist() == list(
                range(full["input_ids"].shape[1] - 5, full["input_ids"].shape[1] - 1)
            )
            assert torch.allclose(got[columns], manual[columns], atol=1e-5)


def test_padding_does_not_change_log_probs(tiny: LoadedModel) -> None:
    model, processor = tiny.model, tiny.processor
    prompts = prompts_for(processor, [QUESTION, "Q?"])
    pictures = images(2)
    completions = [[21, 22, 23, 24, 25, 26], [31, 32]]
    pad = processor.tokenizer.pad_token_id
    together = batching.append_completions(
        batching.encode_prompts(processor, prompts, pictures), completions, pad
    )
    with torch.no_grad():
        batched = batching.sequence_log_probs(model, together)
        for row in range(2):
            single = batching.encode_prompts(processor, prompts[row : row + 1], pictures[row : row + 1])
            alone = batching.append_completions(single, completions[row : row + 1], pad)
            expected = batching.sequence_log_probs(model, alone)[0, completion_columns(alone, 0)]
            assert torch.allclose(batched[row, completion_columns(together, row)], expected, atol=1e-4)


# --- user errors ------------------------------------------------------------------------------


def test_missing_or_foreign_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointError, match="no such checkpoint folder") as error:
        load_model(str(missing))
    assert str(missing) in str(error.value)
    with pytest.raises(CheckpointError, match=r"no config\.json") as error:
        load_model(str(tmp_path))
    assert str(tmp_path) in str(error.value)
    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    with pytest.raises(CheckpointError, match=r"'gpt2' is not a supported.*qwen2_vl, qwen2_5_vl") as error:
        load_model(str(gpt2))
    assert str(gpt2) in str(error.value) and "\n" not in str(error.value)


def test_missing_and_corrupt_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    del weights[next(key for key in weights if "mlp.up_proj" in key)]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"weights missing for 1 parameters \(e\.g\. .*mlp\.up_proj"):
        load_model(str(broken))
    (broken / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        load_model(str(broken))
    (broken / "model.safetensors").write_bytes(b"\x00\x01 definitely not safetensors")
    with pytest.raises(CheckpointError, match="could not load the weights") as error:
        load_model(str(broken))
    assert str(broken) in str(error.value) and "\n" not in str(error.value)


def test_uncached_hub_id_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        CheckpointError, match=r"not in the local Hugging Face cache.*local checkpoint folder"
    ):
        load_model("mr1-tests/not-a-cached-model")


def test_bad_options_are_config_errors(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'bf16'"):
        load_model(str(tiny_model_dir), dtype="bf61")
    with pytest.raises(ConfigError, match="attention"):
        load_model(str(tiny_model_dir), attn_implementation="flash")
    with pytest.raises(ConfigError, match="min_pixels"):
        load_model(str(tiny_model_dir), min_pixels=10_000, max_pixels=5_000)


def test_checkpointed_policy_still_generates_and_backpropagates(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir), device="cpu", gradient_checkpointing=True, freeze_vision=True)
    model, processor = loaded.model, loaded.processor
    model.train()
    batch = batching.encode_prompts(processor, prompts_for(processor, ["Q?"]), images(1))
    completions = batching.generate(
        model, processor, batch, batching.Decoding(max_new_tokens=4, do_sample=True, num_return_sequences=2)
    )
    assert model.training  # generate() restores the mode it found
    full = batching.append_completions(batch, completions, processor.tokenizer.pad_token_id)
    logp = batching.sequence_log_probs(model, full)  # [2, S-1]
    (logp * full["completion_mask"][:, 1:]).sum().backward()
    assert model.lm_head.weight.grad is not None and model.lm_head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in vision_tower(model).parameters())


def test_qwen2_5_vl_checkpoints_take_the_same_path(tiny: LoadedModel, tmp_path: Path) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    processor, ids = tiny.processor, tiny.processor.tokenizer.convert_tokens_to_ids
    text = tiny.model.config.text_config.to_dict()
    config = Qwen2_5_VLConfig(
        text_config={
            k: text[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")
        }
        | {"num_attention_heads": 4, "num_key_value_heads": 2, "rope_parameters": text["rope_parameters"]},
        vision_config={"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4}
        | {"out_hidden_size": text["hidden_size"], "fullatt_block_indexes": [1], "window_size": 56},
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(tmp_path)
    parts = {"image_processor": processor.image_processor, "video_processor": processor.video_processor}
    Qwen2_5_VLProcessor(
        tokenizer=processor.tokenizer, chat_template=processor.chat_template, **parts
    ).save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu", freeze_vision=True)
    assert type(loaded.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    batch = batching.encode_prompts(
        loaded.processor, prompts_for(loaded.processor, [QUESTION, "Q?"]), images(2)
    )
    completions = batching.generate(
        loaded.model, loaded.processor, batch, batching.Decoding(max_new_tokens=3, do_sample=True)
    )
    full = batching.append_completions(batch, completions, processor.tokenizer.pad_token_id)
    assert torch.isfinite(batching.sequence_log_probs(loaded.model, full)).all()


def test_build_is_seeded_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from mr1cli.zoo.tiny import build_tiny_model

    corpus = ["How many items are there? <answer> 3 </answer>"]
    first, second = (build_tiny_model(tmp_path / name, corpus=corpus, seed=7) for name in ("a", "b"))
    weights = [load_file(folder / "model.safetensors") for folder in (first, second)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    with pytest.raises(CheckpointError, match="already exists"):
        build_tiny_model(first, corpus=corpus)
    build_tiny_model(first, corpus=corpus, seed=0, overwrite=True)
    key = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(load_file(first / "model.safetensors")[key], weights[0][key])  # another seed
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b"]  # nothing left behind
