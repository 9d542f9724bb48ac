"""`mr1 bench`: the arithmetic against hand values, the paper-shaped model's size, and smoke runs."""

from __future__ import annotations

import json

import pytest
import torch

from mr1cli.bench import measure as bench_stats
from mr1cli.bench.measure import (
    decode_roofline,
    device_bandwidth_gbps,
    kv_bytes_per_token,
    speedup,
    time_stats,
)
from mr1cli.bench.runner import bench_config
from mr1cli.bench.summary import summarize_trainer
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError


def test_time_stats_by_hand():
    stats = time_stats([4.0, 1.0, 3.0, 2.0])
    # inclusive quartiles of 1, 2, 3, 4: 1.75 and 3.25
    assert stats["median"] == 2.5 and stats["q1"] == 1.75 and stats["q3"] == 3.25
    assert stats["iqr"] == 1.5 and (stats["min"], stats["max"]) == (1.0, 4.0)
    assert time_stats([0.7])["iqr"] == 0.0
    with pytest.raises(ValueError):
        time_stats([])


def test_speedup_is_trl_median_over_mr1_median():
    assert speedup(mr1_step_s=[0.5, 0.4, 0.6], trl_step_s=[1.0, 2.0, 1.5]) == pytest.approx(3.0)
    assert speedup(mr1_step_s=[2.0], trl_step_s=[1.0]) == pytest.approx(0.5)  # slower than TRL


def test_roofline_by_hand():
    # Qwen2-VL-2B decoder in bf16: 1.54e9 parameters · 2 bytes; H100 SXM: 3.35 TB/s; 16 sequences.
    bound = decode_roofline(weight_bytes=3.08e9, bandwidth_bytes_per_s=3.35e12, batch=16)
    assert bound.steps_per_s == pytest.approx(3.35e12 / 3.08e9)  # ≈ 1088 decode steps/s
    assert bound.tokens_per_s == pytest.approx(16 * 1087.66, rel=1e-4)
    # with the KV cache: 28 672 B/token × 560 tokens × 16 sequences = 0.257 GB more per step
    with_kv = decode_roofline(
        weight_bytes=3.08e9,
        bandwidth_bytes_per_s=3.35e12,
        batch=16,
        kv_bytes_per_token=28672,
        mean_context=560,
    )
    assert with_kv.kv_bytes == pytest.approx(28672 * 560 * 16)
    assert with_kv.tokens_per_s == pytest.approx(16 * 3.35e12 / (3.08e9 + 28672 * 560 * 16))


def test_kv_bytes_and_device_bandwidth():
    from types import SimpleNamespace

    qwen2_vl_2b = SimpleNamespace(
        num_hidden_layers=28, num_key_value_heads=2, hidden_size=1536, num_attention_heads=12
    )
    assert kv_bytes_per_token(qwen2_vl_2b, dtype_bytes=2) == 2 * 28 * 2 * 128 * 2
    assert device_bandwidth_gbps("NVIDIA H200") == 4800.0
    assert device_bandwidth_gbps("NVIDIA H100 80GB HBM3") == 3350.0
    assert device_bandwidth_gbps("NVIDIA A100-SXM4-80GB") == 2039.0
    assert device_bandwidth_gbps("AMD EPYC 7B13") is None


def test_summarize_trainer_split_and_memory():
    records = [
        {
            "step_s": s,
            "generation_s": s / 2,
            "reference_s": 0.1,
            "update_s": 0.2,
            "other_s": s / 2 - 0.3,
            "tokens": 64,
            "start_bytes": 100,
            "peak_bytes": 100 + k,
        }
        for k, s in enumerate([1.0, 2.0, 3.0])
    ]
    summary = summarize_trainer(records)
    assert summary["step_s"]["median"] == 2.0
    assert summary["tokens_per_s"] == pytest.approx(192 / 6.0)
    assert summary["gen_tokens_per_s"] == pytest.approx(192 / 3.0)
    assert summary["split"]["generation"]["fraction"] == pytest.approx(0.5)
    assert summary["tokens_per_step"] == [64]
    assert summary["peak_memory_bytes"] == 102 and summary["peak_memory_above_step_start_bytes"] == 2


def test_memory_meter_sees_an_allocation_on_cpu():
    pytest.importorskip("psutil")
    meter = bench_stats.MemoryMeter(torch.device("cpu"), interval_s=0.001)
    meter.begin()
    block = torch.ones(64, 2**20, dtype=torch.uint8)  # 64 MiB, touched
    block.add_(1)
    window = meter.end()
    del block
    assert window["peak_bytes"] - window["start_bytes"] > 32 * 2**20


def test_bench_config_fixes_length_flattens_beta_and_never_skips():
    cfg = bench_config("tiny", total_steps=7)
    rl = cfg.rl
    assert cfg.method == "grpo-d" and rl.kl == {"name": "constant", "beta": 0.04}  # GRPO-D's β_min
    assert rl.min_completion_length == rl.max_completion_length
    assert rl.skip_zero_advantage_steps is False and cfg.train.max_steps == 7


def test_paper_shaped_bench_config_is_the_papers_rollout():
    cfg = bench_config("paper-shaped", total_steps=4)
    rl = cfg.rl
    assert (rl.num_generations, rl.max_completion_length, rl.min_completion_length) == (8, 512, 512)
    assert cfg.train.prompts_per_step == cfg.train.micro_batch == 2
    assert cfg.model.gradient_checkpointing and cfg.model.name_or_path == "paper-shaped"
    assert cfg.data.train.startswith("synthetic:") and cfg.data.synthetic_image_size == 448


def test_min_completion_length_is_validated():
    with pytest.raises(ConfigError, match="min_completion_length"):
        load_config(
            method="grpo",
            task="counting",
            overrides=["rl.max_completion_length=8", "rl.min_completion_length=9"],
        )


def test_paper_shaped_model_has_qwen2_vl_2b_size(tiny_model_dir):
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    from mr1cli.bench.measure import decoder_weight_bytes
    from mr1cli.zoo.paper_shaped import paper_shaped_config

    config = paper_shaped_config(AutoProcessor.from_pretrained(tiny_model_dir))
    with torch.device("meta"):
        model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16)
    total = sum(p.numel() for p in model.parameters())
    assert 2.15e9 < total < 2.25e9  # Qwen2-VL-2B: 2.21 B
    assert 3.0e9 < decoder_weight_bytes(model) < 3.2e9  # 1.54 B decoder parameters in bf16
    assert kv_bytes_per_token(model.config.get_text_config(), 2) == 28672


SMALL = [
    "data.train=synthetic:counting-warmup-16",
    "data.test=synthetic:counting-warmup-16",
    "data.train_limit=0",
    "train.prompts_per_step=2",
    "train.micro_batch=2",
    "rl.num_generations=2",
    "rl.max_completion_length=6",
    "eval.batch_size=8",
]


def test_bench_grpo_smoke(cache, tiny_model_dir):
    pytest.importorskip("trl")
    from mr1cli.bench.runner import bench_grpo

    out = cache / "bench"
    result = bench_grpo("tiny", steps=1, warmup=1, model=str(tiny_model_dir), overrides=SMALL, out_dir=out)
    assert result["fixed_length"]["ok"], result["trainers"]
    assert result["fixed_length"]["expected_tokens_per_step"] == 2 * 2 * 6
    assert result["mr1_skipped_updates"] == 0
    for name in ("mr1", "trl"):
        trainer = result["trainers"][name]
        assert trainer["step_s"]["n"] == 1 and trainer["step_s"]["median"] > 0
        assert trainer["split"]["generation"]["median_s"] > 0 and trainer["split"]["update"]["median_s"] > 0
        assert trainer["peak_memory_bytes"] > 0
    assert result["speedup"] == pytest.approx(
        result["trainers"]["trl"]["step_s"]["median"] / result["trainers"]["mr1"]["step_s"]["median"]
    )
    saved = json.loads((out / "tiny.json").read_text())
    assert saved["speedup"] == pytest.approx(result["speedup"])
    assert "speed-up" in (out / "tiny.md").read_text()


def test_bench_eval_smoke(cache, tiny_model_dir):
    from mr1cli.bench.runner import bench_eval

    report = bench_eval("tiny", model=str(tiny_model_dir), limit=8, out_dir=cache / "bench")
    assert report["settings"]["examples"] == 8 and report["examples_per_s"] > 0
    assert (cache / "bench" / "eval-tiny.md").is_file()


def test_paper_shaped_profile_needs_a_gpu(cache):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    from mr1cli.bench.runner import bench_grpo

    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        bench_grpo("paper-shaped", steps=1, out_dir=None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["bench", "grpo", "--profile", "paper"],
            "unknown bench profile 'paper' (did you mean 'paper-shaped'?)",
        ),
        (["bench", "eval", "--profile", "huge"], "unknown bench profile 'huge'"),
    ],
)
def test_bench_cli_mistakes_are_one_line_errors(argv, message, capsys):
    from mr1cli.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bench_grpo_cli_end_to_end(cache, monkeypatch, capsys):
    pytest.importorskip("trl")
    from mr1cli.cli import main

    cache.mkdir(parents=True, exist_ok=True)  # the fixture names the folder; nothing has made it yet
    monkeypatch.chdir(cache)
    assert main(["bench", "grpo", "--profile", "tiny", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "mr1 bench grpo" in out and "TRL GRPOTrainer" in out
    result = json.loads((cache / "results" / "bench" / "tiny.json").read_text())
    assert result["fixed_length"]["ok"] and result["settings"]["measured_steps"] == 1
