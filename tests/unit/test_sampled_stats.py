"""`mr1 eval --samples K` statistics on hand-made completions: mean sampled accuracy, pass@k, majority@k."""

import pytest

from mr1cli.core.sampled_stats import majority_vote, pass_at_k
from mr1cli.evaluation.evaluate import score_rows


def said(answer: str | None) -> str:
    return "I cannot tell" if answer is None else f"<think> counted </think><answer> {answer} </answer>"


# Three counting examples, four samples each.
#   truth 3: answers 3, 3, 4, none → 2 of 4 right; majority "3" (2 votes) is right
#   truth 5: answers 4, 5, 4, 5    → 2 of 4 right; a 2–2 tie goes to "4", whose first vote came first: wrong
#   truth 2: answers 1, 1, 1, 1    → 0 of 4; majority "1" is wrong
ROWS = [
    {
        "id": "a",
        "truth": "3",
        "completion": said("3"),
        "samples": [said("3"), said("3"), said("4"), said(None)],
    },
    {
        "id": "b",
        "truth": "5",
        "completion": said("4"),
        "samples": [said("4"), said("5"), said("4"), said("5")],
    },
    {"id": "c", "truth": "2", "completion": said("1"), "samples": [said("1")] * 4},
]


def test_the_three_statistics_equal_hand_computed_values():
    result = score_rows([dict(row) for row in ROWS], "counting", "r1v")
    s = result.summary
    assert s["accuracy"] == pytest.approx(100 / 3, abs=1e-3)  # greedy: only "a" right
    assert s["sampled/k"] == 4
    # mean sampled accuracy = (2/4 + 2/4 + 0/4) / 3
    assert s["sampled/mean_accuracy"] == pytest.approx(100 / 3, abs=1e-3)
    assert s["sampled/pass@1"] == s["sampled/mean_accuracy"]
    # pass@2 per example: 1 − C(2,2)/C(4,2) = 5/6 for a and b, 0 for c
    assert s["sampled/pass@2"] == pytest.approx(100 * (5 / 6 + 5 / 6) / 3, abs=1e-3)
    assert s["sampled/pass@4"] == pytest.approx(200 / 3, abs=1e-3)  # any of 4: a and b
    assert s["sampled/majority@4"] == pytest.approx(100 / 3, abs=1e-3)  # only a
    assert s["sampled/format_rate"] == pytest.approx(100 * 11 / 12, abs=1e-3)  # one sample without tags
    a, b, c = result.predictions
    assert (a["sampled_correct"], a["majority_answer"], a["majority_correct"]) == (2, "3", True)
    assert (b["sampled_correct"], b["majority_answer"], b["majority_correct"]) == (2, "4", False)
    assert (c["sampled_correct"], c["majority_answer"], c["majority_correct"]) == (0, "1", False)
    assert [sample["correct"] for sample in a["samples"]] == [True, True, False, False]


def test_greedy_rows_get_no_sampled_statistics():
    rows = [{k: v for k, v in row.items() if k != "samples"} for row in ROWS]
    assert not any(key.startswith("sampled/") for key in score_rows(rows, "counting", "r1v").summary)


def test_pass_at_k_is_the_unbiased_estimator():
    # n = 5 samples, c = 2 right: pass@2 = 1 − C(3,2)/C(5,2) = 1 − 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 2, 4) == 1.0  # fewer wrong samples (3) than k: some draw of 4 is always right
    assert pass_at_k(5, 0, 5) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_ties_and_abstentions():
    assert majority_vote([None, "7", None], [False, True, False]) == ("7", True)  # no-answer never votes
    assert majority_vote(["2", "3", "3", "2"], [True, False, False, True]) == ("2", True)  # tie → first
    assert majority_vote(["3", "2", "2", "3"], [False, True, True, False]) == ("3", False)
