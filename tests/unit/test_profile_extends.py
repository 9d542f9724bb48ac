"""A profile may extend another (`extends: <parent>`): tiny-long and tiny-longer are the tiny profile
from the long and the longer tiny base (tiny-longer with its own screen's counting setting), and nothing
else; a child's values win key by key; a loop or a bad parent is refused."""

import shutil

import pytest

from mr1cli.cli.options import PROFILE_HELP
from mr1cli.config import PROFILES_DIR
from mr1cli.config_loading import load_config, profile_chain
from mr1cli.config_sources import annotated_config
from mr1cli.core.errors import ConfigError
from mr1cli.experiments.launch.slurm import profile_slurm
from mr1cli.experiments.specs import load_spec, plan


def flat(values, prefix=""):
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


@pytest.mark.parametrize("method", ["sft", "grpo", "grpo-d"])
@pytest.mark.parametrize("task", ["counting", "geometry"])
@pytest.mark.parametrize(
    ("profile", "base"), [("tiny-long", "tiny-base-long"), ("tiny-longer", "tiny-base-longer")]
)
def test_tiny_long_is_tiny_from_the_long_base(method, task, profile, base):
    tiny = flat(load_config(method=method, task=task, profile="tiny").to_dict())
    long = flat(load_config(method=method, task=task, profile=profile).to_dict())
    changed = {key: (tiny[key], long[key]) for key in tiny if tiny[key] != long[key]}
    expected = {"profile": ("tiny", profile), "model.name_or_path": ("tiny-base", base)}
    if profile == "tiny-longer" and task == "counting":  # the setting its own screen chose
        expected |= {
            "train.prompts_per_step": (32, 64),
            "data.train": ("synthetic:counting-train-1280", "synthetic:counting-train-2560"),
        }
    assert changed == expected


@pytest.mark.parametrize(("base", "scenes"), [("tiny-base-long", 163840), ("tiny-base-longer", 327680)])
def test_the_long_base_recipes_are_the_base_recipe_with_a_longer_warmup(base, scenes):
    short = flat(load_config(method="sft", task="counting", profile="tiny-base").to_dict())
    long = flat(load_config(method="sft", task="counting", profile=base).to_dict())
    changed = {key: (short[key], long[key]) for key in short if short[key] != long[key]}
    assert changed == {
        "profile": ("tiny-base", base),
        "data.warmup": ("synthetic:counting-warmup-20480", f"synthetic:counting-warmup-{scenes}"),
    }
    assert profile_chain(base) == ["tiny-base", base]


def test_tiny_long_plans_the_tiny_grid_with_its_seeds():
    for experiment in ("exp1-format-reward", "exp3-same-task"):
        spec = load_spec(experiment)
        tiny, long = plan(spec, "tiny", 0), plan(spec, "tiny-long", 0)
        assert [(r.grid, r.method, r.train_task, r.setting, r.seed) for r in tiny] == [
            (r.grid, r.method, r.train_task, r.setting, r.seed) for r in long
        ]
        assert max(r.seed for r in long if r.seed is not None) == 2  # the tiny profile's 3 seeds


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    monkeypatch.setenv("MR1_PROFILES_DIR", str(tmp_path))
    return tmp_path


def test_a_child_wins_key_by_key_and_the_parents_task_defaults_apply(profiles):
    (profiles / "parent.yaml").write_text(
        "base:\n  train: {learning_rate: 1.0e-4, max_steps: 40}\n  rl: {temperature: 0.9}\n"
        "by_method:\n  sft:\n    train: {learning_rate: 1.0e-3}\n"
    )
    (profiles / "child.yaml").write_text(
        "extends: parent\nbase:\n  train: {max_steps: 80}\nby_method:\n  sft:\n    train: {seed: 7}\n"
    )
    child = load_config(method="sft", task="counting", profile="child")
    assert (child.train.learning_rate, child.train.max_steps, child.train.seed) == (1e-3, 80, 7)
    assert child.rl.temperature == 0.9
    assert child.data.train_limit == 100  # the counting task's "*" default, as for the parent


def test_a_child_keeps_the_parents_launch_section_and_source_comments(profiles):
    shutil.copy(PROFILES_DIR / "paper.yaml", profiles / "paper.yaml")
    (profiles / "paper-mine.yaml").write_text(
        "extends: paper\nbase:\n  train: {max_steps: 10}   # mine\nlaunch:\n  slurm: {gpus: 4}\n"
    )
    assert profile_slurm("paper-mine") == {**profile_slurm("paper"), "gpus": 4}
    text = annotated_config(
        load_config(method="grpo", task="counting", profile="paper-mine"), "paper-mine", "counting", "grpo"
    )
    assert "max_steps: 10  # mine" in text
    assert "learning_rate: 1.0e-06  # inferred (R1-V)" in text


def test_a_loop_or_a_bad_parent_is_refused(profiles):
    (profiles / "a.yaml").write_text("extends: b\n")
    (profiles / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ConfigError, match=r"extends 'a', which extends it back \(a → b → a\)"):
        load_config(method="sft", task="counting", profile="a")
    (profiles / "c.yaml").write_text("extends: tinny\n")
    with pytest.raises(ConfigError, match="unknown profile 'tinny'"):
        load_config(method="sft", task="counting", profile="c")
    (profiles / "d.yaml").write_text("extends: [a, b]\n")
    with pytest.raises(ConfigError, match=r"d.yaml: extends: expected the name of another profile"):
        load_config(method="sft", task="counting", profile="d")


def test_the_profile_help_names_every_shipped_profile():
    shipped = {path.stem for path in PROFILES_DIR.glob("*.yaml") if not path.stem.startswith("tiny-base")}
    assert shipped == {"paper", "tiny", "tiny-long", "tiny-longer"}
    assert [name for name in sorted(shipped) if name not in PROFILE_HELP.replace(",", " ").split()] == []
