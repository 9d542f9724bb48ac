"""Learning signals in a run's log: the held-out probe (step 0 = the base model, every
train.eval_every steps, the last step) for SFT and GRPO, resume with the probe on, and the policy
entropy of every GRPO update."""

from __future__ import annotations

import pytest
import torch
from support import tiny_grpo_config, tiny_sft_config

from mr1cli.data.for_config import load_examples
from mr1cli.evaluation.evaluate import evaluate_model
from mr1cli.models.loading import load_model
from mr1cli.training import run_training
from mr1cli.training.recipes import grpo, sft
from mr1cli.training.run_dir import RunDir

# The probe is the first 16 SFT training examples, so 16 SFT steps lift it from the untrained 0 %.
PROBE = (
    "data.heldout=synthetic:counting-warmup-64",
    "data.probe_size=16",
    "train.probe_every=0",  # the probe follows train.eval_every
    "data.test=synthetic:counting-test-8",
    "eval.max_new_tokens=12",
)
SFT = (*PROBE, "train.max_steps=16", "train.save_every=8", "train.eval_every=8")


def without_timings(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows]


def probe_accuracy(model_dir, cfg) -> float:
    loaded = load_model(str(model_dir), device="cpu")
    probe = load_examples(cfg, "heldout")[: cfg.data.probe_size]
    return evaluate_model(loaded.model, loaded.processor, probe, cfg).summary["accuracy"]


@pytest.fixture(scope="module")
def sft_run(module_cache, tiny_model_dir, tmp_path_factory):
    """An uninterrupted SFT run with the probe on: (config, run directory, its final checkpoint)."""
    cfg = tiny_sft_config(tiny_model_dir, *SFT)
    folder = tmp_path_factory.mktemp("sft") / "run"
    return cfg, folder, run_training(cfg, output_dir=folder)


def test_sft_logs_the_probe_at_the_base_every_eval_and_the_end(sft_run, tiny_model_dir):
    cfg, folder, final = sft_run
    rows = RunDir(folder).read_metrics()
    assert [row["step"] for row in rows] == list(range(17))
    assert rows[0] == {"step": 0, "probe/accuracy": 0.0, "probe/format_rate": 0.0}  # untrained model
    probed = {row["step"]: row["probe/accuracy"] for row in rows if "probe/accuracy" in row}
    assert sorted(probed) == [0, 8, 16]
    assert [row["step"] for row in rows if "eval/accuracy" in row] == [8, 16]
    # the logged values are the greedy accuracy of the model at that step
    assert probed[0] == probe_accuracy(tiny_model_dir, cfg)
    assert probed[16] == probe_accuracy(final, cfg) > 0.0


def test_sft_probe_resumes_to_the_uninterrupted_log(sft_run, monkeypatch, tmp_path):
    cfg, folder, _ = sft_run
    reference = without_timings(RunDir(folder).read_metrics())
    original = sft.SFTRecipe.train_step

    def crash_at(failing_step):
        def train_step(self, step, indices):
            if step == failing_step:
                raise RuntimeError("simulated crash")
            return original(self, step, indices)

        return train_step

    # Killed before the first checkpoint (the log starts again), and after the one at step 8.
    for failing_step in (3, 11):
        run = tmp_path / f"crash-{failing_step}"
        monkeypatch.setattr(sft.SFTRecipe, "train_step", crash_at(failing_step))
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_training(cfg, output_dir=run)
        assert RunDir(run).read_metrics()[0]["step"] == 0
        monkeypatch.setattr(sft.SFTRecipe, "train_step", original)
        run_training(cfg, output_dir=run, resume=True)
        assert without_timings(RunDir(run).read_metrics()) == reference


def test_grpo_logs_entropy_and_the_probe_from_its_base_on(sft_run, tmp_path, monkeypatch):
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = grpo.sampled_token_entropy

    def recording(logp, mask):
        calls.append((logp.detach().clone(), mask.clone()))
        return original(logp, mask)

    monkeypatch.setattr(grpo, "sampled_token_entropy", recording)
    _, sft_folder, sft_final = sft_run
    cfg = tiny_grpo_config(
        sft_final, *PROBE, "train.max_steps=3", "train.eval_every=2", "rl.skip_zero_advantage_steps=false"
    )
    run_training(cfg, output_dir=tmp_path / "run")
    rows = RunDir(tmp_path / "run").read_metrics()
    assert [row["step"] for row in rows] == [0, 1, 2, 3]
    assert [("probe/accuracy" in row, "eval/accuracy" in row) for row in rows] == [
        (True, False),  # the base, before any update
        (False, False),
        (True, True),  # train.eval_every
        (True, False),  # the last step
    ]
    # GRPO's base is the SFT run's final model: its step-0 probe is that run's last one.
    assert rows[0]["probe/accuracy"] == RunDir(sft_folder).read_metrics()[-1]["probe/accuracy"] > 0.0

    # policy/entropy: −log π of the sampled tokens averaged over all of a step's completion tokens,
    # across its two micro-batches (train.micro_batch=2 of 4 prompts), as recorded from the loss inputs.
    assert len(calls) == 2 * 3
    for step, row in enumerate(rows[1:]):
        step_calls = calls[2 * step : 2 * step + 2]
        surprisal = sum(float(-(logp * mask).sum()) for logp, mask in step_calls)
        tokens = sum(float(mask.sum()) for _, mask in step_calls)
        assert row["policy/entropy"] == pytest.approx(surprisal / tokens, rel=1e-6)
        assert 0.0 < row["policy/entropy"] < 20.0
