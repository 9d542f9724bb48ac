"""Parity of the two engines, kept: GRPO-D on the two-answer toy (tests/support.py) with mr1's engine and
with TRL's, same warm-up, same seed, same data order; their accuracy-reward curves must agree within
what two seeds of mr1's own engine differ by.

The tolerance, derived: the curve is cut into four 10-step windows; MR1_SEED_WINDOWS holds the window
means of mr1's engine on this toy for seeds 0–5 (measured on the tiny model, 2026-12, commit of this
file); σ_w is their standard deviation. Two independent runs of one engine differ in a window by a
difference with standard deviation √2·σ_w, so the engines agree when every window differs by at most
3·√2·σ_w: 0.093, 0.386, 0.125 and 0.027. The last window (both at ≈ 0.98) is the tight one: an
engine that learns nothing (≈ 0.5), or settles lower, fails it; so does one that starts 0.1 off.
TRL's engine on seeds 0–3 (same measurement) stayed within every window's tolerance; its first window
ran 0.035 below mr1's on average (0.49 against 0.525, cause not found), so seed 3's first window came
within 0.006 of its tolerance. The test runs seed 0 on one thread (0.044 below, 0.049 to spare).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch
from support import TWO_ANSWER_GRPO_D, two_answer_toy, warm_up_on_both_answers

from mr1cli.config_loading import load_config
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir

WINDOW = 10
# mr1's engine, seeds 0–5: mean accuracy reward in steps 1–10, 11–20, 21–30, 31–40
MR1_SEED_WINDOWS = (
    (0.530, 0.598, 0.929, 0.983),
    (0.521, 0.769, 0.963, 0.995),
    (0.526, 0.727, 0.970, 0.990),
    (0.562, 0.872, 0.984, 0.976),
    (0.495, 0.705, 0.917, 0.985),
    (0.515, 0.690, 0.916, 0.987),
)
TOLERANCE = tuple(
    3 * math.sqrt(2) * statistics.stdev(column) for column in zip(*MR1_SEED_WINDOWS, strict=True)
)


def window_means(curve: list[float]) -> list[float]:
    return [statistics.fmean(curve[i : i + WINDOW]) for i in range(0, len(curve), WINDOW)]


def curves_agree(a: list[float], b: list[float]) -> list[str]:
    """The windows where the curves differ by more than TOLERANCE (none: they agree)."""
    return [
        f"steps {WINDOW * w + 1}-{WINDOW * (w + 1)}: {x:.3f} vs {y:.3f} (tolerance {t:.3f})"
        for w, (x, y, t) in enumerate(zip(window_means(a), window_means(b), TOLERANCE, strict=True))
        if abs(x - y) > t
    ]


def test_the_criterion_can_fail():
    assert [round(t, 3) for t in TOLERANCE] == [0.093, 0.386, 0.125, 0.027]
    learned = [0.5] * 10 + [0.75] * 10 + [0.95] * 10 + [0.98] * 10
    assert curves_agree(learned, learned) == []
    assert curves_agree(learned, [r + 0.02 for r in learned]) == []  # within seed noise
    flat = [0.5] * 40  # an engine that does not learn
    assert curves_agree(learned, flat)[-1].startswith("steps 31-40")
    slow_start = [r - 0.1 for r in learned[:10]] + learned[10:]
    assert len(curves_agree(learned, slow_start)) == 1


def train_toy(warmed: Path, engine: str, out: Path) -> list[float]:
    """GRPO-D on the two-answer toy with `engine`, seed 0: the accuracy reward of every step."""
    overrides = [f"model.name_or_path={warmed}", *TWO_ANSWER_GRPO_D, "train.seed=0", f"train.engine={engine}"]
    cfg = load_config(method="grpo-d", task="counting", profile="tiny", overrides=overrides)
    run_training(cfg, output_dir=out, train_examples=two_answer_toy())
    return [row["reward/accuracy"] for row in RunDir(out).read_metrics()]


@pytest.mark.slow
def test_mr1_and_trl_learn_the_two_answer_toy_alike(tiny_model_dir, tmp_path, module_cache):
    pytest.importorskip("trl")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same floating-point sums, so the same runs, whatever the machine's cores
    try:
        warmed = warm_up_on_both_answers(tiny_model_dir, tmp_path / "warm-up")
        curves = {engine: train_toy(warmed, engine, tmp_path / engine) for engine in ("mr1", "trl")}
    finally:
        torch.set_num_threads(threads)
    for engine, curve in curves.items():
        start, *_, end = window_means(curve)
        assert len(curve) == 40 and end - start > 0.3, (engine, window_means(curve))  # both learn
    assert curves_agree(curves["mr1"], curves["trl"]) == []
