"""One profile's results per folder: `mr1 reproduce` refuses to write a profile's tables over (or
beside) another profile's, names the folder and says how to keep them apart (`--results`)."""

import json

import pytest

from mr1cli.cli.app import main
from mr1cli.core.errors import ConfigError
from mr1cli.experiments.reproduce import refuse_other_profiles, reproduce


@pytest.fixture
def tiny_results(tmp_path):
    folder = tmp_path / "results" / "exp1-format-reward"
    folder.mkdir(parents=True)
    rows = [{"experiment": "exp1-format-reward", "method": "base", "profile": "tiny", "accuracy": 36.6}]
    (folder / "records.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path / "results"


def test_another_profiles_results_are_not_overwritten(tiny_results):
    before = (tiny_results / "exp1-format-reward" / "records.jsonl").read_text()
    with pytest.raises(
        ConfigError, match=r"holds the tiny profile's results, which the tiny-long profile's would overwrite"
    ):
        reproduce(
            "exp1-format-reward", profile="tiny-long", seeds=1, dry_run=False, results_root=tiny_results
        )
    with pytest.raises(ConfigError, match=r"would sit beside; give it its own folder with --results"):
        refuse_other_profiles(tiny_results, ["exp3-same-task"], "tiny-long")
    assert (tiny_results / "exp1-format-reward" / "records.jsonl").read_text() == before


def test_the_same_profile_and_an_empty_folder_pass(tiny_results, tmp_path):
    refuse_other_profiles(tiny_results, ["exp1-format-reward"], "tiny")
    refuse_other_profiles(tmp_path / "elsewhere", ["exp1-format-reward"], "tiny-long")


def test_the_cli_says_it_in_one_line(tiny_results, monkeypatch, capsys):
    monkeypatch.chdir(tiny_results.parent)
    assert main(["reproduce", "exp1-format-reward", "--profile", "tiny-long"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "results/exp1-format-reward/records.jsonl" in err and "--results results/tiny-long" in err
