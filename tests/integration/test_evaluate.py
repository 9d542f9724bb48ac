"""Evaluation scoring against a hand count, and `mr1 eval --rescore` on saved logs."""

import json

import pytest

from mr1cli.cli import main
from mr1cli.core.errors import DataError
from mr1cli.evaluation.evaluate import read_saved_completions, score_rows

# R1-V-style GeoQA log rows; by hand: r1v correct = rows 1, 3, 4 (3/5); strict = rows 1, 2, 3 (3/5);
# format = rows 1, 2, 3, 5 (4/5).
GEOQA_LOG = [
    {
        "question": "q1",
        "ground_truth": "70°",
        "model_output": "<think>180-50-60=70</think><answer>70°</answer>",
    },
    {"question": "q2", "ground_truth": "3cm", "model_output": "<think>half of 6</think> <answer>3</answer>"},
    {"question": "q3", "ground_truth": "60°", "model_output": "<think> 70 </think><answer> 60 </answer>"},
    {"question": "q4", "ground_truth": "5", "model_output": "The answer is 5"},
    {"question": "q5", "ground_truth": "40°", "model_output": "<think>x</think><answer>50°</answer>"},
]


def test_scores_equal_hand_count():
    rows = [{"completion": r["model_output"], "truth": r["ground_truth"]} for r in GEOQA_LOG]
    result = score_rows(rows, "geometry", "r1v")
    assert [p["correct_r1v"] for p in result.predictions] == [True, False, True, True, False]
    assert [p["correct_strict"] for p in result.predictions] == [True, True, True, False, False]
    assert result.summary["accuracy"] == 60.0
    assert result.summary["accuracy_strict"] == 60.0
    assert result.summary["format_rate"] == 80.0
    assert score_rows(rows, "geometry", "strict").summary["accuracy"] == 60.0


@pytest.mark.parametrize("as_jsonl", [True, False])
def test_rescore_command(tmp_path, as_jsonl, capsys):
    path = tmp_path / ("log.jsonl" if as_jsonl else "log.json")
    if as_jsonl:
        path.write_text("".join(json.dumps(r) + "\n" for r in GEOQA_LOG))
    else:
        path.write_text(json.dumps({"accuracy": 0.0, "results": GEOQA_LOG}))
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "--rescore",
                str(path),
                "--task",
                "geometry",
                "--scoring",
                "strict",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scoring"] == "strict" and metrics["accuracy"] == 60.0 and metrics["n"] == 5
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 5


def test_rescore_counting_and_bad_rows(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"completion": "<answer>3</answer>", "ground_truth": 3}) + "\n")
    assert read_saved_completions(path, "counting")[0]["truth"] == "3"
    path.write_text(json.dumps({"completion": "<answer>3</answer>", "ground_truth": "three"}) + "\n")
    with pytest.raises(DataError, match=r"c.jsonl: row 1: field 'ground_truth'"):
        read_saved_completions(path, "counting")
    path.write_text(json.dumps({"output": "x", "ground_truth": 3}) + "\n")
    with pytest.raises(DataError, match=r"row 1: field 'completion'"):
        read_saved_completions(path, "counting")
