"""The `<think>…</think><answer>…</answer>` structure every task's completions follow."""

from __future__ import annotations

import re

_TAG = r"</?(?:think|answer)>"
_REQUIRED = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def has_think_answer_format(text: str) -> bool:
    """True when the text is exactly one think block then one answer block (whitespace around).

    >>> has_think_answer_format("<think> 2 + 1 </think><answer> 3 </answer>")
    True
    >>> has_think_answer_format("<think> a </think><answer> 3 </answer> extra")
    False
    """
    match = _REQUIRED.fullmatch(text)
    if match is None:
        return False
    return not any(re.search(_TAG, part) for part in match.groups())


def answer_span(text: str) -> str | None:
    """The contents of the only `<answer>…</answer>` block, stripped; None if zero or several.

    >>> answer_span("<think>x</think><answer> 70° </answer>")
    '70°'
    """
    blocks = _ANSWER_BLOCK.findall(text)
    if len(blocks) != 1:
        return None
    return blocks[0].strip()
