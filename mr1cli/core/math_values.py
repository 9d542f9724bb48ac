"""Reading answers as mathematical values with `math-verify`, guarded: units dropped, √ and π
spelled, runaway exponents defused, timeouts wherever signals work."""

from __future__ import annotations

import logging
import re
import threading

_UNIT_SUFFIX = re.compile(r"\s*(?:degrees?|°|cm|mm|dm|km|m|units?)(?:\^\{?[23]\}?|²|³)?\s*$", re.IGNORECASE)
# Outside the main thread math-verify's signal-based timeouts cannot work, so we turn them off
# there (see safe_parse); it would warn about that on every call.
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


# Expressions whose evaluation never ends inside sympy (a C-level big-integer power cannot be
# interrupted by math-verify's timeouts): exponents of 3+ digits, towers, big factorials.
_RUNAWAY = re.compile(r"\^\s*[{(]?\s*[-+]?\d{3,}|\^[^\s^]{0,12}\^|\d{3,}\s*!|\*\*")


def defuse(text: str) -> str:
    """Blank out the pieces of `text` that would make sympy compute astronomically large numbers.

    >>> defuse("x = 25^20000000 so 40°")
    'x = 25 ?  so 40°'
    """
    return _RUNAWAY.sub(" ? ", text)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def safe_parse(text: str) -> list:
    """math-verify's parse of defused text; with its timeout wherever signals work (main thread).
    math-verify (and sympy under it, about a second) is imported on the first call, not at startup."""
    from math_verify import parse

    return parse(defuse(text), parsing_timeout=5 if _in_main_thread() else None)


def safe_verify(gold: list, answer: list) -> bool:
    from math_verify import verify

    return bool(verify(gold, answer, timeout_seconds=5 if _in_main_thread() else None))
