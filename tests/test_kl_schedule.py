"""KL schedules: the paper's Eq. 3 at hand-computed points, the other shapes, validation."""

import math

import pytest

from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import KL_SCHEDULES, build_schedule


def schedule(name, **params):
    values = {"beta": 0.04, "beta_min": 0.0, "beta_max": 0.0, "explore_frac": 0.3, **params}
    return build_schedule(name, **values)


@pytest.mark.parametrize(
    ("step", "expected"),
    # counting: β_min 0.04, β_max 0.10, β_mid 0.07, t = 100, w = 30
    [(0, 0.07), (15, 0.055), (30, 0.04), (65, 0.07), (100, 0.10), (150, 0.10), (-5, 0.07)],
)
def test_dynamic_counting_values(step, expected):
    assert schedule("dynamic", beta_min=0.04, beta_max=0.10)(step, 100) == pytest.approx(expected)


def test_dynamic_geometry_touches_zero_but_needs_reference():
    sched = schedule("dynamic", beta_min=0.0, beta_max=0.02)
    assert [round(sched(s, 10), 6) for s in (0, 3, 10)] == [0.01, 0.0, 0.02]
    assert sched.can_be_positive(10)


def test_schedule_that_starts_at_zero_still_needs_reference():
    sched = schedule("linear", beta_min=0.0, beta_max=0.05)
    assert sched(0, 10) == 0.0
    assert sched.can_be_positive(10)
    assert not schedule("constant", beta=0.0).can_be_positive(10)


def test_dynamic_extreme_explore_fractions():
    assert schedule("dynamic", beta_min=0.02, beta_max=0.06, explore_frac=0.0)(0, 10) == pytest.approx(0.02)
    assert schedule("dynamic", beta_min=0.02, beta_max=0.06, explore_frac=1.0)(10, 10) == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("name", "step", "expected"),
    [
        ("constant", 7, 0.04),
        ("linear", 25, 0.01 + 0.04 * 0.25),
        ("cosine", 50, 0.01 + 0.04 * 0.5),
        ("cosine", 25, 0.01 + 0.04 * (1 - math.cos(math.pi / 4)) / 2),
        ("exponential", 50, 0.01 * 5**0.5),
        ("step", 30, 0.01),
        ("step", 31, 0.05),
    ],
)
def test_other_shapes(name, step, expected):
    assert schedule(name, beta_min=0.01, beta_max=0.05)(step, 100) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("constant", {"beta": -0.1}, "rl.beta must be >= 0"),
        ("dynamic", {"beta_min": 0.1, "beta_max": 0.05}, "must not exceed"),
        ("dynamic", {"explore_frac": 1.5}, "explore_frac"),
        ("exponential", {"beta_min": 0.0, "beta_max": 0.1}, "beta_min > 0"),
        ("cosin", {}, "did you mean 'cosine'"),
    ],
)
def test_invalid_parameters_are_refused(name, params, message):
    with pytest.raises(ConfigError, match=message):
        schedule(name, **params)


def test_every_schedule_documents_its_formula():
    for name in KL_SCHEDULES:
        assert KL_SCHEDULES.get(name).formula, name


def test_total_steps_must_be_positive():
    with pytest.raises(ValueError):
        schedule("constant")(0, 0)
