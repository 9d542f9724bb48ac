"""`mr1 plan`: the estimate's terms, the verdict and the knobs, on the paper profile's shapes."""

from __future__ import annotations

import doctest

import pytest

from mr1cli.cli import main
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.planning import advice, for_config, gpus, memory, shapes, timing
from mr1cli.planning.for_config import make_plan
from mr1cli.planning.gpus import GIB, gpu_kind
from mr1cli.planning.memory import LoraShape, Workload, memory_terms, peak_bytes
from mr1cli.planning.shapes import QWEN2_VL_2B


@pytest.mark.parametrize("module", [shapes, gpus, memory, timing, advice, for_config])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def paper(*overrides, method="grpo-d"):
    return load_config(method=method, task="counting", profile="paper", overrides=list(overrides))


def terms_gib(plan):
    return {t.name: t.bytes / GIB for t in plan.terms}


def test_paper_profile_fits_8_h100_and_names_every_term():
    plan = make_plan(paper(), gpu_kind("h100-80gb"), gpus=8, zero=0)
    terms = terms_gib(plan)
    assert plan.fits
    assert terms["policy weights"] == pytest.approx(2 * 2_208_985_600 / GIB)  # 2.21 B params in bf16
    assert terms["reference model"] == terms["policy weights"]
    assert set(terms) >= {
        "optimiser state",
        "KV cache",
        "gradients",
        "decoder activations",
        "vision activations",
        "logits",
    }
    assert not any("max_prompt_length" in note for note in plan.notes)  # 512 image tokens + text < 1024
    short = make_plan(paper("rl.max_prompt_length=512"), gpu_kind("h100-80gb"), gpus=8, zero=0)
    assert any("max_prompt_length" in note for note in short.notes)  # 512 image tokens + text > 512


def test_zero3_shards_weights_gradients_and_optimiser():
    plan0 = make_plan(paper(), gpu_kind("a100-80gb"), gpus=8, zero=0)
    plan3 = make_plan(paper(), gpu_kind("a100-80gb"), gpus=8, zero=3)
    t0, t3 = terms_gib(plan0), terms_gib(plan3)
    assert t3["policy weights"] == pytest.approx(t0["policy weights"] / 8)
    assert t3["gradients"] == pytest.approx(t0["gradients"] / 8)
    assert t3["optimiser state"] == pytest.approx(2_208_985_600 * 12 / 8 / GIB)  # fp32 master + 2 moments
    assert plan3.peak_bytes < plan0.peak_bytes
    # FSDP2 shards π_ref like the policy (tests/integration/test_sharded.py); DDP keeps a full copy each
    assert t3["reference model"] == pytest.approx(t3["policy weights"])
    assert t0["reference model"] == pytest.approx(t0["policy weights"])


def test_one_24gb_gpu_does_not_fit_and_lora_makes_it_fit():
    plan = make_plan(paper(), gpu_kind("rtx4090"), gpus=1, zero=0)
    assert not plan.fits
    assert [fix.knobs for fix in plan.fixes] == [("LoRA",)]
    lora = make_plan(paper("model.lora.enabled=true"), gpu_kind("rtx4090"), gpus=1, zero=0)
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
        make_plan(paper("model.name_or_path=nowhere/at-all"), gpu_kind("h200"), gpus=1, zero=0)


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
