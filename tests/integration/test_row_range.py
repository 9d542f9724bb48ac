"""A source's row range, `<source>[start:stop]`, and the validation split it defines: the tiny
profile's RL screens chose their settings on rows 1,001-2,000 of the held-out generator."""

import json

import pytest

from mr1cli.cli.app import main
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError, DataError
from mr1cli.data.sources import load_split


def ids(source, **kwargs):
    loaded = load_split(source, task="counting", synthetic_image_size=32, **kwargs)
    return [example.id for example in loaded.examples]


def test_a_row_range_keeps_those_examples_of_the_source(cache):
    whole = ids("synthetic:counting-heldout-10")
    assert ids("synthetic:counting-heldout-10[6:9]") == whole[6:9]
    assert ids("synthetic:counting-heldout-10[6:]") == whole[6:]
    assert ids("synthetic:counting-heldout-10[:2]") == whole[:2]
    assert ids("synthetic:counting-heldout-10[6:]", limit=2) == whole[6:8]  # the limit counts from the start


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        (
            "synthetic:counting-heldout-10[6:3]",
            ConfigError,
            r"empty row range .*stop \(3\) must be above start \(6\)",
        ),
        (
            "synthetic:counting-heldout-10[a:3]",
            ConfigError,
            r"bad row range .*expected <source>\[start:stop\]",
        ),
        (
            "synthetic:counting-heldout-10[12:]",
            DataError,
            r"\[12:\]: the range starts past the source's 10 usable",
        ),
    ],
)
def test_a_bad_row_range_says_what_is_wrong(cache, source, error, message):
    with pytest.raises(error, match=message):
        ids(source)


def test_the_validation_set_is_apart_from_the_reported_sets_and_from_the_run_name():
    cfg = load_config(method="grpo-d", task="counting", profile="tiny")
    assert cfg.data.validation == "synthetic:counting-heldout-2000[1000:2000]"
    assert cfg.data.heldout == "synthetic:counting-heldout-1000"  # rows 1-1,000 of the same generator
    moved = load_config(
        method="grpo-d", task="counting", profile="tiny", overrides=["data.validation=x.jsonl"]
    )
    assert moved.run_name() == cfg.run_name()  # training never reads it
    assert load_config(method="grpo-d", task="counting", profile="paper").data.validation == ""


def test_eval_on_the_validation_split(tmp_path, cache, tiny_model_dir, capsys):
    given = ["data.validation=synthetic:counting-heldout-8[5:8]", "data.synthetic_image_size=32"]
    out = tmp_path / "ev"
    args = ["eval", "--checkpoint", str(tiny_model_dir), "--task", "counting", "--split", "validation"]
    assert main([*args, "--output", str(out), *given]) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == ["heldout-6", "heldout-7", "heldout-8"]
    assert json.loads((out / "metrics.json").read_text())["n"] == 3
    assert main([*args, "--limit", "2", *given]) == 2
    assert (
        "--limit works with --split test or train; the validation set is evaluated whole"
        in capsys.readouterr().err
    )
