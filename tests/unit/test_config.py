"""Config layering, overrides, type checks and run fingerprints."""

import json
from pathlib import Path

import pytest

from mr1cli.config import describe_fields
from mr1cli.config_loading import config_from_dict, load_config, parse_override
from mr1cli.core.errors import ConfigError
from mr1cli.zoo.builds import warmup_key


def test_profile_layers_task_and_method():
    cfg = load_config(method="grpo-d", task="geometry", profile="paper")
    assert cfg.model.name_or_path == "Qwen/Qwen2-VL-2B-Instruct"
    assert cfg.rl.kl == {"name": "dynamic", "beta_min": 0.0, "beta_max": 0.02, "explore_frac": 0.3}
    assert cfg.rl.num_generations == 8
    sft = load_config(method="sft", task="counting", profile="paper")
    assert sft.train.learning_rate == 2e-5 and sft.data.train_limit == 100 and sft.rl.kl == {}
    assert load_config(method="grpo", task="counting", profile="paper").rl.kl == {
        "name": "constant",
        "beta": 0.04,
    }


def test_paper_profile_does_what_r1v_ran():
    for task in ("counting", "geometry"):
        cfg = load_config(method="grpo-d", task=task, profile="paper")
        assert (cfg.train.lr_scheduler, cfg.train.warmup_ratio, cfg.train.weight_decay) == (
            "linear",
            0.0,
            0.0,
        )
        assert cfg.rl.skip_zero_advantage_steps is False
        assert (cfg.reward.scoring, cfg.eval.scoring) == ("r1v", "r1v")
        sft = load_config(method="sft", task=task, profile="paper").train
        assert (sft.learning_rate, sft.lr_scheduler, sft.warmup_ratio, sft.epochs) == (
            2e-5,
            "cosine",
            0.1,
            1.0,
        )
    tiny = load_config(method="grpo-d", task="counting", profile="tiny")
    assert (tiny.reward.scoring, tiny.train.lr_scheduler, tiny.rl.skip_zero_advantage_steps) == (
        "strict",
        "constant",
        True,
    )


def test_config_file_then_overrides_win(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("rl:\n  kl: {beta: 0.03}\n  temperature: 0.9\nreward:\n  weights: {format: 0.25}\n")
    cfg = load_config(method="grpo", task="counting", config_file=path, overrides=["rl.kl.beta=0.05"])
    assert cfg.rl.kl["beta"] == 0.05 and cfg.rl.temperature == 0.9
    assert cfg.reward.weights == {"accuracy": 1.0, "format": 0.25}


def test_kl_schedule_override_for_ablations():
    cfg = load_config(method="grpo", task="counting", overrides=["rl.kl.name=cosine", "rl.kl.beta_min=0.01"])
    assert cfg.rl.kl == {"name": "cosine", "beta_min": 0.01, "beta_max": 0.0}


def test_each_task_holds_its_paper_beta_once():
    counting = load_config(method="grpo-d", task="counting")
    assert counting.rl.kl == {"name": "dynamic", "beta_min": 0.04, "beta_max": 0.10, "explore_frac": 0.3}
    assert load_config(method="grpo", task="geometry").rl.kl == {"name": "constant", "beta": 0.01}


@pytest.mark.parametrize(
    ("method", "override", "message"),
    [
        ("grpo-d", "rl.kl.beta=0.02", "rl.kl.beta is not used by the 'dynamic' KL schedule"),
        ("grpo", "rl.kl.explore_frac=0.5", "rl.kl.explore_frac is not used by the 'constant' KL schedule"),
        ("sft", "rl.kl.beta=0.02", "rl.kl.beta is not used by method 'sft'"),
        ("grpo", "rl.beta=0.02", "config key 'rl.beta' is now 'rl.kl.beta'"),
        ("grpo-d", "rl.kl_schedule=linear", "config key 'rl.kl_schedule' is now 'rl.kl.name'"),
    ],
)
def test_a_kl_parameter_the_schedule_does_not_use_is_an_error(method, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(method=method, task="counting", overrides=[override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rl.temprature=1", "unknown config key 'rl.temprature' (did you mean 'rl.temperature'?)"),
        ("rl.kl.beta=abc", "rl.kl.beta: expected a number"),
        ("train.seed=1.5", "train.seed: expected an integer"),
        ("model.freeze_vision=maybe", "model.freeze_vision: expected true or false"),
        ("rl.num_generations=1", "num_generations"),
        ("rl.kl.beta=-0.1", "rl.kl.beta must be >= 0"),
        ("rl.temperature=0", "rl.temperature must be > 0"),
        ("reward.weights.style=1", "unknown reward 'style'"),
        ("rl.kl.name=dynamc", "did you mean 'dynamic'"),
        ("eval.scoring=loose", "eval.scoring must be one of"),
        ("nonsense", "key=value"),
        ("model=3", "expected a section"),
        ("data.probe_size=-1", "data.probe_size must be >= 0"),
        ("model.dtype=float16", "model.dtype=float16 is not supported (it needs loss scaling)"),
        ("rl.rollout_batch=-1", "rl.rollout_batch must be >= 0"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(method="grpo", task="counting", overrides=[override])
    assert message in str(error.value)


def test_a_probe_needs_a_heldout_set():
    with pytest.raises(ConfigError, match=r"data\.probe_size needs data\.heldout"):
        load_config(method="grpo", task="counting", overrides=["data.heldout=", "data.probe_size=8"])
    heldout = "synthetic:counting-heldout-100"
    cfg = load_config(
        method="sft", task="counting", overrides=[f"data.heldout={heldout}", "data.probe_size=8"]
    )
    assert (cfg.data.heldout, cfg.data.probe_size) == (heldout, 8)


def test_unknown_method_task_profile():
    for kwargs, message in [
        ({"method": "grpo_d", "task": "counting"}, "did you mean 'grpo-d'"),
        ({"method": "grpo", "task": "count"}, "unknown task"),
        ({"method": "grpo", "task": "counting", "profile": "tiy"}, "did you mean 'tiny'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(**kwargs)


def test_bad_config_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(method="grpo", task="counting", config_file=bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(method="grpo", task="counting", config_file=tmp_path / "missing.yaml")


def test_fingerprint_tracks_results_not_logging():
    base = load_config(method="grpo", task="counting")
    assert base.fingerprint() == load_config(method="grpo", task="counting").fingerprint()
    assert (
        base.fingerprint()
        != load_config(method="grpo", task="counting", overrides=["rl.kl.beta=0.05"]).fingerprint()
    )
    assert (
        base.fingerprint()
        == load_config(method="grpo", task="counting", overrides=["train.log_every=5"]).fingerprint()
    )
    assert base.run_name().startswith("grpo-counting-")


def test_round_trip_through_dict():
    cfg = load_config(method="grpo-d", task="geometry", overrides=["reward.weights.format=0"])
    assert config_from_dict(cfg.to_dict()) == cfg


def test_every_field_has_help():
    rows = describe_fields()
    assert len(rows) > 40
    assert all(help_text for _, _, help_text in rows)


def test_scientific_notation_without_a_dot_is_a_number():
    assert (
        load_config(
            method="grpo", task="counting", overrides=["train.learning_rate=3e-3"]
        ).train.learning_rate
        == 0.003
    )


def test_parse_override_types():
    assert parse_override("a.b=true") == {"a": {"b": True}}
    assert parse_override("model.name_or_path=Qwen/Qwen2-VL-2B-Instruct") == {
        "model": {"name_or_path": "Qwen/Qwen2-VL-2B-Instruct"}
    }


def test_show_config_prints_the_source_of_each_paper_value(capsys):
    import yaml

    from mr1cli.cli import main

    assert (
        main(["train", "--method", "grpo-d", "--task", "geometry", "--profile", "paper", "--show-config"])
        == 0
    )
    out = capsys.readouterr().out
    assert "  lr_scheduler: linear  # inferred (R1-V)" in out
    assert "  skip_zero_advantage_steps: false  # inferred (R1-V)" in out
    assert "  scoring: r1v  # inferred (R1-V)" in out
    assert "  dtype: auto  # ours: bf16 compute on CUDA" in out and "the COMPUTE dtype" in out
    assert yaml.safe_load(out) == load_config(method="grpo-d", task="geometry", profile="paper").to_dict()


def test_a_run_directory_saved_by_an_earlier_version_still_loads():
    # config.json of a GRPO run made before the KL parameters moved into rl.kl (flat rl.beta…,
    # train.tensorboard): `mr1 eval` on such a run reads it with today's shape.
    saved = json.loads((Path(__file__).parent / "saved_configs" / "grpo-counting-v0.json").read_text())
    assert saved["rl"]["beta"] == 0.04 and "kl" not in saved["rl"] and saved["train"]["tensorboard"] is False
    cfg = config_from_dict(saved)
    assert cfg.rl.kl == {"name": "constant", "beta": 0.04} and cfg.train.report_to == []
    assert cfg.method == "grpo" and cfg.rl.num_generations == saved["rl"]["num_generations"]


def test_the_tiny_base_cache_key_covers_only_what_the_warm_up_reads():
    base = load_config(method="sft", task="counting", profile="tiny-base")
    unrelated = load_config(
        method="sft",
        task="counting",
        profile="tiny-base",
        overrides=[
            "rl.num_generations=4",
            "data.heldout=synthetic:counting-heldout-50",
            "train.probe_every=5",
        ],
    )
    assert base.fingerprint() != unrelated.fingerprint()
    assert warmup_key(base) == warmup_key(unrelated)
    for changed in (
        "train.learning_rate=1e-3",
        "data.warmup=synthetic:counting-warmup-10",
        "sft.target=answer",
    ):
        other = load_config(method="sft", task="counting", profile="tiny-base", overrides=[changed])
        assert warmup_key(other) != warmup_key(base), changed
