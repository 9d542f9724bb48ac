"""Paired statistics against hand values: the two-level bootstrap interval of an accuracy, the paired
difference (exact differences, the normal approximation at large n, seed pairing, a broadcast base),
the minimum detectable effect and the verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mr1cli.reporting.statistics import (
    MDE_FACTOR,
    PairedDifference,
    accuracy_interval,
    paired_difference,
    verdict,
)


def first_correct(n: int, correct: int) -> np.ndarray:
    """One evaluation's row: the first `correct` of n examples right."""
    return (np.arange(n) < correct).astype(float)[None, :]


def test_mde_factor_is_z975_plus_z80():
    assert pytest.approx(1.959964 + 0.841621, abs=1e-5) == MDE_FACTOR  # ≈ 2.80
    assert PairedDifference(1.0, 0.0, 2.0, se=2.0).mde == pytest.approx(5.6032, abs=1e-3)


def test_identical_matrices_differ_by_exactly_zero():
    rng = np.random.default_rng(3)
    a = (rng.random((5, 200)) < 0.4).astype(float)
    difference = paired_difference(a, a.copy())
    assert (difference.points, difference.low, difference.high, difference.se) == (0.0, 0.0, 0.0, 0.0)
    assert verdict(difference, +1) == "not detected (MDE 0.0)"
    assert verdict(difference, 0) == "no difference (MDE 0.0)"


def test_a_dominating_row_gives_a_binomial_difference():
    # a is right on the first 30 of 100 examples, b on the first 20: a − b = +10 points exactly, and a
    # resample's difference counts how many of the 10 discordant examples it drew: Binomial(100, 0.1),
    # so SE = √(100 · 0.1 · 0.9) = 3 points and the 95 % interval is its 2.5 % and 97.5 % quantiles, 5 and 16.
    difference = paired_difference(first_correct(100, 30), first_correct(100, 20))
    assert difference.points == pytest.approx(10.0)
    assert difference.se == pytest.approx(3.0, abs=0.2)
    assert 4.0 <= difference.low <= 6.0 and 15.0 <= difference.high <= 17.0
    assert difference.mde == pytest.approx(MDE_FACTOR * difference.se)
    assert verdict(difference, +1) == "reproduced" and verdict(difference, -1) == "opposite"


def test_accuracy_interval_at_large_n_matches_the_normal_approximation():
    # 600 of 2,000 right, one seed: half-width 1.96 · √(0.3 · 0.7 / 2000) = 2.008 points
    interval = accuracy_interval(first_correct(2000, 600))
    assert interval.mean == pytest.approx(30.0)
    assert interval.half_width == pytest.approx(1.96 * math.sqrt(0.3 * 0.7 / 2000) * 100, abs=0.15)
    assert interval.low < 30.0 < interval.high


def test_paired_difference_at_large_n_matches_mcnemar_normal_approximation():
    # 2,000 examples: a alone right on 300, b alone right on 100, both on 500. Difference +10 points,
    # paired SE = √((p10 + p01 − (p10 − p01)²) / n) = √((0.15 + 0.05 − 0.01) / 2000) = 0.975 points.
    a, b = np.zeros((1, 2000)), np.zeros((1, 2000))
    a[0, :800] = 1  # both right on 0–499, a alone on 500–799
    b[0, :500] = 1
    b[0, 800:900] = 1  # b alone on 800–899
    difference = paired_difference(a, b)
    se = math.sqrt((0.15 + 0.05 - 0.01) / 2000) * 100
    assert difference.points == pytest.approx(10.0)
    assert difference.se == pytest.approx(se, rel=0.08)
    assert difference.low == pytest.approx(10.0 - 1.96 * se, abs=0.25)
    assert difference.high == pytest.approx(10.0 + 1.96 * se, abs=0.25)


def test_a_one_row_base_is_broadcast_and_held_fixed():
    rng = np.random.default_rng(5)
    trained = (rng.random((3, 300)) < 0.6).astype(float)
    base = (rng.random((1, 300)) < 0.5).astype(float)
    broadcast = paired_difference(trained, base)
    assert broadcast.points == pytest.approx(100 * (trained.mean() - base.mean()))
    copies = paired_difference(trained, np.repeat(base, 3, axis=0))  # the same as three copies of the base
    assert (broadcast.low, broadcast.high, broadcast.se) == pytest.approx(
        (copies.low, copies.high, copies.se)
    )
    reverse = paired_difference(base, trained)
    assert reverse.points == pytest.approx(-broadcast.points)
    assert (reverse.low, reverse.high) == pytest.approx((-broadcast.high, -broadcast.low))


def test_seeds_are_paired_by_row():
    # Seed 0 gets everything right, seed 1 nothing; a is b plus 5 examples of seed 1. Paired by seed,
    # every resample's difference is small and ≥ 0; paired the wrong way round, the seed gap dominates.
    b = np.vstack([np.ones(100), np.zeros(100)])
    a = b.copy()
    a[1, :5] = 1
    paired = paired_difference(a, b)
    assert paired.points == pytest.approx(2.5)
    assert paired.low >= 0.0 and paired.high - paired.low < 12.0
    mispaired = paired_difference(a, b[::-1])
    assert mispaired.points == pytest.approx(2.5) and mispaired.high - mispaired.low > 50.0


def test_unequal_seed_counts_are_resampled_apart():
    a = np.vstack([first_correct(50, 30)[0], first_correct(50, 20)[0], first_correct(50, 25)[0]])
    b = np.vstack([first_correct(50, 25)[0], first_correct(50, 25)[0]])
    difference = paired_difference(a, b)
    assert difference.points == pytest.approx(0.0)
    assert difference.low < 0.0 < difference.high


def test_results_are_deterministic_and_seeded():
    rng = np.random.default_rng(11)
    a, b = ((rng.random((4, 250)) < p).astype(float) for p in (0.55, 0.5))
    assert paired_difference(a, b) == paired_difference(a, b)
    assert accuracy_interval(a) == accuracy_interval(a)
    assert paired_difference(a, b, seed=1) != paired_difference(a, b)
    assert accuracy_interval(a, resamples=500).mean == accuracy_interval(a).mean


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="different test sets"):
        paired_difference(np.ones((2, 10)), np.ones((2, 11)))
    with pytest.raises(ValueError, match="non-empty"):
        accuracy_interval(np.ones((0, 10)))


@pytest.mark.parametrize(
    ("low", "high", "expected", "text"),
    [
        (1.0, 9.0, +1, "reproduced"),
        (-9.0, -1.0, +1, "opposite"),
        (-9.0, -1.0, -1, "reproduced"),
        (-2.0, 4.0, +1, "not detected (MDE 4.2)"),
        (-2.0, 4.0, 0, "no difference (MDE 4.2)"),
        (1.0, 9.0, 0, "differs"),
        (1.0, 9.0, None, "higher"),
        (-9.0, -1.0, None, "lower"),
        (-2.0, 4.0, None, "not detected (MDE 4.2)"),
    ],
)
def test_verdicts(low, high, expected, text):
    assert verdict(PairedDifference((low + high) / 2, low, high, se=1.5), expected) == text
