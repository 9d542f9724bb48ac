"""The tiny profile's completion and evaluation caps cut no gold reasoning trace: the longest trace
of every split of both synthetic tasks (tokenized by the real tiny tokenizer, closing <|im_end|>
included) fits with 16 tokens to spare."""

import itertools

import pytest
from transformers import AutoTokenizer

from mr1cli.config_loading import load_config
from mr1cli.data.synthetic import SPLITS, sample_spec
from mr1cli.tasks.counting import scenes as counting
from mr1cli.zoo.builds import ensure_tiny_model

MARGIN = 16
pytestmark = pytest.mark.slow  # builds the real tiny tokenizer and draws 12,000 traces
SAMPLES = 1500  # per split; 30,000 drew at most counting 62, geometry 71; the worst counting scene by construction is 81


@pytest.fixture(scope="module")
def tokens(module_cache):
    tokenizer = AutoTokenizer.from_pretrained(ensure_tiny_model())

    def count(thinking: str, answer: str) -> int:
        target = f"<think> {thinking} </think><answer> {answer} </answer>"  # sft.target=reasoning
        return len(tokenizer(target, add_special_tokens=False)["input_ids"]) + 1  # + <|im_end|>

    return count


def caps(task):
    cfg = load_config(method="grpo-d", task=task, profile="tiny")
    return min(cfg.rl.max_completion_length, cfg.eval.max_new_tokens)


def longest_counting_scene(tokens) -> int:
    """The worst case by construction: 8 objects (the most any split holds) of the colour and shape
    whose names take the most tokens, unfiltered or filtered on that colour or shape."""
    style = counting.TEST_STYLE  # the test split has the most colours and shapes
    pairs = itertools.product(style.colours, style.shapes)
    colour, shape = max(pairs, key=lambda p: tokens(f"{p[0]} {p[1]}", ""))
    objects = tuple(counting.SceneObject(shape, colour, True, False, i / 10, 0.5) for i in range(8))
    targets = (None, counting.CountFilter("colour", colour), counting.CountFilter("shape", shape))
    scenes = [counting.CountingScene(objects, t, "", style) for t in targets]
    return max(tokens(scene.thinking, scene.answer) for scene in scenes)


@pytest.mark.parametrize("task", ["counting", "geometry"])
def test_no_gold_trace_is_cut(task, tokens):
    longest = max(
        tokens(spec.thinking, spec.answer)
        for split in SPLITS
        for spec in (sample_spec(task, split, seed=0, index=i) for i in range(SAMPLES))
    )
    if task == "counting":
        longest = max(longest, longest_counting_scene(tokens))
    assert longest + MARGIN <= caps(task), f"{task}: longest trace {longest} tokens, cap {caps(task)}"
    assert longest > 40  # the traces were measured, not empty
