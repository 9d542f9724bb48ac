"""The tiny base's weights are checked against the recorded sha256: a mismatch is one loud warning
naming both hashes and what it means; a match or an unrecorded config says nothing alarming."""

import hashlib
import json
import logging

import pytest

from mr1cli.planning.shapes import KNOWN_SHAPES, TINY
from mr1cli.zoo import builds


@pytest.fixture
def built(tmp_path, monkeypatch):
    final = tmp_path / "models" / "tiny-base-0123456789ab" / "final"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(b"weights")
    expected = tmp_path / "tiny-base.expected.json"
    monkeypatch.setattr(builds, "EXPECTED_DIR", tmp_path)
    builds.check_tiny_base.cache_clear()
    yield final, expected
    builds.check_tiny_base.cache_clear()


def record(expected, key, sha):
    expected.write_text(
        json.dumps({"cache_key": key, "sha256": sha, "command": "mr1 base --rebuild --record"})
    )


def test_a_mismatch_is_one_warning_naming_both_hashes(built, caplog):
    final, expected = built
    record(expected, final.parent.name, "ab" * 32)
    found = hashlib.sha256(b"weights").hexdigest()
    with caplog.at_level(logging.INFO, logger="mr1cli.zoo.builds"):
        assert builds.check_tiny_base(final) is False
        assert builds.check_tiny_base(final) is False  # asked again: said once per process
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert found in warnings[0] and "ab" * 32 in warnings[0]
    assert (
        "will not match the committed results/" in warnings[0]
        and "mr1 base tiny-base --rebuild" in warnings[0]
    )


def test_the_recorded_hash_passes_quietly(built, caplog):
    final, expected = built
    record(expected, final.parent.name, hashlib.sha256(b"weights").hexdigest())
    with caplog.at_level(logging.INFO, logger="mr1cli.zoo.builds"):
        assert builds.check_tiny_base(final) is True
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_another_config_has_no_expected_hash(built, caplog):
    final, expected = built
    record(expected, "tiny-base-ffffffffffff", "ab" * 32)
    with caplog.at_level(logging.INFO, logger="mr1cli.zoo.builds"):
        assert builds.check_tiny_base(final) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("base", builds.TINY_BASES)
def test_the_repository_records_the_hash_of_each_base_config(base):
    """Each tiny base's committed expected hash belongs to its recipe in experiments/profiles."""
    recorded = json.loads(builds.expected_file(base).read_text())
    assert recorded["cache_key"] == builds.tiny_base_dir(base).name
    assert len(recorded["sha256"]) == 64 and recorded["command"].startswith("mr1 base")
    assert recorded["build_seconds"] > 0


def test_the_long_bases_hash_is_checked_against_its_own_record(tmp_path, monkeypatch):
    final = tmp_path / "tiny-base-long-0123456789ab" / "final"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(builds, "EXPECTED_DIR", tmp_path)
    record(tmp_path / "tiny-base.expected.json", final.parent.name, "ab" * 32)  # the other base's file
    record(
        tmp_path / "tiny-base-long.expected.json", final.parent.name, hashlib.sha256(b"weights").hexdigest()
    )
    builds.check_tiny_base.cache_clear()
    try:
        assert builds.check_tiny_base(final) is True
    finally:
        builds.check_tiny_base.cache_clear()


@pytest.mark.parametrize("base", builds.TINY_BASES)
def test_the_planner_knows_each_bases_shape_without_building_it(base):
    assert KNOWN_SHAPES.get(base) == TINY
