"""Reward tables for both tasks and scoring modes, and property tests of the parsers."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mr1cli.config_loading import load_config
from mr1cli.core.answer_format import answer_span, has_think_answer_format
from mr1cli.core.errors import ConfigError
from mr1cli.tasks import get_task
from mr1cli.tasks.rewards import REWARDS, max_total, score_completion

# (completion, truth, r1v evaluation accuracy, strict accuracy, strict format)
COUNTING_TABLE = [
    ("<think>1 2 3</think><answer>3</answer>", "3", 1, 1, 1),
    ("<think>I see 3</think><answer> 4 </answer>", "3", 0, 0, 1),
    ("<answer>3</answer>", "3", 1, 1, 0),
    ("<think>x</think><answer>2</answer><answer>3</answer>", "3", 0, 0, 0),
    ("<think>x</think><answer>3 items</answer>", "3", 0, 0, 1),
    ("The answer is 3", "3", 0, 0, 0),
    ("<think>x</think>\n<answer> 03 </answer>\n", "3", 1, 1, 1),
    ("<think><answer>3</answer></think><answer>3</answer>", "3", 1, 0, 0),
    ("", "0", 0, 0, 0),
]

GEOMETRY_TABLE = [
    ("<think>∠C = 180° - 50° - 60° = 70°</think><answer>70°</answer>", "70°", 1, 1, 1),
    ("<think> 70 </think><answer> 60 </answer>", "70°", 0, 0, 1),
    ("<think> 70 </think><answer> 60 </answer>", "60°", 1, 1, 1),
    # R1-V's whole-completion parse misses a bare tagged answer that strict reads:
    ("<answer>3</answer>", "3cm", 0, 1, 0),
    ("<think>x</think><answer>2√{3}</answer>", "2√3cm", 0, 1, 1),
    # ... and picks up a number in the reasoning that strict ignores:
    ("<think>The answer is 5 </think><answer>C</answer>", "5", 1, 0, 1),
    ("no tags just 12", "12", 1, 0, 0),
    ("<think>x</think><answer>1/2</answer>", "\\frac{1}{2}", 0, 1, 1),
    ("", "5", 0, 0, 0),
]


@pytest.mark.parametrize(
    ("task", "row"), [("counting", r) for r in COUNTING_TABLE] + [("geometry", r) for r in GEOMETRY_TABLE]
)
def test_evaluation_scoring_table(task, row):
    # r1v here is R1-V's *evaluation* scripts; its training reward is tested in test_r1v_scoring.py.
    completion, truth, r1v, strict, fmt = row
    assert get_task(task).is_correct(completion, truth, "r1v") == r1v
    assert get_task(task).is_correct(completion, truth, "strict") == strict
    assert REWARDS.get("accuracy")(completion, truth, task=task, scoring="strict") == strict
    assert REWARDS.get("format")(completion, truth, task=task) == fmt


def test_combined_reward_weights_and_format_ablation():
    completion = "<think>1 2 3</think><answer>3</answer>"
    both = score_completion(completion, "3", task="counting", weights={"accuracy": 1.0, "format": 0.5})
    assert both.total == 1.5 and both.components == {"accuracy": 1.0, "format": 1.0}
    no_format = score_completion(completion, "3", task="counting", weights={"accuracy": 1.0, "format": 0.0})
    assert no_format.total == 1.0 and no_format.components["format"] == 1.0  # still logged
    assert max_total({"accuracy": 1.0, "format": 0.25}) == 1.25


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"accuracy": -1.0}, "must be >= 0"),
        ({"acuracy": 1.0}, "did you mean 'accuracy'"),
        ({"accuracy": 0.0, "format": 0.0}, "positive"),
    ],
)
def test_bad_weights(weights, message):
    layer = {"reward": {"weights": weights}}
    with pytest.raises(ConfigError, match=message):
        load_config(method="grpo", task="counting", extra_layers=[layer])


@pytest.mark.parametrize(
    ("task", "raw", "canonical"),
    [
        ("counting", 3, "3"),
        ("counting", "<answer> 3 </answer>", "3"),
        ("counting", " 7 ", "7"),
        ("counting", 4.0, "4"),
        ("geometry", "140°", "140°"),
        ("geometry", "<answer> 3cm </answer>", "3cm"),
        ("geometry", 12, "12"),
        ("geometry", "π", "π"),  # GeoQA test row 502: no digit, still a value
        ("geometry", "<answer> \\frac{1}{2} </answer>", "\\frac{1}{2}"),
        ("geometry", "abc def", "abc def"),  # no value at all: kept as text, scored by exact match
    ],
)
def test_parse_truth(task, raw, canonical):
    assert get_task(task).parse_truth(raw) == canonical


@pytest.mark.parametrize(
    ("task", "raw"),
    [
        ("counting", "three"),
        ("counting", -1),
        ("counting", True),
        ("counting", None),
        ("counting", 2.5),
        ("geometry", ""),
        ("geometry", None),
        ("geometry", "<answer>1</answer><answer>2</answer>"),
        ("geometry", "   "),
        ("geometry", float("nan")),
    ],
)
def test_parse_truth_refuses(task, raw):
    with pytest.raises(ValueError):
        get_task(task).parse_truth(raw)


def test_unknown_scoring_mode():
    with pytest.raises(ValueError, match="unknown scoring mode"):
        get_task("counting").is_correct("<answer>3</answer>", "3", "lenient")


# ------------------------------------------------------------------ properties

PIECES = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "3",
        "70°",
        " ",
        "\n",
        "x",
        "=",
        "12",
        "cm",
        "<",
        ">",
        "/",
        "√",
        "π",
    ]
)
COMPLETIONS = st.one_of(st.text(max_size=80), st.lists(PIECES, max_size=14).map("".join))
REQUIRED = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.DOTALL)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(COMPLETIONS, st.sampled_from(["counting", "geometry"]), st.sampled_from(["r1v", "strict"]))
def test_rewards_never_raise_and_stay_in_range(completion, task, scoring):
    truth = "3" if task == "counting" else "70°"
    weights = {"accuracy": 1.0, "format": 0.5}
    scored = score_completion(completion, truth, task=task, weights=weights, scoring=scoring)
    assert 0.0 <= scored.total <= max_total(weights)
    assert all(value in (0.0, 1.0) for value in scored.components.values())


@settings(max_examples=1000, deadline=None)
@given(COMPLETIONS)
def test_format_reward_only_when_deserved(completion):
    if has_think_answer_format(completion):
        assert REQUIRED.fullmatch(completion)
        assert completion.count("<think>") == completion.count("</think>") == 1
        assert completion.count("<answer>") == completion.count("</answer>") == 1
        assert answer_span(completion) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=10))
def test_format_breaks_with_text_outside_the_blocks(think, answer, outside):
    tags = ("<think>", "</think>", "<answer>", "</answer>")
    if any(tag in think + answer for tag in tags):
        return
    completion = f"<think>{think}</think><answer>{answer}</answer>"
    assert has_think_answer_format(completion)
    if outside.strip():
        assert not has_think_answer_format(completion + outside)
        assert not has_think_answer_format(outside + completion)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.text(max_size=20))
def test_strict_counting_reads_only_the_answer_span(count, reasoning):
    if any(tag in reasoning for tag in ("<think>", "</think>", "<answer>", "</answer>")):
        return
    task = get_task("counting")
    completion = f"<think>{reasoning} {count + 1}</think><answer> {count} </answer>"
    assert task.is_correct(completion, str(count), "strict")
    assert not task.is_correct(completion, str(count + 1), "strict")
