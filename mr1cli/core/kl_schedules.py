"""KL coefficient schedules β(s): constant (GRPO), the paper's dynamic one (GRPO-D), and
common shapes for ablations. Each is a stateless function of (step, total_steps), so a
resumed run needs nothing but the step.

s counts optimizer steps from 0 and t is the last one's s: a run of n optimizer steps has
s = 0, 1, …, n − 1 and t = n − 1, so the first step gets β(0) and the last step β(t)
(for GRPO-D: β_mid on the first step, β_max on the last). A one-step run has s = 0, t = 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar

from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import Registry

KL_SCHEDULES: Registry[type[KLSchedule]] = Registry("KL schedule")


@dataclass(frozen=True, kw_only=True)
class KLSchedule:
    """β(s) for s in [0, t]. Each shape declares the parameters it uses as its own fields
    (config `rl.kl.<field>`); `build_schedule` refuses a parameter the shape does not have."""

    formula: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "explore_frac":
                if not 0.0 <= value <= 1.0:
                    raise ConfigError(f"rl.kl.explore_frac must be in [0, 1], got {value}")
            elif value < 0:
                raise ConfigError(f"rl.kl.{f.name} must be >= 0, got {value}")

    def __call__(self, step: int, total_steps: int) -> float:
        """β at optimizer step `step` (0-based) of a run of `total_steps` optimizer steps.

        s = step, t = total_steps − 1 (end-inclusive: the last step reaches the schedule's end).

        >>> Linear(beta_min=0.0, beta_max=0.1)(99, 100)
        0.1
        """
        if total_steps < 1:
            raise ValueError("total_steps must be >= 1")
        last = max(total_steps - 1, 1)  # t; a one-step run is s = 0 of t = 1
        return float(self.value(min(max(step, 0), last), last))

    def value(self, step: int, last_step: int) -> float:
        """β(s) for s = `step` in [0, t], t = `last_step` (the last step's index, ≥ 1)."""
        raise NotImplementedError

    def can_be_positive(self, total_steps: int) -> bool:
        """Whether any step has β > 0: then the reference model must be loaded from the start."""
        return any(self(s, total_steps) > 0.0 for s in range(total_steps + 1))


@dataclass(frozen=True, kw_only=True)
class Ramp(KLSchedule):
    """A shape that moves β between β_min and β_max."""

    beta_min: float = 0.0
    beta_max: float = 0.0

    def _require_min_le_max(self) -> None:
        if self.beta_min > self.beta_max:
            raise ConfigError(
                f"rl.kl.beta_min ({self.beta_min}) must not exceed rl.kl.beta_max ({self.beta_max})"
            )


@KL_SCHEDULES.register("constant")
@dataclass(frozen=True, kw_only=True)
class Constant(KLSchedule):
    """β(s) = beta (plain GRPO).

    >>> Constant(beta=0.04)(10, 100)
    0.04
    """

    beta: float = 0.04

    formula = "β(s) = β"

    def value(self, step: int, last_step: int) -> float:
        return self.beta


@KL_SCHEDULES.register("dynamic")
@dataclass(frozen=True, kw_only=True)
class Dynamic(Ramp):
    """GRPO-D, paper Eq. 3: from β_mid down to β_min over the first w = explore_frac·t steps
    (exploration), then linearly up to β_max at s = t (exploitation); β_mid = (β_min+β_max)/2.

    >>> sched = Dynamic(beta_min=0.04, beta_max=0.10, explore_frac=0.3)
    >>> [round(sched(s, 11), 4) for s in (0, 3, 10)]  # 11 optimizer steps: s = 0…10, t = 10, w = 3
    [0.07, 0.04, 0.1]
    """

    explore_frac: float = 0.3  # w/t (paper: 0.3)
    formula = "s≤w: β_mid − (β_mid − β_min)·s/w;  s>w: β_min + (β_max − β_min)·(s − w)/(t − w)"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require_min_le_max()

    def value(self, step: int, last_step: int) -> float:
        beta_mid = (self.beta_min + self.beta_max) / 2
        explore_steps = self.explore_frac * last_step  # w
        if step <= explore_steps:
            if explore_steps == 0:
                return self.beta_min
            return beta_mid - (beta_mid - self.beta_min) * step / explore_steps  # Eq. 3, s ≤ w
        return self.beta_min + (self.beta_max - self.beta_min) * (step - explore_steps) / (
            last_step - explore_steps
        )  # Eq. 3, w < s ≤ t


@KL_SCHEDULES.register("linear")
@dataclass(frozen=True, kw_only=True)
class Linear(Ramp):
    """β rises linearly from β_min at s = 0 to β_max at s = t.

    >>> Linear(beta_min=0.0, beta_max=0.1)(5, 11)
    0.05
    """

    formula = "β_min + (β_max − β_min)·s/t"

    def value(self, step: int, last_step: int) -> float:
        return self.beta_min + (self.beta_max - self.beta_min) * step / last_step


@KL_SCHEDULES.register("cosine")
@dataclass(frozen=True, kw_only=True)
class Cosine(Ramp):
    """β rises from β_min to β_max along a half cosine.

    >>> round(Cosine(beta_min=0.0, beta_max=0.1)(5, 11), 4)
    0.05
    """

    formula = "β_min + (β_max − β_min)·(1 − cos(π·s/t))/2"

    def value(self, step: int, last_step: int) -> float:
        return (
            self.beta_min + (self.beta_max - self.beta_min) * (1 - math.cos(math.pi * step / last_step)) / 2
        )


@KL_SCHEDULES.register("exponential")
@dataclass(frozen=True, kw_only=True)
class Exponential(Ramp):
    """β moves geometrically from β_min to β_max (both must be > 0).

    >>> round(Exponential(beta_min=0.01, beta_max=0.04)(5, 11), 4)
    0.02
    """

    formula = "β_min·(β_max/β_min)^(s/t)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta_min <= 0 or self.beta_max <= 0:
            raise ConfigError("the exponential KL schedule needs rl.kl.beta_min > 0 and rl.kl.beta_max > 0")

    def value(self, step: int, last_step: int) -> float:
        return self.beta_min * (self.beta_max / self.beta_min) ** (step / last_step)


@KL_SCHEDULES.register("step")
@dataclass(frozen=True, kw_only=True)
class Step(Ramp):
    """β_min during the first explore_frac·t steps, β_max afterwards.

    >>> [Step(beta_min=0.0, beta_max=0.1, explore_frac=0.5)(s, 11) for s in (4, 5, 6)]
    [0.0, 0.0, 0.1]
    """

    explore_frac: float = 0.3
    formula = "s≤w: β_min;  s>w: β_max"

    def value(self, step: int, last_step: int) -> float:
        return self.beta_min if step <= self.explore_frac * last_step else self.beta_max


def schedule_parameters(name: str) -> tuple[str, ...]:
    """The parameters (config keys under `rl.kl`) that schedule `name` takes.

    >>> schedule_parameters("dynamic")
    ('beta_min', 'beta_max', 'explore_frac')
    """
    return tuple(f.name for f in fields(KL_SCHEDULES.get(name)))


def build_schedule(name: str, params: Mapping[str, object]) -> KLSchedule:
    """The registered schedule `name` with `params` validated: a parameter the schedule does not
    take is an error naming the key, never silently ignored.

    >>> build_schedule("constant", {"beta": 0.02})(3, 10)
    0.02
    """
    cls = KL_SCHEDULES.get(name)
    allowed = schedule_parameters(name)
    values: dict[str, float] = {}
    for key, value in params.items():
        if key not in allowed:
            raise ConfigError(
                f"rl.kl.{key} is not used by the '{name}' KL schedule (it takes: {', '.join(allowed)})"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"rl.kl.{key}: expected a number, got {value!r}")
        values[key] = float(value)
    return cls(**values)


def schedule_from_settings(settings: Mapping[str, object]) -> KLSchedule:
    """The schedule a resolved config's `rl.kl` section describes ({name, parameters…}).

    >>> schedule_from_settings({"name": "constant", "beta": 0.04})(0, 10)
    0.04
    """
    params = {key: value for key, value in settings.items() if key != "name"}
    return build_schedule(str(settings["name"]), params)


def schedule_settings(schedule: KLSchedule) -> dict[str, float]:
    """A built schedule's parameters by name (what a resolved config records under `rl.kl`)."""
    return {f.name: getattr(schedule, f.name) for f in fields(schedule)}
