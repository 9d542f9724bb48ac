"""Adding a reward and a KL schedule as the README's code map says: one registered function or
dataclass each, defined here only, then used through the ordinary config keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import KL_SCHEDULES, KLSchedule, schedule_from_settings
from mr1cli.tasks.rewards import REWARDS, score_completion


def brevity_reward(completion: str, truth: str, *, task: str, scoring: str = "strict") -> float:
    """1 for a completion of at most 5 words, else 0."""
    return float(len(completion.split()) <= 5)


@dataclass(frozen=True, kw_only=True)
class Halfway(KLSchedule):
    """β_early for the first half of training, β_late after it."""

    beta_early: float = 0.0
    beta_late: float = 0.1
    formula = "s ≤ t/2: β_early;  s > t/2: β_late"

    def value(self, step: int, last_step: int) -> float:
        return self.beta_early if step <= last_step / 2 else self.beta_late


@pytest.fixture
def plugins():
    REWARDS.add("brevity", brevity_reward)
    KL_SCHEDULES.add("halfway", Halfway)
    yield
    REWARDS.remove("brevity")
    KL_SCHEDULES.remove("halfway")


def test_a_new_reward_is_weighted_by_its_name(plugins):
    cfg = load_config(method="grpo", task="counting", overrides=["reward.weights.brevity=0.5"])
    assert cfg.reward.weights == {"accuracy": 1.0, "format": 1.0, "brevity": 0.5}
    scored = score_completion("<answer> 3 </answer>", "3", task="counting", weights=cfg.reward.weights)
    assert scored.components == {"accuracy": 1.0, "format": 0.0, "brevity": 1.0}
    assert scored.total == 1.5


def test_a_new_kl_schedule_owns_its_parameters(plugins):
    cfg = load_config(
        method="grpo-d", task="counting", overrides=["rl.kl.name=halfway", "rl.kl.beta_late=0.2"]
    )
    assert cfg.rl.kl == {"name": "halfway", "beta_early": 0.0, "beta_late": 0.2}
    schedule = schedule_from_settings(cfg.rl.kl)
    assert [schedule(s, 11) for s in (0, 5, 6, 10)] == [0.0, 0.0, 0.2, 0.2]
    with pytest.raises(ConfigError, match=r"rl\.kl\.beta_min is not used by the 'halfway' KL schedule"):
        load_config(method="grpo-d", task="counting", overrides=["rl.kl.name=halfway", "rl.kl.beta_min=0.1"])
