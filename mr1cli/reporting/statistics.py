"""Statistics for results tables: accuracy intervals and paired differences from a two-level
bootstrap over seeds × test examples, the minimum detectable effect, verdicts, relative changes.

An evaluation is a [seeds, examples] 0/1 matrix: one row per training seed, one column per test
example (the same examples, in the same order, for every model). Each bootstrap resample draws
seeds with replacement and, independently, examples with replacement; a paired difference applies
the same resampled examples (and, for paired seeds, the same resampled seeds) to both sides, so
the example-to-example variation the two models share cancels. The resampling is seeded: the same
inputs give the same interval.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
POWER = 0.8
# MDE factor: z(1 − 0.05/2) + z(0.8) = 1.960 + 0.842 = 2.80 (80 % power, two-sided 5 % test)
MDE_FACTOR = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2) + NormalDist().inv_cdf(POWER)


@dataclass(frozen=True)
class Interval:
    """An accuracy in points with its 95 % bootstrap interval [low, high]."""

    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class PairedDifference:
    """a − b in points, its 95 % bootstrap interval, the bootstrap standard error and the minimum
    detectable effect (MDE = 2.80 · SE: the difference found 80 % of the time at two-sided 5 %)."""

    points: float
    low: float
    high: float
    se: float

    @property
    def mde(self) -> float:
        return MDE_FACTOR * self.se


@functools.lru_cache(maxsize=4)
def _example_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n]: how often each of n examples is drawn in each resample (with replacement).
    Every matrix of n examples gets the same draws, so a table of many intervals draws them once."""
    rng = np.random.default_rng((seed, 0))
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)  # [B, n]
    counts.flags.writeable = False
    return counts


def _resampled_accuracies(
    sides: list[np.ndarray], resamples: int, seed: int, paired_seeds: bool
) -> list[np.ndarray]:
    """Each side's mean accuracy (points) in every resample: [resamples] per side. All sides share
    the resampled examples; seeds are shared when `paired_seeds`, else drawn for each side."""
    n = sides[0].shape[1]
    example_counts = _example_counts(n, resamples, seed)  # [B, n]
    rng = np.random.default_rng((seed, 1))
    seed_counts: dict[int, np.ndarray] = {}
    means = []
    for side in sides:
        seeds = side.shape[0]
        if seeds not in seed_counts or not paired_seeds:
            seed_counts[seeds] = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=resamples)  # [B, s]
        per_seed = example_counts @ side.T / n  # [B, s]: each seed's accuracy on the resampled examples
        means.append(100.0 * (seed_counts[seeds] * per_seed).sum(axis=1) / seeds)  # [B]
    return means


def _as_matrix(correct: np.ndarray) -> np.ndarray:
    matrix = np.atleast_2d(np.asarray(correct, dtype=float))
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"expected a non-empty [seeds, examples] matrix, got shape {matrix.shape}")
    return matrix


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def accuracy_interval(correct: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Mean accuracy in points of a [seeds, examples] 0/1 matrix and its 95 % two-level bootstrap
    interval (seeds and examples resampled independently, with replacement).

    >>> accuracy_interval(np.ones((3, 50)))
    Interval(mean=100.0, low=100.0, high=100.0)
    """
    matrix = _as_matrix(correct)
    [means] = _resampled_accuracies([matrix], resamples, seed, paired_seeds=True)
    return Interval(float(100.0 * matrix.mean()), *_percentiles(means))


def paired_difference(
    a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0
) -> PairedDifference:
    """a − b in points for a [sa, n] and b [sb, n] 0/1 matrix on the same n examples (same order),
    with the 95 % interval and SE of the paired bootstrap: both sides get the same resampled
    examples; seeds are paired by row when sa == sb (runs with the same seed), a one-row side (the
    base model's deterministic greedy evaluation) stays fixed, other seed counts are resampled apart.

    >>> d = paired_difference(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]))
    >>> d.points
    25.0
    """
    left, right = _as_matrix(a), _as_matrix(b)
    if left.shape[1] != right.shape[1]:
        raise ValueError(
            f"the two sides hold different test sets: {left.shape[1]} vs {right.shape[1]} examples"
        )
    paired = left.shape[0] == right.shape[0]
    mean_a, mean_b = _resampled_accuracies([left, right], resamples, seed, paired_seeds=paired)
    differences = mean_a - mean_b  # [B]
    points = float(100.0 * (left.mean() - right.mean()))
    return PairedDifference(points, *_percentiles(differences), float(np.std(differences, ddof=1)))


def verdict(difference: PairedDifference, expected: int | None) -> str:
    """The paired difference a − b read against the paper: `expected` +1 (the paper finds a > b),
    −1 (a < b), 0 (no change), None (no published direction).

    With a direction: "reproduced" when the 95 % interval excludes 0 on the paper's side, "opposite"
    when it excludes 0 on the other side, else "not detected (MDE x.x)". For a claim of no change:
    "no difference (MDE x.x)" or "differs". Without one: "higher", "lower" or "not detected (MDE x.x)".

    >>> verdict(PairedDifference(5.0, 1.0, 9.0, 2.0), +1), verdict(PairedDifference(5.0, 1.0, 9.0, 2.0), -1)
    ('reproduced', 'opposite')
    >>> verdict(PairedDifference(1.0, -2.0, 4.0, 1.5), +1)
    'not detected (MDE 4.2)'
    """
    above, below = difference.low > 0, difference.high < 0
    undetected = f"(MDE {difference.mde:.1f})"
    if expected == 0:
        return "differs" if above or below else f"no difference {undetected}"
    if not (above or below):
        return f"not detected {undetected}"
    if expected is None:
        return "higher" if above else "lower"
    return "reproduced" if above == (expected > 0) else "opposite"


def relative_change(new: float, old: float) -> float:
    """Relative change in percent, as the paper reports it: (new − old) / old × 100
    (NaN when old is 0 or either value is missing). Reproduces the paper's abstract, GRPO-D vs
    SFT and vs GRPO on geometry with Qwen2-VL-2B (Table 1: 34.35, 32.49, 30.24):

    >>> round(relative_change(34.35, 32.49), 2), round(relative_change(34.35, 30.24), 2)
    (5.72, 13.59)
    """
    if old is None or new is None or old == 0 or math.isnan(old) or math.isnan(new):
        return math.nan
    return (new - old) / old * 100.0


# Student-t over seeds: the bands of learning curves (a few seeds, one value per seed and step).


def t_cdf(t: float, df: int) -> float:
    """P(T ≤ t) for Student's t with integer `df`, from the finite series of Abramowitz & Stegun
    26.7.3 (odd df) and 26.7.4 (even df).

    >>> round(t_cdf(4.302653, 2), 4), round(t_cdf(-12.7062, 1), 4)
    (0.975, 0.025)
    """
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2, total, term = math.cos(theta) ** 2, 1.0, 1.0
    for k in range(3 if df % 2 else 2, df, 2):  # odd: 1 + 2/3 c² + 2·4/(3·5) c⁴ …; even: 1 + c²/2 …
        term *= (k - 1) / k * cos2
        total += term
    if df % 2:
        inside = 2 / math.pi * (theta + (math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0))
    else:
        inside = math.sin(theta) * total  # P(|T| < |t|)
    return 0.5 + math.copysign(inside / 2, t)


def t_quantile(p: float, df: int) -> float:
    """The upper p-quantile (p ≥ 0.5) of Student's t with `df` degrees of freedom, by bisection.

    >>> [round(t_quantile(0.975, df), 3) for df in (1, 2, 10, 1000)]
    [12.706, 4.303, 2.228, 1.962]
    """
    if not 0.5 <= p < 1.0 or df < 1:
        raise ValueError(f"need 0.5 <= p < 1 and df >= 1, got p={p}, df={df}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(100):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2.0


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (sample std,
    ddof = 1): half = t((1 + confidence)/2, n − 1) · s / √n; the half-width is 0 for one value.

    >>> [round(v, 3) for v in mean_ci([1.0, 2.0, 3.0])]   # 4.303 · 1/√3
    [2.0, 2.484]
    >>> mean_ci([37.5])
    (37.5, 0.0)
    """
    xs = [float(v) for v in values]
    if len(xs) < 2:
        return statistics.fmean(xs), 0.0  # fmean raises on no values
    half = t_quantile((1.0 + confidence) / 2.0, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return statistics.fmean(xs), half
