"""`mr1 plan`: the estimate's terms, the verdict and the knobs, on the paper profile's shapes."""

from __future__ import annotations

import doctest

import pytest

from mr1cli.cli import main
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.planning import advice, for_config, gpus, memory, shapes, timing, weights
from mr1cli.planning.for_config import make_plan
from mr1cli.planning.gpus import GIB, gpu_kind
from mr1cli.planning.memory import memory_terms, peak_bytes
from mr1cli.planning.shapes import QWEN2_VL_2B
from mr1cli.planning.workload import LoraShape, Workload


@pytest.mark.parametrize("module", [shapes, gpus, weights, memory, timing, advice, for_config])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def paper(*overrides, method="grpo-d"):
    return load_config(method=method, task="counting", profile="paper", overrides=list(overrides))


def terms_gib(plan):
    return {t.name: t.bytes / GIB for t in plan.terms}


PARAMS_2B = 2_208_985_600
# Kept float32 even where frozen: the embedding table and the norms (RMSNorm weights, LayerNorm
# weights and biases); every other weight is read only by a linear or convolution layer.
KEPT_2B = 151936 * 1536 + (2 * 28 + 1) * 1536 + (4 * 32 + 2) * 1280


def test_paper_profile_fits_8_h100_and_counts_float32_master_state():
    plan = make_plan(paper(), gpu_kind("h100-80gb"), gpus=8)
    terms = terms_gib(plan)
    assert plan.fits
    assert terms["policy weights"] == pytest.approx(4 * PARAMS_2B / GIB)  # float32 master weights
    assert terms["optimiser state"] == pytest.approx(8 * PARAMS_2B / GIB)  # two float32 AdamW moments
    assert terms["gradients"] == pytest.approx(4 * PARAMS_2B / GIB)
    assert terms["reference model"] == pytest.approx((2 * (PARAMS_2B - KEPT_2B) + 4 * KEPT_2B) / GIB)
    norms = (2 * 28 + 1) * 1536 + (4 * 32 + 2) * 1280  # the tied embedding is also the LM head: copied
    assert terms["bf16 weight copies"] == pytest.approx(2 * (PARAMS_2B - norms) / GIB)
    assert set(terms) >= {"KV cache", "decoder activations", "vision activations", "logits"}
    assert not any("max_prompt_length" in note for note in plan.notes)  # 512 image tokens + text < 1024
    short = make_plan(paper("rl.max_prompt_length=512"), gpu_kind("h100-80gb"), gpus=8)
    assert any("max_prompt_length" in note for note in short.notes)  # 512 image tokens + text > 512


def test_float32_compute_has_no_copies_and_lora_keeps_its_frozen_base_in_bf16():
    fp32 = terms_gib(make_plan(paper("model.dtype=float32"), gpu_kind("h100-80gb"), gpus=8))
    assert "bf16 weight copies" not in fp32
    assert fp32["reference model"] == pytest.approx(4 * PARAMS_2B / GIB)
    lora = make_plan(paper("model.lora.enabled=true"), gpu_kind("h100-80gb"), gpus=8)
    adapters = weights.trainable_params(lora.workload)
    terms = terms_gib(lora)
    assert terms["reference model"] == 0.0  # the policy with its adapters off
    assert terms["policy weights"] == pytest.approx(
        (2 * (PARAMS_2B - KEPT_2B) + 4 * KEPT_2B + 4 * adapters) / GIB
    )
    assert terms["optimiser state"] == pytest.approx(8 * adapters / GIB)
    assert terms["bf16 weight copies"] == pytest.approx(2 * adapters / GIB)


def test_the_rollout_batch_sets_the_kv_cache_and_the_generation_time():
    """rl.rollout_batch=0 samples each GPU's share of the step (16 prompts / 8 GPUs = 2) in one call."""
    batched = make_plan(paper(), gpu_kind("h100-80gb"), gpus=8)
    single = make_plan(paper("rl.rollout_batch=1"), gpu_kind("h100-80gb"), gpus=8)
    assert (batched.workload.rollout_batch, single.workload.rollout_batch) == (2, 1)
    assert terms_gib(batched)["KV cache"] == pytest.approx(2 * terms_gib(single)["KV cache"])
    assert batched.time.generation_s < 0.6 * single.time.generation_s  # one decoding loop instead of two
    assert (batched.time.reference_s, batched.time.update_s) == (
        single.time.reference_s,
        single.time.update_s,
    )
    one_gpu = make_plan(paper(), gpu_kind("h100-80gb"), gpus=1)
    assert one_gpu.workload.rollout_batch == 16
    larger = make_plan(paper("rl.rollout_batch=8"), gpu_kind("h100-80gb"), gpus=8)
    assert larger.workload.rollout_batch == 2  # a call never samples more than the GPU's share


# FSDP2's units (accelerate wraps one per decoder layer and vision block): the root holds the tied
# embedding / LM head, the final norm, the 3-D patch embedding and the patch merger (LayerNorm, 2 linear).
VISION_ROOT_2B = 3 * 2 * 14 * 14 * 1280 + 2 * 1280 + (5120 * 5120 + 5120) + (5120 * 1536 + 1536)
ROOT_2B = 151936 * 1536 + 1536 + VISION_ROOT_2B
LAYER_2B = (
    2 * 1536 * 1536 + 1536 + 2 * (1536 * 256 + 256) + 3 * 1536 * 8960 + 2 * 1536
)  # q, o; k, v; MLP; norms


def test_fsdp2_shards_weights_gradients_moments_and_the_reference():
    ddp = make_plan(paper(), gpu_kind("a100-80gb"), gpus=8)
    fsdp = make_plan(paper(), gpu_kind("a100-80gb"), gpus=8, fsdp=True)
    t0, t8 = terms_gib(ddp), terms_gib(fsdp)
    reference = 2 * (PARAMS_2B - KEPT_2B) + 4 * KEPT_2B
    assert t8["policy weights"] == pytest.approx(4 * PARAMS_2B / 8 / GIB)  # float32 master weights / N
    assert t8["gradients"] == pytest.approx(4 * PARAMS_2B / 8 / GIB)  # float32, reduce-scattered
    assert t8["optimiser state"] == pytest.approx(8 * PARAMS_2B / 8 / GIB)  # two float32 moments / N
    # π_ref is sharded like the policy (tests/integration/test_sharded.py); DDP keeps a full copy each
    assert t8["reference model"] == pytest.approx(reference / 8 / GIB)
    assert t0["reference model"] == pytest.approx(reference / GIB)
    assert t0["policy weights"] == pytest.approx(4 * PARAMS_2B / GIB)
    # autocast's bf16 copies of the gathered weights are not sharded; the root + 2 layers gathered
    assert t8["bf16 weight copies"] == t0["bf16 weight copies"]
    assert t8["gathered units"] == pytest.approx(4 * (ROOT_2B + 2 * LAYER_2B) / GIB)
    assert "gathered units" not in t0
    # the update sets both peaks (PEAK_RULE): FSDP2 saves 7/8 of 16 bytes per weight and of π_ref
    saved = 7 / 8 * (16 * PARAMS_2B + reference) - 4 * (ROOT_2B + 2 * LAYER_2B)
    assert ddp.peak_bytes - fsdp.peak_bytes == pytest.approx(saved)
    assert (fsdp.time.reference_s, fsdp.time.update_s) == (ddp.time.reference_s, ddp.time.update_s)
    assert fsdp.time.generation_s > 2 * ddp.time.generation_s  # every decoded token gathers the layers


def test_fsdp2_with_lora_gathers_a_bf16_base_with_float32_adapters():
    plan = make_plan(paper("model.lora.enabled=true"), gpu_kind("a100-80gb"), gpus=8, fsdp=True)
    terms = terms_gib(plan)
    per_layer = 64 * (2 * (1536 + 1536) + 2 * (1536 + 256) + 3 * (1536 + 8960))  # q, o; k, v; MLP
    assert weights.trainable_params(plan.workload) == 28 * per_layer
    base = 2 * (PARAMS_2B - KEPT_2B) + 4 * KEPT_2B
    assert terms["policy weights"] == pytest.approx((base + 4 * 28 * per_layer) / 8 / GIB)
    assert terms["reference model"] == 0.0
    root = 4 * (151936 * 1536 + 1536) + 2 * (VISION_ROOT_2B - 2 * 1280) + 4 * 2 * 1280
    layer = 2 * (LAYER_2B - 2 * 1536) + 4 * 2 * 1536 + 4 * per_layer
    assert terms["gathered units"] == pytest.approx((root + 2 * layer) / GIB)


def test_fsdp2_is_a_flag_and_zero_is_gone(capsys):
    with pytest.raises(ConfigError, match="needs --gpus 2 or more"):
        make_plan(paper(), gpu_kind("h100-80gb"), gpus=1, fsdp=True)
    base = ["plan", "--method", "grpo-d", "--task", "counting", "--gpu", "a100-80gb", "--gpus", "8"]
    assert main([*base, "--zero", "3"]) == 2
    assert capsys.readouterr().err.strip() == "error: --zero: ZeRO was removed: use --fsdp (FSDP2)"
    assert main([*base, "--fsdp"]) == 0
    out = capsys.readouterr().out
    assert "FSDP2" in out and "gathered units" in out


def test_fsdp2_is_the_knob_when_several_gpus_do_not_fit():
    """The paper profile on 8 × A100-40GB: DDP holds 16 bytes per weight and π_ref on each GPU."""
    plan = make_plan(paper(), gpu_kind("a100-40gb"), gpus=8)
    assert not plan.fits
    fix = next(fix for fix in plan.fixes if fix.knobs == ("FSDP2",))
    assert not fix.changes_result and "experiments/accelerate/fsdp2.yaml" in fix.settings[0]
    assert fix.peak_bytes == make_plan(paper(), gpu_kind("a100-40gb"), gpus=8, fsdp=True).peak_bytes
    assert advice.KNOBS.get("FSDP2").apply(plan.workload.with_(gpus=1)) is None  # nothing to shard over


def test_one_24gb_gpu_does_not_fit_and_lora_makes_it_fit():
    plan = make_plan(paper(), gpu_kind("rtx4090"), gpus=1)
    assert not plan.fits
    assert [fix.knobs for fix in plan.fixes] == [("LoRA",)]
    lora = make_plan(paper("model.lora.enabled=true"), gpu_kind("rtx4090"), gpus=1)
    assert lora.fits and terms_gib(lora)["reference model"] == 0.0
    assert terms_gib(lora)["optimiser state"] < 1.0


def test_checkpointing_and_lora_dropout_move_the_activations_the_right_way():
    base = Workload(shape=QWEN2_VL_2B)
    act = {t.name: t.bytes for t in memory_terms(base)}
    ckpt = {t.name: t.bytes for t in memory_terms(base.with_(gradient_checkpointing=True))}
    assert ckpt["decoder activations"] < act["decoder activations"] / 5
    lora = {t.name: t.bytes for t in memory_terms(base.with_(lora=LoraShape(dropout=True)))}
    no_drop = {t.name: t.bytes for t in memory_terms(base.with_(lora=LoraShape(dropout=False)))}
    assert lora["decoder activations"] > no_drop["decoder activations"]
    assert peak_bytes(memory_terms(base.with_(generations=4))) < peak_bytes(memory_terms(base))


def test_unknown_gpu_and_model_are_one_line_errors():
    with pytest.raises(ConfigError, match="did you mean 'h100-80gb'"):
        gpu_kind("h100_80gb")
    with pytest.raises(ConfigError, match="not a known model"):
        make_plan(paper("model.name_or_path=nowhere/at-all"), gpu_kind("h200"), gpus=1)


def test_cli_prints_the_table_and_the_verdict(capsys):
    argv = [
        "plan",
        "--method",
        "grpo-d",
        "--task",
        "counting",
        "--profile",
        "paper",
        "--gpu",
        "h100-80gb",
        "--gpus",
        "8",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "policy weights" in out and "KV cache" in out and "fits:" in out
    assert main(["plan", "--method", "grpo-d", "--task", "counting", "--gpu", "nope"]) == 2
