"""Trainers by behaviour: SFT learns a toy, resume equals no resume, GRPO-D learns the two-answer toy."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from support import learn_two_answer_toy, tiny_grpo_config, tiny_sft_config, torch_threads

from mr1cli.config_loading import load_config
from mr1cli.core.errors import CheckpointError, TrainingHalted
from mr1cli.core.kl_schedules import schedule_from_settings
from mr1cli.data.for_config import load_examples
from mr1cli.evaluation.evaluate import evaluate_model
from mr1cli.models.loading import load_model
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir


def sft_config(model_dir, *extra):
    return tiny_sft_config(model_dir, *extra)


def weights(final_dir):
    return load_file(str(final_dir / "model.safetensors"))


def accuracy(model_dir, cfg):
    loaded = load_model(str(model_dir), device="cpu")
    examples = load_examples(cfg, "train")
    scoring = load_config(
        method="sft", task="counting", overrides=["eval.scoring=strict", "eval.max_new_tokens=12"]
    )
    result = evaluate_model(loaded.model, loaded.processor, examples, scoring)
    return result.summary["accuracy"]


def test_sft_lowers_loss_and_learns_the_answer_format(module_cache, tiny_model_dir, tmp_path):
    cfg = sft_config(tiny_model_dir, "train.max_steps=40")
    final = run_training(cfg, output_dir=tmp_path / "run")
    rows = RunDir(tmp_path / "run").read_metrics()
    assert len(rows) == 40
    assert sum(r["loss"] for r in rows[-5:]) / 5 < 0.5 * sum(r["loss"] for r in rows[:5]) / 5
    before, after = accuracy(tiny_model_dir, cfg), accuracy(final, cfg)
    assert before < 10.0 and after > before + 15.0, (before, after)


def test_sft_resume_equals_uninterrupted(module_cache, tiny_model_dir, tmp_path, monkeypatch):
    cfg = sft_config(tiny_model_dir, "train.max_steps=6", "train.save_every=2")
    reference = weights(run_training(cfg, output_dir=tmp_path / "a"))

    from mr1cli.training.recipes import sft

    original = sft.SFTRecipe.train_step

    def crash_at_step_5(self, step, indices):
        if step == 4:
            raise RuntimeError("simulated crash")
        return original(self, step, indices)

    monkeypatch.setattr(sft.SFTRecipe, "train_step", crash_at_step_5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(cfg, output_dir=tmp_path / "b")
    monkeypatch.setattr(sft.SFTRecipe, "train_step", original)
    with pytest.raises(Exception, match="--resume"):
        run_training(cfg, output_dir=tmp_path / "b")
    resumed = weights(run_training(cfg, output_dir=tmp_path / "b", resume=True))
    for name, tensor in reference.items():
        assert torch.allclose(tensor, resumed[name], atol=1e-6), name
    steps = [row["step"] for row in RunDir(tmp_path / "b").read_metrics()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_finished_run_is_reused_not_retrained(module_cache, tiny_model_dir, tmp_path):
    cfg = sft_config(tiny_model_dir, "train.max_steps=2")
    first = run_training(cfg, output_dir=tmp_path / "run")
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert run_training(cfg, output_dir=tmp_path / "run") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_corrupt_checkpoint_is_refused_on_resume(module_cache, tiny_model_dir, tmp_path, monkeypatch):
    cfg = sft_config(tiny_model_dir, "train.max_steps=4", "train.save_every=2")
    from mr1cli.training.recipes import sft

    original = sft.SFTRecipe.train_step

    def crash(self, step, indices):
        if step == 3:
            raise RuntimeError("simulated crash")
        return original(self, step, indices)

    monkeypatch.setattr(sft.SFTRecipe, "train_step", crash)
    with pytest.raises(RuntimeError):
        run_training(cfg, output_dir=tmp_path / "run")
    monkeypatch.setattr(sft.SFTRecipe, "train_step", original)
    checkpoint = RunDir(tmp_path / "run").checkpoints / "step-000002" / "model.safetensors"
    data = bytearray(checkpoint.read_bytes())
    data[-100] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checksum mismatch.*model\.safetensors"):
        run_training(cfg, output_dir=tmp_path / "run", resume=True)


# ---------------------------------------------------------------------------- GRPO / GRPO-D


def grpo_config(model_dir, method="grpo-d", *extra):
    return tiny_grpo_config(model_dir, *extra, method=method)


def test_beta_follows_the_schedule_in_the_log(module_cache, tiny_model_dir, tmp_path):
    cfg = grpo_config(
        tiny_model_dir, "grpo-d", "train.max_steps=10", "rl.kl.beta_min=0.04", "rl.kl.beta_max=0.10"
    )
    run_training(cfg, output_dir=tmp_path / "run")
    rows = RunDir(tmp_path / "run").read_metrics()
    schedule = schedule_from_settings(cfg.rl.kl)
    assert [row["kl/beta"] for row in rows] == pytest.approx([schedule(s, 10) for s in range(10)])
    assert rows[0]["kl/beta"] == pytest.approx(0.07) and rows[-1]["kl/beta"] == pytest.approx(0.10)
    assert {
        "reward/accuracy",
        "reward/format",
        "kl/mean",
        "loss/total",
        "completion/length",
        "train/clip_fraction",
        "perf/generation_s",
        "perf/update_s",
    } <= set(rows[-1])


def test_reference_is_loaded_when_beta_starts_at_zero(module_cache, tiny_model_dir, tmp_path, monkeypatch):
    from mr1cli.training.recipes import grpo

    seen = {}
    original = grpo.GRPORecipe.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seen["reference"] = self.reference

    monkeypatch.setattr(grpo.GRPORecipe, "__init__", spy)
    cfg = grpo_config(
        tiny_model_dir,
        "grpo",
        "train.max_steps=2",
        "rl.kl.name=linear",
        "rl.kl.beta_min=0",
        "rl.kl.beta_max=0.05",
    )
    run_training(cfg, output_dir=tmp_path / "linear")
    assert seen["reference"] is not None
    cfg = grpo_config(tiny_model_dir, "grpo", "train.max_steps=1", "rl.kl.beta=0")
    run_training(cfg, output_dir=tmp_path / "zero")
    assert seen["reference"] is None


def test_non_finite_reward_halts_with_the_step_named(module_cache, tiny_model_dir, tmp_path, monkeypatch):
    from mr1cli.tasks import rewards

    cfg = grpo_config(tiny_model_dir, "grpo-d", "train.max_steps=4", "train.save_every=2")
    calls = {"n": 0}
    original = rewards.REWARDS.get("accuracy")

    def poisoned(completion, truth, **kwargs):
        calls["n"] += 1
        return float("nan") if calls["n"] > 2 * 16 else original(completion, truth, **kwargs)

    monkeypatch.setitem(rewards.REWARDS._entries, "accuracy", poisoned)
    with pytest.raises(TrainingHalted, match="step 2: a reward is not finite"):
        run_training(cfg, output_dir=tmp_path / "run")
    run = RunDir(tmp_path / "run")
    assert [p.name for p in run.checkpoints.iterdir()] == ["step-000002"]
    assert not run.is_done()


def test_all_zero_advantage_batches_are_skipped_and_counted(
    module_cache, tiny_model_dir, tmp_path, monkeypatch
):
    from mr1cli.tasks import rewards

    monkeypatch.setitem(rewards.REWARDS._entries, "accuracy", lambda completion, truth, **kw: 1.0)
    monkeypatch.setitem(rewards.REWARDS._entries, "format", lambda completion, truth, **kw: 0.0)
    cfg = grpo_config(tiny_model_dir, "grpo", "train.max_steps=2")
    final = run_training(cfg, output_dir=tmp_path / "run")
    rows = RunDir(tmp_path / "run").read_metrics()
    assert [row["train/skipped"] for row in rows] == [1.0, 1.0]
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    for name, tensor in weights(final).items():
        assert torch.equal(tensor, initial[name]), name


def test_all_equal_reward_step_still_steps_on_the_kl_term_when_not_skipped(
    cache, tiny_model_dir, tmp_path, monkeypatch
):
    # R1-V (and the paper profile) still take an optimizer step on β·KL alone when every group
    # scored equally. Step 0 has mixed rewards, so the policy leaves the reference; step 1 is
    # all-equal: skipping leaves the weights as step 0 left them, not skipping moves them.
    from mr1cli.tasks import rewards

    finals, rows = {}, {}
    for skip in (True, False):
        calls = {"n": 0}

        def accuracy(completion, truth, calls=calls, **kw):
            calls["n"] += 1
            return float(calls["n"] % 2) if calls["n"] <= 16 else 1.0  # 16 = 4 prompts × G 4 per step

        monkeypatch.setitem(rewards.REWARDS._entries, "accuracy", accuracy)
        monkeypatch.setitem(rewards.REWARDS._entries, "format", lambda completion, truth, **kw: 0.0)
        cfg = grpo_config(
            tiny_model_dir,
            "grpo",
            "train.max_steps=2",
            "rl.kl.beta=0.5",
            f"rl.skip_zero_advantage_steps={skip}",
        )
        finals[skip] = weights(run_training(cfg, output_dir=tmp_path / f"skip-{skip}"))
        rows[skip] = RunDir(tmp_path / f"skip-{skip}").read_metrics()
    assert [row["train/skipped"] for row in rows[True]] == [0.0, 1.0]
    assert [row["train/skipped"] for row in rows[False]] == [0.0, 0.0]
    kl_step = rows[False][1]
    assert kl_step["loss/policy"] == pytest.approx(0.0, abs=1e-7)  # no policy-gradient signal
    assert kl_step["kl/mean"] > 0 and kl_step["train/grad_norm"] > 0  # the gradient is the KL term's
    assert any(not torch.equal(finals[True][name], finals[False][name]) for name in finals[True])


@pytest.mark.slow
@pytest.mark.parametrize(
    "threads, deterministic",
    [(1, False), (2, False), (1, True)],
    ids=["1-thread", "2-threads", "deterministic"],
)
def test_grpo_d_learns_the_two_answer_toy(tiny_model_dir, tmp_path, threads, deterministic):
    """One or two disks, answer "1" or "2": the warm-up saw every image with both answers, so the
    policy starts at 50 % by construction, and GRPO-D must find the right one from the accuracy reward
    alone. Measured start → end (mean of the last 5 steps): 0.453 → 0.991 with 1 thread, 0.453 → 0.994
    with 2, 0.453 → 0.991 with deterministic algorithms; over 11 more seeds and warm-ups the start lay
    in 0.44–0.57 and the end in 0.972–0.996, so kernels that change the trajectory still clear 0.9."""
    with torch_threads(threads, deterministic=deterministic):
        start, end = learn_two_answer_toy(tiny_model_dir, tmp_path)
        assert torch.get_num_threads() == threads  # nothing in the run re-pinned the threads
    assert 0.3 < start < 0.7 and end > 0.9, (start, end)


def test_tensorboard_logging_when_asked(module_cache, tiny_model_dir, tmp_path):
    pytest.importorskip("tensorboard", reason="the trackers extra is not installed")
    cfg = sft_config(tiny_model_dir, "train.max_steps=1", "train.report_to=tensorboard")
    run_training(cfg, output_dir=tmp_path / "run")
    assert list((tmp_path / "run" / "trackers" / "mr1").glob("events.out.tfevents.*"))
