"""KL schedules: the paper's Eq. 3 at hand-computed points, the other shapes, validation."""

import math

import pytest

from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import KL_SCHEDULES, build_schedule


def schedule(name, **params):
    return build_schedule(name, params)


@pytest.mark.parametrize(
    ("step", "expected"),
    # counting: β_min 0.04, β_max 0.10, β_mid 0.07; 101 optimizer steps, so s = 0…100, t = 100, w = 30
    [(0, 0.07), (15, 0.055), (30, 0.04), (65, 0.07), (100, 0.10), (150, 0.10), (-5, 0.07)],
)
def test_dynamic_counting_values(step, expected):
    assert schedule("dynamic", beta_min=0.04, beta_max=0.10)(step, 101) == pytest.approx(expected)


def test_dynamic_geometry_touches_zero_but_needs_reference():
    sched = schedule("dynamic", beta_min=0.0, beta_max=0.02)
    assert [round(sched(s, 11), 6) for s in (0, 3, 10)] == [0.01, 0.0, 0.02]
    assert sched.can_be_positive(10)


def test_schedule_that_starts_at_zero_still_needs_reference():
    sched = schedule("linear", beta_min=0.0, beta_max=0.05)
    assert sched(0, 10) == 0.0
    assert sched.can_be_positive(10)
    assert not schedule("constant", beta=0.0).can_be_positive(10)


def test_dynamic_extreme_explore_fractions():
    assert schedule("dynamic", beta_min=0.02, beta_max=0.06, explore_frac=0.0)(0, 10) == pytest.approx(0.02)
    assert schedule("dynamic", beta_min=0.02, beta_max=0.06, explore_frac=1.0)(9, 10) == pytest.approx(0.02)


def test_constant_holds_beta():
    assert [schedule("constant", beta=0.04)(s, 100) for s in (0, 7, 100)] == [0.04, 0.04, 0.04]


@pytest.mark.parametrize(
    ("name", "step", "expected"),
    [
        ("linear", 25, 0.01 + 0.04 * 0.25),
        ("cosine", 50, 0.01 + 0.04 * 0.5),
        ("cosine", 25, 0.01 + 0.04 * (1 - math.cos(math.pi / 4)) / 2),
        ("exponential", 50, 0.01 * 5**0.5),
        ("step", 30, 0.01),
        ("step", 31, 0.05),
    ],
)
def test_other_shapes(name, step, expected):
    assert schedule(name, beta_min=0.01, beta_max=0.05)(step, 101) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("constant", {"beta": -0.1}, "rl.kl.beta must be >= 0"),
        ("dynamic", {"beta_min": 0.1, "beta_max": 0.05}, "must not exceed"),
        ("dynamic", {"explore_frac": 1.5}, "explore_frac"),
        ("exponential", {"beta_min": 0.0, "beta_max": 0.1}, "beta_min > 0"),
        ("cosin", {}, "did you mean 'cosine'"),
        (
            "dynamic",
            {"beta": 0.02},
            r"rl.kl.beta is not used by the 'dynamic' KL schedule \(it takes: beta_min",
        ),
        ("constant", {"beta_min": 0.02}, "rl.kl.beta_min is not used by the 'constant' KL schedule"),
        ("constant", {"beta": "high"}, "rl.kl.beta: expected a number"),
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


@pytest.mark.parametrize("total_steps", [13, 100])
def test_dynamic_is_end_inclusive(total_steps):
    # The first optimizer step (s = 0) gets β_mid, the last (s = total_steps − 1 = t) gets β_max;
    # 13 steps is the few-shot counting run (100 samples × 2 epochs / 16 prompts per step).
    for beta_min, beta_max in ((0.04, 0.10), (0.0, 0.02)):
        sched = schedule("dynamic", beta_min=beta_min, beta_max=beta_max)
        assert sched(0, total_steps) == pytest.approx((beta_min + beta_max) / 2)
        assert sched(total_steps - 1, total_steps) == pytest.approx(beta_max)
        assert max(sched(s, total_steps) for s in range(total_steps)) == pytest.approx(beta_max)


def test_one_step_run_is_the_schedule_start():
    assert schedule("dynamic", beta_min=0.04, beta_max=0.10)(0, 1) == pytest.approx(0.07)
    assert schedule("linear", beta_min=0.0, beta_max=0.1)(0, 1) == 0.0


@pytest.mark.parametrize("name", ["linear", "cosine", "exponential", "step"])
def test_shaped_schedules_reach_beta_max_on_the_last_step(name):
    sched = schedule(name, beta_min=0.01, beta_max=0.05)
    assert sched(0, 13) == pytest.approx(0.01)
    assert sched(12, 13) == pytest.approx(0.05)
