"""Geometry reasoning (GeoQA): the answer is a value, often with a unit ("140°", "3cm").

Answers are compared as mathematical values with `math-verify`. Two modes:
- r1v: exactly R1-V's GeoQA evaluation — the *whole* completion is parsed, so a number
  quoted in the reasoning can be picked up (that is how the published numbers were made);
- strict: only the sole `<answer>` span, with units stripped, is compared to the truth.
"""

from __future__ import annotations

import logging
import re

from math_verify import parse, verify

from mr1cli.tasks.answer_format import answer_span
from mr1cli.tasks.base import TASKS, Task, check_mode

_UNIT_SUFFIX = re.compile(r"\s*(?:degrees?|°|cm|mm|dm|km|m|units?)(?:\^\{?[23]\}?|²|³)?\s*$", re.IGNORECASE)
# We call math-verify without its signal-based timeouts (they fail outside the main thread);
# it warns about that on every call.
logging.getLogger("math_verify").setLevel(logging.ERROR)

_SQRT = re.compile(r"√\s*\{([^{}]*)\}|√\s*\(([^()]*)\)|√\s*([0-9.]+)")


def normalize_value(text: str) -> str:
    """A GeoQA answer as a LaTeX string math-verify reads reliably: units dropped, √ and π spelled.

    >>> normalize_value("2√{3}cm")
    '2\\\\sqrt{3}'
    >>> normalize_value("140°")
    '140'
    """
    value = text.strip().strip("$").strip()
    value = value.replace("\\circ", "°").replace("^°", "°").replace("^{°}", "°")
    for _ in range(3):
        stripped = _UNIT_SUFFIX.sub("", value)
        if stripped == value:
            break
        value = stripped
    value = _SQRT.sub(lambda m: "\\sqrt{" + next(g for g in m.groups() if g is not None) + "}", value)
    return value.replace("π", "\\pi ").replace("×", "\\times ").replace("∶", ":").strip()


def _parse_value(text: str) -> list:
    # parsing_timeout=None: math-verify's timeout uses signals, which fail outside the main thread.
    return parse(f"${normalize_value(text)}$", parsing_timeout=None)


class Geometry(Task):
    name = "geometry"
    description = "answer a question about a geometry diagram; the answer is a value with a unit"
    train_template = (
        "{question}  Output the thinking process in <think> </think> and "
        "final answer (number) in <answer> </answer> tags."
    )
    eval_template = (
        "{question} Output the thinking process in <think> </think> and "
        "final answer (number) in <answer> </answer> tags."
    )
    eval_max_new_tokens = 1024

    def parse_truth(self, raw: object) -> str:
        """A value string such as "140°" or "<answer> 3cm </answer>"; ValueError if not a value.

        >>> Geometry().parse_truth("<answer> 3cm </answer>")
        '3cm'
        """
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ValueError(f"expected a value such as '140°', got {raw!r}")
        text = str(raw)
        if "<answer>" in text:
            span = answer_span(text)
            if span is None:
                raise ValueError(f"expected one <answer>…</answer> block, got {raw!r}")
            text = span
        text = text.strip()
        if not re.search(r"\d", text) or not _parse_value(text):
            raise ValueError(f"cannot read a mathematical value from {raw!r}")
        return text

    def extract_answer(self, completion: str, mode: str) -> str | None:
        """The answer text scored: r1v → what math-verify reads in the whole completion.

        >>> Geometry().extract_answer("<think>x</think><answer> 70° </answer>", "strict")
        '70°'
        """
        check_mode(mode)
        if mode == "r1v":
            parsed = parse(completion, parsing_timeout=None)
            return str(parsed[-1]) if parsed else None
        return answer_span(completion) or None

    def is_correct(self, completion: str, truth: str, mode: str) -> bool:
        check_mode(mode)
        if mode == "r1v":
            # R1-V: correct iff parse(output) is non-empty and verify(parse(output), parse(truth)).
            answer = parse(completion, parsing_timeout=None)
            gold = parse(truth, parsing_timeout=None)
            return bool(answer) and float(verify(answer, gold, timeout_seconds=None)) > 0
        span = answer_span(completion)
        if not span:
            return False
        answer, gold = _parse_value(span), _parse_value(truth)
        return bool(answer) and bool(gold) and bool(verify(gold, answer, timeout_seconds=None))


TASKS.add("geometry", Geometry())
