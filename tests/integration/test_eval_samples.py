"""`mr1 eval --samples K` on a real (untrained) tiny checkpoint: K samples per example beside greedy,
the statistics in metrics.json, the same samples on a rerun, the greedy answers unchanged."""

import json

from mr1cli.cli import main


def run_eval(tiny_model_dir, out, *extra):
    common = [
        f"model.name_or_path={tiny_model_dir}",
        "data.test=synthetic:counting-test-4",
        "eval.max_new_tokens=12",
    ]
    args = ["eval", "--checkpoint", str(tiny_model_dir), "--task", "counting", "--output", str(out)]
    assert main([*args, *extra, *common]) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return json.loads((out / "metrics.json").read_text()), rows


def test_samples_are_recorded_reproducible_and_leave_greedy_alone(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MR1_CACHE", str(tmp_path / "cache"))
    greedy, greedy_rows = run_eval(tiny_model_dir, tmp_path / "greedy")
    first, rows = run_eval(tiny_model_dir, tmp_path / "one", "--samples", "3")
    assert "sampled (k = 3)" in capsys.readouterr().out
    again, rows_again = run_eval(tiny_model_dir, tmp_path / "two", "--samples", "3")
    other, rows_other = run_eval(tiny_model_dir, tmp_path / "three", "--samples", "3", "--sample-seed", "1")

    assert [len(row["samples"]) for row in rows] == [3, 3, 3, 3]
    for key in (
        "sampled/mean_accuracy",
        "sampled/pass@1",
        "sampled/pass@2",
        "sampled/pass@3",
        "sampled/majority@3",
    ):
        assert 0.0 <= first[key] <= 100.0, key
    assert first["provenance"]["settings"]["sampling"] == {
        "samples": 3,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "sampler": "mr1",
        "seed": 0,
    }
    assert "sampling" not in greedy["provenance"]["settings"]  # greedy folders keep their names
    texts = [[s["completion"] for s in row["samples"]] for row in rows]
    assert texts == [[s["completion"] for s in row["samples"]] for row in rows_again]  # same seed, same draws
    assert texts != [[s["completion"] for s in row["samples"]] for row in rows_other]  # another seed
    assert [r["completion"] for r in rows] == [r["completion"] for r in greedy_rows]  # greedy untouched
    assert first["accuracy"] == greedy["accuracy"]
    assert again == first  # the statistics too
    assert other["provenance"]["settings"]["sampling"]["seed"] == 1
    # The statistics follow from the rows: mean sampled accuracy is the mean of sampled_correct / K.
    mean = 100 * sum(row["sampled_correct"] for row in rows) / (3 * len(rows))
    assert abs(first["sampled/mean_accuracy"] - mean) < 1e-3
