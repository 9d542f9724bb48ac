"""Geometry reasoning (GeoQA): the answer is a value, often with a unit ("140°", "3cm").

Answers are compared as mathematical values with `math-verify`. Two modes:
- r1v: exactly R1-V's GeoQA evaluation — the *whole* completion is parsed, so a number
  quoted in the reasoning can be picked up (that is how the published numbers were made);
- strict: only the sole `<answer>` span, with units stripped, is compared to the truth.

Every ground truth loads (R1-V loads all 754 GeoQA test rows, `π` included): a number ("140°"),
an expression math-verify reads ("π", "2√{3}", "\\frac{1}{2}"), or text nothing reads, kept as it
is and scored by exact match of the answer span in strict mode (in r1v evaluation, as in R1-V's
script, only a math-verify match counts, so such a row is wrong).
"""

from __future__ import annotations

import functools
import math
import re

from mr1cli.core.answer_format import answer_span
from mr1cli.core.math_values import normalize_value, safe_parse, safe_verify
from mr1cli.core.task import THINK_ANSWER_INSTRUCTION, SyntheticGenerator, Task, check_mode
from mr1cli.tasks.geometry import problems


def _parse_value(text: str) -> list:
    return safe_parse(f"${normalize_value(text)}$")


# The R1-V releases the paper trains and tests on (paper.md, "Tasks and data").
R1V_TRAIN = "leonardPKU/GEOQA_R1V_Train_8K"
R1V_TEST = "data/geoqa/geoqa_test_prompts.jsonl"
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


@functools.lru_cache(maxsize=8192)
def truth_kind(text: str) -> str:
    """How a ground truth reads: "number" (units aside), "expression" (math-verify reads it) or "text".

    >>> [truth_kind(t) for t in ("140°", "π", "\\\\frac{1}{2}", "none of these")]
    ['number', 'expression', 'expression', 'text']
    """
    if _NUMBER.fullmatch(normalize_value(text)):
        return "number"
    if _is_value(_parse_value(text)) or _is_value(safe_parse(text)):
        return "expression"
    return "text"


def _is_value(parsed: list) -> bool:
    """math-verify read a closed value (π, √3, 1/2), not letters taken as unknowns ("CD" → C·D)."""
    return bool(parsed) and not getattr(parsed[0], "free_symbols", True)


class Geometry(Task):
    name = "geometry"
    train_template = "{question}  Output " + THINK_ANSWER_INSTRUCTION
    eval_template = "{question} Output " + THINK_ANSWER_INSTRUCTION  # R1-V's GeoQA script
    eval_max_new_tokens = 1024
    synthetic = SyntheticGenerator(problems.sample_problem, problems.render_problem, str)
    # Paper, "β schedule": GRPO's constant β and GRPO-D's β_min/β_max for geometry reasoning.
    in_tiny_base = True
    kl_defaults = {"constant": {"beta": 0.01}, "dynamic": {"beta_min": 0.0, "beta_max": 0.02}}
    config_defaults = {
        "paper": {"data": {"train": R1V_TRAIN, "test": R1V_TEST, "image_root": "data/geoqa"}},
    }

    truth_kinds = ("number", "expression", "text")

    def truth_kind(self, truth: str) -> str:
        return truth_kind(truth)

    def parse_truth(self, raw: object) -> str:
        """A truth such as "140°", "π" or "<answer> 3cm </answer>", stripped; ValueError only if empty.

        >>> Geometry().parse_truth("<answer> 3cm </answer>")
        '3cm'
        """
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ValueError(f"expected a value such as '140°', got {raw!r}")
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ValueError(f"expected a finite value, got {raw!r}")
        text = str(raw)
        if "<answer>" in text:
            span = answer_span(text)
            if span is None:
                raise ValueError(f"expected one <answer>…</answer> block, got {raw!r}")
            text = span
        text = text.strip()
        if not text:
            raise ValueError(f"empty ground truth {raw!r}")
        return text

    def extract_answer(self, completion: str, mode: str) -> str | None:
        """The answer text scored: r1v → what math-verify reads in the whole completion.

        >>> Geometry().extract_answer("<think>x</think><answer> 70° </answer>", "strict")
        '70°'
        """
        check_mode(mode)
        if mode == "r1v":
            parsed = safe_parse(completion)
            return str(parsed[-1]) if parsed else None
        return answer_span(completion) or None

    def is_correct(self, completion: str, truth: str, mode: str) -> bool:
        check_mode(mode)
        if mode == "r1v":
            # R1-V: correct iff parse(output) is non-empty and verify(parse(output), parse(truth)).
            answer = safe_parse(completion)
            gold = safe_parse(truth)
            return bool(answer) and safe_verify(answer, gold)
        span = answer_span(completion)
        if not span:
            return False
        if truth_kind(truth) == "text":  # a truth nothing reads as a value: exact match of the span
            return span == truth.strip()
        gold, answer = _parse_value(truth), _parse_value(span)
        return bool(answer) and safe_verify(gold, answer)
