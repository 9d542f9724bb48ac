"""`mr1 eval` output: readable at 80 columns, a plain accuracy line, whole paths, no overwrites."""

import json

from mr1cli.cli import main

LOG = {
    "accuracy": 50.0,
    "results": [
        {"ground_truth": 3, "model_output": "<think>1 2 3</think><answer>3</answer>"},
        {"ground_truth": 5, "model_output": "<think>x</think><answer>4</answer>"},
    ],
}


def test_rescore_output_fits_80_columns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.json"
    log.write_text(json.dumps(LOG))
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "and-another-long-one" / "rescored"
    assert main(["eval", "--rescore", str(log), "--task", "counting", "--output", str(deep)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert any(line.split()[:4] == ["accuracy", "50.0", "%", "(1"] for line in lines), lines
    assert "None" not in captured.out and "mean length" not in captured.out  # unknown for a saved log
    wrote = [line for line in captured.err.splitlines() if line.startswith("wrote ")]
    assert wrote == [f"wrote {deep / 'predictions.jsonl'}", f"wrote {deep / 'metrics.json'}"]


def test_rescore_default_folder_is_fresh_and_explicit_one_is_never_overwritten(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "inputs" / "log.json"
    log.parent.mkdir()
    log.write_text(json.dumps(LOG))
    for _ in range(2):
        assert main(["eval", "--rescore", str(log), "--task", "counting"]) == 0
    first, second = (
        tmp_path / "results" / "eval" / "log-rescored-counting",
        tmp_path / "results" / "eval" / "log-rescored-counting-2",
    )
    assert (first / "metrics.json").is_file() and (second / "metrics.json").is_file()
    assert sorted(p.name for p in log.parent.iterdir()) == ["log.json"]  # nothing beside the input
    capsys.readouterr()
    assert main(["eval", "--rescore", str(log), "--task", "counting", "--output", str(first)]) == 2
    assert "already holds an evaluation" in capsys.readouterr().err
