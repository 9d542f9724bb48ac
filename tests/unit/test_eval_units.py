"""Every model is evaluated on the test set and, where the profile names one, on the held-out set:
their cached evaluation folders, when a unit counts as done, and the record fields read back from
the saved evaluations (accuracies, examples hashes, per-example correctness)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mr1cli.data.sources import load_split
from mr1cli.evaluation.provenance import examples_hash
from mr1cli.experiments.units import (
    Unit,
    eval_config,
    eval_dir,
    eval_key,
    eval_splits,
    evaluation_fields,
    unit_done,
)

PROFILE = """
base:
  model: {name_or_path: tiny-base}
  data: {synthetic_image_size: 112}
by_task:
  counting:
    data: {train: synthetic:counting-train-40, test: synthetic:counting-test-4, heldout: synthetic:counting-heldout-3}
  geometry:
    data: {train: synthetic:geometry-train-40, test: synthetic:geometry-test-4}
"""


@pytest.fixture
def profile(tmp_path, monkeypatch) -> str:
    """A `mini` profile: counting has a held-out set, geometry has none."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mini.yaml").write_text(PROFILE)
    monkeypatch.setenv("MR1_PROFILES_DIR", str(tmp_path / "profiles"))
    return "mini"


def save_evaluation(folder: Path, correct: list[bool], examples_hash: str) -> None:
    """An evaluation folder as `mr1 eval` writes it (only the fields read back here)."""
    folder.mkdir(parents=True)
    accuracy = 100.0 * sum(correct) / len(correct)
    metrics = {"accuracy": accuracy, "accuracy_r1v": accuracy, "accuracy_strict": accuracy - 1}
    metrics |= {"format_rate": 100.0, "scoring": "r1v", "provenance": {"test_hash": examples_hash}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    rows = [{"id": str(i), "correct": ok} for i, ok in enumerate(correct)]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_the_held_out_set_is_evaluated_where_the_profile_names_one(profile):
    assert eval_splits(profile, "counting") == ("test", "heldout")
    assert eval_splits(profile, "counting", trained_on="counting") == ("test", "heldout")
    assert eval_splits(profile, "counting", trained_on="geometry") == ("test",)  # cross-task: test only
    assert eval_splits(profile, "geometry") == ("test",)
    home = Path("runs/model")
    test, heldout = (eval_dir(home, profile, "counting", split) for split in ("test", "heldout"))
    assert test.name.startswith("counting-test-") and heldout.name.startswith("counting-heldout-")
    assert test.parent == heldout.parent == home / "eval" and test.name[-10:] != heldout.name[-10:]


def test_the_test_set_keeps_its_cache_key(profile):
    # the key of an evaluation on data.test is computed as before held-out sets existed, so the
    # evaluations already cached in run directories are reused
    cfg = eval_config(profile, "counting")
    content = {
        "test": cfg.data.test,
        "limit": cfg.data.test_limit,
        "eval": cfg.eval.__dict__,
        "pixels": [cfg.model.min_pixels, cfg.model.max_pixels],
        "image": cfg.data.synthetic_image_size,
    }
    assert eval_key(cfg) == hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]


def test_a_unit_is_done_once_both_sets_are_evaluated_and_its_record_reads_both(profile, tmp_path):
    unit = Unit("base/counting", profile, tmp_path / "base", ("counting",))
    save_evaluation(eval_dir(unit.home, profile, "counting", "test"), [True, False, True, True], "t-hash")
    assert not unit_done(unit)  # the held-out evaluation is still missing
    save_evaluation(eval_dir(unit.home, profile, "counting", "heldout"), [False, False, True], "h-hash")
    assert unit_done(unit)
    fields = evaluation_fields(unit.home, profile, "counting")
    assert fields == {
        "accuracy": 75.0,
        "accuracy_r1v": 75.0,
        "accuracy_strict": 74.0,
        "format_rate": 100.0,
        "scoring": "r1v",
        "test_hash": "t-hash",
        "test_correct": "1011",
        "heldout_accuracy": pytest.approx(100 / 3),
        "heldout_hash": "h-hash",
        "heldout_correct": "001",
    }


def test_without_a_held_out_set_the_record_says_none(profile, tmp_path):
    home = tmp_path / "run"
    save_evaluation(eval_dir(home, profile, "geometry", "test"), [False, True], "g-hash")
    assert unit_done(Unit("base/geometry", profile, home, ("geometry",)))
    fields = evaluation_fields(home, profile, "geometry")
    assert fields["heldout_accuracy"] is None and "heldout_correct" not in fields
    assert (fields["accuracy"], fields["test_correct"]) == (50.0, "01")


def test_eval_of_the_held_out_set_takes_no_limit():
    from mr1cli.core.errors import ConfigError
    from mr1cli.runs.eval import run_eval_command

    with pytest.raises(ConfigError, match="--limit works with --split test or train"):
        run_eval_command(
            task="counting",
            checkpoint="tiny-base",
            profile="tiny",
            split="heldout",
            limit=5,
            output=None,
            rescore=None,
            scoring=None,
            overrides=[],
        )


def test_a_test_sets_hash_follows_its_contents_not_where_it_is_cached(tmp_path, monkeypatch):
    def hashed(cache: Path) -> tuple[str, list]:
        monkeypatch.setenv("MR1_CACHE", str(cache))
        examples = load_split("synthetic:counting-test-4", task="counting", synthetic_image_size=32).examples
        return examples_hash(examples), examples

    first, examples = hashed(tmp_path / "one")
    second, _ = hashed(tmp_path / "two")
    assert first == second and examples[0].image.path is not None
    examples[0].image.path.write_bytes(examples[0].image.path.read_bytes() + b"\0")
    assert examples_hash(examples) != first
