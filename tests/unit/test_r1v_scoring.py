"""Training rewards per scoring mode against a table: `r1v` = what R1-V's `accuracy_reward` and
`format_reward` (src/r1-v/src/open_r1/grpo.py) return, derived by hand from their code; `strict` =
what ours promises (only the single <answer> span scores; one think block then one answer block).

R1-V's accuracy, for solution `<answer> truth </answer>`: 1 if math-verify's `verify(parse(completion),
parse(solution))`; else 1 if the stripped first one-line `<answer>(.*?)</answer>` of the completion
(the whole completion stripped when it has none) equals that of the solution; else 0. math-verify
reads the whole completion and keeps the last number it finds after whitespace ("I see 3", not
"<answer>3"), and reads nothing in some tag-only texts (then the string fallback decides).
R1-V's format: `re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", completion, re.DOTALL)`.
"""

import pytest

from mr1cli.core.r1v import r1v_accuracy_reward, r1v_format_reward
from mr1cli.core.task import SCORING_MODES
from mr1cli.tasks.rewards import REWARDS, score_completion

# (task, completion, truth, r1v accuracy, r1v format, strict accuracy, strict format)
TABLE = [
    ("counting", "<think>1 2 3</think><answer>3</answer>", "3", 1, 1, 1, 1),
    ("counting", "<think>I see 3</think><answer> 4 </answer>", "3", 0, 1, 0, 1),
    # untagged correct number: math-verify reads it, R1-V pays 1
    ("counting", "3", "3", 1, 0, 0, 0),
    ("counting", "There are 3 objects.", "3", 1, 0, 0, 0),
    # duplicated answer tag: the first one decides, and the format regex still fullmatches
    ("counting", "<think>x</think><answer>2</answer><answer>3</answer>", "3", 0, 1, 0, 0),
    ("counting", "<think>x</think><answer>3</answer><answer>3</answer>", "3", 1, 1, 0, 0),
    # whitespace: allowed between the blocks by both; outside them only by strict
    ("counting", "<think>x</think>\n<answer> 3 </answer>", "3", 1, 1, 1, 1),
    ("counting", " <think>x</think><answer>3</answer>", "3", 1, 0, 1, 1),
    ("counting", "<think>x</think><answer>3</answer>\n", "3", 1, 0, 1, 1),
    ("counting", "<think>x</think> <answer>03</answer>", "3", 0, 1, 1, 1),
    # nested tags: R1-V's format accepts them, strict rejects them (and sees two answer spans)
    ("counting", "<think><answer>3</answer></think><answer>3</answer>", "3", 1, 1, 0, 0),
    ("counting", "<think>x</think><answer>3 items</answer>", "3", 0, 1, 0, 1),
    # a number in the reasoning: R1-V picks it up (right or wrong), strict reads only the answer
    ("counting", "<think>5 cubes and 3 spheres</think><answer>8</answer>", "8", 1, 1, 1, 1),
    ("counting", "<think>there are 3 cubes</think><answer>5</answer>", "3", 1, 1, 0, 1),
    # a multi-line answer block: R1-V's tag regex has no DOTALL, math-verify still reads the 3
    ("counting", "<think>x</think><answer>\n3\n</answer>", "3", 1, 1, 1, 1),
    ("counting", "", "0", 0, 0, 0, 0),
    ("counting", "<think>x</think><answer>three</answer>", "3", 0, 1, 0, 1),
    ("counting", "<THINK>x</THINK><ANSWER>3</ANSWER>", "3", 0, 0, 0, 0),
    # geometry: units, symbols and LaTeX in the truth
    ("geometry", "<think>180-50-60=70</think><answer>70°</answer>", "70°", 1, 1, 1, 1),
    ("geometry", "<think>x</think><answer>140°</answer>", "140°", 1, 1, 1, 1),
    ("geometry", "<think>x</think><answer>3cm</answer>", "3cm", 1, 1, 1, 1),
    ("geometry", "<think>x</think><answer>3</answer>", "3cm", 0, 1, 1, 1),
    ("geometry", "The answer is 3 cm", "3cm", 1, 0, 0, 0),
    ("geometry", "<think>x</think><answer>π</answer>", "π", 1, 1, 1, 1),
    ("geometry", "<think>x</think><answer>2π</answer>", "π", 0, 1, 0, 1),
    ("geometry", "<think>x</think><answer>√3</answer>", "√3", 1, 1, 1, 1),
    ("geometry", "<think>x</think><answer>2√{3}</answer>", "2√3cm", 0, 1, 1, 1),
    ("geometry", "<think>x</think><answer>\\frac{1}{2}</answer>", "\\frac{1}{2}", 1, 1, 1, 1),
    ("geometry", "<think>x</think><answer>1/2</answer>", "\\frac{1}{2}", 0, 1, 1, 1),
    ("geometry", "<think>x</think><answer>$\\frac{1}{2}$</answer>", "0.5", 1, 1, 1, 1),
    # a truth no math parser reads: exact match of the answer text in both modes
    ("geometry", "<think>x</think><answer> CD </answer>", "CD", 1, 1, 1, 1),
    ("geometry", "<think>x</think><answer>DC</answer>", "CD", 0, 1, 0, 1),
]


@pytest.mark.parametrize(
    ("task", "completion", "truth", "r1v_acc", "r1v_fmt", "strict_acc", "strict_fmt"), TABLE
)
def test_training_reward_table(task, completion, truth, r1v_acc, r1v_fmt, strict_acc, strict_fmt):
    accuracy, fmt = REWARDS.get("accuracy"), REWARDS.get("format")
    assert accuracy(completion, truth, task=task, scoring="r1v") == r1v_acc
    assert fmt(completion, truth, task=task, scoring="r1v") == r1v_fmt
    assert accuracy(completion, truth, task=task, scoring="strict") == strict_acc
    assert fmt(completion, truth, task=task, scoring="strict") == strict_fmt
    assert r1v_accuracy_reward(completion, truth) == r1v_acc and r1v_format_reward(completion) == r1v_fmt


def test_the_table_covers_thirty_completions_and_every_mode():
    assert len(TABLE) >= 30
    assert set(SCORING_MODES.names()) == {"r1v", "strict"}  # the table's two pairs of columns


def test_the_scoring_mode_switches_the_format_reward_too():
    completion = "<think>x</think><answer>3</answer>\n"  # trailing newline: R1-V's fullmatch fails
    weights = {"accuracy": 1.0, "format": 1.0}
    r1v = score_completion(completion, "3", task="counting", weights=weights, scoring="r1v")
    strict = score_completion(completion, "3", task="counting", weights=weights, scoring="strict")
    assert r1v.components == {"accuracy": 1.0, "format": 0.0}
    assert strict.components == {"accuracy": 1.0, "format": 1.0}


def test_unknown_scoring_mode_is_named():
    from mr1cli.core.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'r1v'"):
        REWARDS.get("format")("x", "3", task="counting", scoring="r1")
