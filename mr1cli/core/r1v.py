"""R1-V's training rewards (Deep-Agent/R1-V, src/r1-v/src/open_r1/grpo.py), as its code computes them.

The paper trains "following R1-V", so the paper profile's `reward.scoring: r1v` uses these:

- accuracy: math-verify parses the *whole* completion and the solution string
  `<answer> x </answer>` and verifies `verify(parse(completion), parse(solution))`; if that is
  not a match, the first `<answer>(.*?)</answer>` (no DOTALL: one line) of each, stripped — or
  the whole text stripped when it has none — are compared as strings. So an untagged correct
  number earns 1 and a duplicated answer tag is not penalised;
- format: `re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", completion, re.DOTALL)`:
  no whitespace outside the blocks, repeated or nested tags inside them not rejected.

Our own code, written from R1-V's published behaviour; only math-verify's parse is guarded
(`safe_parse` blanks exponents that would never finish, and keeps a timeout).
"""

from __future__ import annotations

import re

from mr1cli.core.math_values import safe_parse, safe_verify

R1V_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_R1V_ANSWER = re.compile(r"<answer>(.*?)</answer>")  # no DOTALL, as in R1-V


def r1v_solution(truth: str) -> str:
    """The solution string R1-V's training data holds for a canonical ground truth.

    >>> r1v_solution("3")
    '<answer> 3 </answer>'
    """
    return f"<answer> {truth} </answer>"


def r1v_answer_text(text: str) -> str:
    """The stripped contents of the first one-line `<answer>…</answer>`, else the whole text stripped.

    >>> r1v_answer_text("<think>x</think><answer> 7 </answer><answer>8</answer>")
    '7'
    >>> r1v_answer_text(" 7 ")
    '7'
    """
    match = _R1V_ANSWER.search(text)
    return match.group(1).strip() if match else text.strip()


def _math_verify_match(completion: str, solution: str) -> bool:
    try:
        return safe_verify(safe_parse(completion), safe_parse(solution))
    except Exception:  # R1-V: any failure of the symbolic check falls through to string matching
        return False


def r1v_accuracy_reward(completion: str, truth: str) -> float:
    """R1-V's `accuracy_reward` for one completion against the canonical truth (solution `<answer> truth </answer>`).

    >>> r1v_accuracy_reward("I count 3.", "3")  # untagged correct number
    1.0
    >>> r1v_accuracy_reward("<answer>2</answer><answer>3</answer>", "3")
    0.0
    """
    solution = r1v_solution(truth)
    if _math_verify_match(completion, solution):
        return 1.0
    return 1.0 if r1v_answer_text(completion) == r1v_answer_text(solution) else 0.0


def r1v_format_reward(completion: str) -> float:
    """R1-V's `format_reward`: 1 when the whole completion fullmatches think-then-answer, else 0.

    >>> r1v_format_reward("<think>a</think>\\n<answer>3</answer>")
    1.0
    >>> r1v_format_reward("<think>a</think><answer>3</answer>\\n")
    0.0
    """
    return 1.0 if R1V_FORMAT.fullmatch(completion) else 0.0
