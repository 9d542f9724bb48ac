"""Statistics for results tables: Student-t intervals over seeds, relative changes, noise verdicts."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


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


def noise_verdict(a: tuple[float, float, int], b: tuple[float, float, int]) -> str:
    """Whether two configurations, each (mean, CI half-width, n seeds), differ beyond seed noise:
    "within noise" when their intervals overlap, "beyond noise" when not, "no CI (1 seed)" when
    neither has two seeds. A one-seed side counts as a point.

    >>> noise_verdict((60.0, 5.0, 2), (52.0, 4.0, 2)), noise_verdict((60.0, 1.0, 3), (52.0, math.nan, 1))
    ('within noise', 'beyond noise')
    """
    if a[2] < 2 and b[2] < 2:
        return "no CI (1 seed)"
    half_a, half_b = (half if n > 1 else 0.0 for _, half, n in (a, b))  # one seed: a point (its CI is NaN)
    overlap = a[0] - half_a <= b[0] + half_b and b[0] - half_b <= a[0] + half_a
    return "within noise" if overlap else "beyond noise"
