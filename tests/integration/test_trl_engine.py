"""The TRL engine end to end on the tiny model: the chat prompt token for token, β(s) per step equal to
Eq. 3 (the β each loss used), the reference model when β(0) = 0, the zero-advantage skip, a run
directory that `mr1 eval` reads, and a SIGKILL then `--resume` ending where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import TINY_GRPO_OVERRIDES

from mr1cli.cli import main
from mr1cli.config_loading import load_config
from mr1cli.core.kl_schedules import schedule_from_settings
from mr1cli.data.for_config import load_examples
from mr1cli.models.batching import chat_prompt, encode_prompts
from mr1cli.training.run_dir import RunDir

pytest.importorskip("trl")

STEPS = 5
SMALL = [*TINY_GRPO_OVERRIDES, f"train.max_steps={STEPS}", "train.save_minutes=0"]


def train_argv(model_dir: Path, out: Path, *extra: str, method: str = "grpo-d", task: str = "counting"):
    return [
        "train",
        *("--method", method, "--task", task, "--engine", "trl", "--output", str(out)),
        f"model.name_or_path={model_dir}",
        *SMALL,
        *extra,
    ]


def test_trl_renders_mr1s_chat_prompt_token_for_token(tiny_model_dir, tmp_path, module_cache):
    from trl.data_utils import prepare_multimodal_messages

    from mr1cli.tasks import get_task
    from mr1cli.training.engines.trl import build_trainer
    from mr1cli.training.engines.trl_data import step_order

    cfg = load_config(
        method="grpo-d", task="counting", overrides=[f"model.name_or_path={tiny_model_dir}", *SMALL]
    )
    examples = load_examples(cfg, "train")
    trainer, processor = build_trainer(cfg, examples, str(tiny_model_dir), tmp_path / "checkpoints", 2)
    order = step_order(cfg, len(examples), 2)
    assert len(trainer.train_dataset) == len(order) == 2 * cfg.train.prompts_per_step
    for position, index in enumerate(order):
        row, example = trainer.train_dataset[position], examples[index]  # mr1's step order, row by row
        assert row["truth"] == example.truth
        messages = prepare_multimodal_messages(row["prompt"], images=[row["image"]])  # as TRL does
        (trl_ids,), _, _ = trainer._tokenize_prompts([messages])
        text = chat_prompt(processor, get_task(cfg.task).train_prompt(example.question))
        assert list(trl_ids) == encode_prompts(processor, [text], [row["image"]])["input_ids"][0].tolist()


def test_beta_per_step_is_eq3_and_the_run_directory_is_mr1s(tiny_model_dir, tmp_path, module_cache, capsys):
    out = tmp_path / "run"
    # skip off: every step computes a loss, so kl/beta is the β TRL's loss actually used
    assert main(train_argv(tiny_model_dir, out, "rl.skip_zero_advantage_steps=false")) == 0
    cfg = load_config(
        method="grpo-d", task="counting", overrides=[f"model.name_or_path={tiny_model_dir}", *SMALL]
    )
    schedule = schedule_from_settings(cfg.rl.kl)  # Eq. 3: β_min 0.04, β_max 0.10, w = 0.3 t
    rows = RunDir(out).read_metrics()
    assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
    assert [row["kl/beta"] for row in rows] == [schedule(s, STEPS) for s in range(STEPS)]
    assert rows[0]["kl/beta"] == pytest.approx(0.07) and rows[-1]["kl/beta"] == pytest.approx(0.10)
    for row in rows:
        assert row["train/skipped"] == 0.0 and {"reward/accuracy", "reward/format", "loss/total"} <= set(row)
    done = json.loads((out / "done.json").read_text())
    assert done["engine"] == "trl" and done["steps"] == STEPS
    assert (out / "final" / "manifest.json").is_file() and not (out / "checkpoints").exists()
    assert json.loads((out / "config.json").read_text())["train"]["engine"] == "trl"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out), "--task", "counting", "--limit", "4"]) == 0


def test_reference_model_exists_when_beta_starts_or_passes_through_zero(
    tiny_model_dir, tmp_path, module_cache
):
    from mr1cli.training.engines.trl import build_trainer, initial_beta

    # GRPO-D on geometry: β_min = 0, so β(w) = 0; β is positive elsewhere, so TRL needs π_ref
    geometry = "data.train=synthetic:geometry-warmup-16"
    overrides = [f"model.name_or_path={tiny_model_dir}", *SMALL, geometry, "rl.kl.explore_frac=0"]
    cfg = load_config(method="grpo-d", task="geometry", overrides=overrides)
    assert schedule_from_settings(cfg.rl.kl)(0, STEPS) == 0.0  # w = 0: β(0) = β_min = 0
    examples = load_examples(cfg, "train")[:8]
    trainer, _ = build_trainer(cfg, examples, str(tiny_model_dir), tmp_path / "c", STEPS)
    assert initial_beta(cfg, STEPS) == pytest.approx(0.02) and trainer.ref_model is not None
    flat = load_config(method="grpo", task="geometry", overrides=[*overrides[:-1], "rl.kl.beta=0"])
    trainer, _ = build_trainer(flat, examples, str(tiny_model_dir), tmp_path / "d", STEPS)
    assert trainer.ref_model is None  # β ≡ 0: no reference, as in mr1's engine


@pytest.mark.parametrize("skip", [True, False])
def test_zero_advantage_steps_skip_the_optimizer(tiny_model_dir, tmp_path, module_cache, skip):
    """The untrained tiny model never earns a reward, so every group is all-equal: with the skip on (the
    tiny profile) AdamW never steps a parameter; with it off (the paper profile, TRL's own behaviour)
    every parameter gets a step (of zero gradient here) and optimizer state."""
    from mr1cli.training.engines.trl import build_trainer

    overrides = [f"model.name_or_path={tiny_model_dir}", *SMALL, f"rl.skip_zero_advantage_steps={skip}"]
    cfg = load_config(method="grpo-d", task="counting", overrides=overrides)
    examples = load_examples(cfg, "train")
    trainer, _ = build_trainer(cfg, examples, str(tiny_model_dir), tmp_path / "c", 2)
    trainer.train()
    assert trainer.step_record.skipped is skip
    assert (len(trainer.optimizer.state) == 0) is skip


def test_gpu_check_section_cpu_smoke(tiny_model_dir, tmp_path, module_cache):
    from mr1cli.bench import trl_gpu_check
    from mr1cli.bench.gpu_sections import Context

    ctx = Context(torch.device("cpu"), tmp_path, cpu_smoke=True)
    hf = trl_gpu_check.trl_case(
        "tiny", 2, ["rl.max_completion_length=8"], ctx.device, tmp_path, str(tiny_model_dir)
    )
    assert hf["steps"] == 2 and hf["tokens_per_step"] == 8 * 8 * 8  # prompts × G × fixed length
    assert hf["step_seconds"] > 0 and hf["gen_tokens_per_s"] > 0 and hf["peak_gib"] > 0
    assert "vLLM needs a CUDA GPU" in trl_gpu_check.trl_vllm(ctx)["skipped"]


@pytest.fixture(scope="module")
def warm_model(tiny_model_dir, tmp_path_factory, module_cache):
    """The tiny model after the two-answer toy's SFT warm-up: it answers "1" or "2", so on counting data
    some completions earn the accuracy reward and others do not, and every step moves the weights."""
    from support import warm_up_on_both_answers

    return warm_up_on_both_answers(tiny_model_dir, tmp_path_factory.mktemp("warm-up"))


def _command(model: Path, out: Path, *extra: str) -> list[str]:
    steps = ["train.max_steps=6", "train.save_every=1", "rl.skip_zero_advantage_steps=false"]
    return [sys.executable, "-m", "mr1cli", *train_argv(model, out, *steps), *extra]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(warm_model, tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(_command(warm_model, reference), env=ENV, check=True, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(warm_model, killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while not (killed / "checkpoints" / "checkpoint-3" / "manifest.json").is_file():
        assert process.poll() is None and time.monotonic() < deadline, "no sealed checkpoint at step 3"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = subprocess.run(
        _command(warm_model, killed, "--resume"), env=ENV, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr
    base = load_file(str(Path(warm_model) / "model.safetensors"))
    a = load_file(str(reference / "final" / "model.safetensors"))
    b = load_file(str(killed / "final" / "model.safetensors"))
    assert any(not torch.equal(a[k], base[k]) for k in a)  # the run learned something
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise

    def rows(run: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in RunDir(run).read_metrics()]

    assert rows(killed) == rows(reference)
    assert len({row["reward/accuracy"] for row in rows(reference)}) > 1


@pytest.mark.slow
def test_sigterm_checkpoints_and_says_how_to_resume(warm_model, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        _command(warm_model, out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 600
    while not any(row.get("step", 0) >= 1 for row in RunDir(out).read_metrics()):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 143, err[-2000:]
    assert "--resume" in err and "checkpoint-" in err
    finished = subprocess.run(_command(warm_model, out, "--resume"), env=ENV, capture_output=True, text=True)
    assert finished.returncode == 0 and (out / "done.json").is_file(), finished.stderr[-2000:]
