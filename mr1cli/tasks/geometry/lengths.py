"""GeoQA-like length templates: the midline, Pythagorean triples, perimeters, the hypotenuse median.

Lengths are drawn to scale (the diagram's units are the question's units); a template's `unit`
parameter is "" or "cm", and the answer carries the same unit ("4cm", "2.5", …).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

from mr1cli.tasks.geometry.diagram import Diagram, Point
from mr1cli.tasks.geometry.templates import (
    TRIANGLE,
    GeoProblem,
    angle,
    fmt,
    given,
    length,
    mid,
    problem,
    segs,
)

TRIPLES = ((3, 4, 5), (6, 8, 10), (9, 12, 15), (12, 16, 20), (5, 12, 13), (8, 15, 17), (7, 24, 25))
MIDPOINTS = (("midpoint", "D", "A", "B"), ("midpoint", "E", "A", "C"))


def _with_midpoints(points: dict[str, Point]) -> dict[str, Point]:
    return {**points, "D": mid(points["A"], points["B"]), "E": mid(points["A"], points["C"])}


def midline(params: tuple, rng: random.Random) -> GeoProblem:
    ask, v, unit = params
    bc = v if ask == "DE" else 2 * v
    apex = (bc * rng.uniform(0.25, 0.75), bc * rng.uniform(0.55, 0.95))
    points = _with_midpoints({"A": apex, "B": (0.0, 0.0), "C": (float(bc), 0.0)})
    if ask == "DE":
        known, value = "BC", Fraction(v, 2)
        thinking = f"DE = BC / 2 = {fmt(v)}{unit} / 2 = {fmt(value)}{unit}."
    else:
        known, value = "DE", Fraction(2 * v)
        thinking = f"BC = 2 * DE = 2 * {fmt(v)}{unit} = {fmt(value)}{unit}."
    text = (
        "in triangle ABC, D and E are the midpoints of AB and AC respectively, "
        f"if {known} = {given(v, unit)}, then the length of {ask} is ()"
    )
    diagram = Diagram(points, segs("AB BC CA DE"))
    givens = ((length(*known), v),)
    return problem("midline", text, (value, unit), thinking, length(*ask), givens, diagram, MIDPOINTS)


def right_triangle(index: int, swap: bool) -> tuple[int, int, int, dict[str, Point]]:
    """Legs AC, BC and hypotenuse AB from a Pythagorean triple, with the right angle at C."""
    p, q, hyp = TRIPLES[index]
    ac, bc = (q, p) if swap else (p, q)
    return ac, bc, hyp, {"A": (0.0, float(ac)), "B": (float(bc), 0.0), "C": (0.0, 0.0)}


def pythagoras(params: tuple, rng: random.Random) -> GeoProblem:
    ask, index, swap, unit = params
    ac, bc, ab, points = right_triangle(index, swap)
    right = (angle("A", "C", "B"), 90)
    text = "in triangle ABC, angle C = 90.0, "
    if ask == "AB":
        text += f"AC = {given(ac, unit)}, BC = {given(bc, unit)}, then the length of AB is ()"
        thinking = f"AB^2 = {ac}^2 + {bc}^2 = {ac * ac} + {bc * bc} = {ab * ab}. AB = {ab}{unit}."
        value, givens = ab, (right, (length("A", "C"), ac), (length("B", "C"), bc))
    else:
        text += f"AB = {given(ab, unit)}, AC = {given(ac, unit)}, then the length of BC is ()"
        thinking = f"BC^2 = {ab}^2 - {ac}^2 = {ab * ab} - {ac * ac} = {bc * bc}. BC = {bc}{unit}."
        value, givens = bc, (right, (length("A", "B"), ab), (length("A", "C"), ac))
    diagram = Diagram(points, TRIANGLE, right_angles=(("A", "C", "B"),))
    return problem("pythagoras", text, (value, unit), thinking, length(*ask), givens, diagram)


def midline_perimeter(params: tuple, rng: random.Random) -> GeoProblem:
    a, b, unit = params
    points = _with_midpoints(
        {"A": (b / 2, math.sqrt(a * a - b * b / 4)), "B": (0.0, 0.0), "C": (float(b), 0.0)}
    )
    half_a, half_b = Fraction(a, 2), Fraction(b, 2)
    perimeter = 2 * half_a + half_b
    text = (
        f"in triangle ABC, AB = AC = {given(a, unit)}, BC = {given(b, unit)}, D and E are the midpoints of "
        "AB and AC respectively, then the perimeter of triangle ADE is ()"
    )
    thinking = (
        f"AD = AE = {a} / 2 = {fmt(half_a)}{unit}. DE = {b} / 2 = {fmt(half_b)}{unit}. "
        f"{fmt(half_a)} + {fmt(half_a)} + {fmt(half_b)} = {fmt(perimeter)}{unit}."
    )
    diagram = Diagram(points, segs("AB BC CA DE"))
    givens = ((length("A", "B"), a), (length("A", "C"), a), (length("B", "C"), b))
    query = ("perimeter", "A", "D", "E")
    return problem("midline_perimeter", text, (perimeter, unit), thinking, query, givens, diagram, MIDPOINTS)


def right_median(params: tuple, rng: random.Random) -> GeoProblem:
    """Test-only: Pythagoras, then the median to the hypotenuse is half of it."""
    index, swap, unit = params
    ac, bc, ab, points = right_triangle(index, swap)
    points["D"] = mid(points["A"], points["B"])
    cd = Fraction(ab, 2)
    text = (
        f"in triangle ABC, angle ACB = 90.0, D is the midpoint of AB, AC = {given(ac, unit)}, "
        f"BC = {given(bc, unit)}, then the length of CD is ()"
    )
    thinking = (
        f"AB^2 = {ac}^2 + {bc}^2 = {ac * ac} + {bc * bc} = {ab * ab}. AB = {ab}{unit}. "
        f"CD = AB / 2 = {ab}{unit} / 2 = {fmt(cd)}{unit}."
    )
    diagram = Diagram(points, segs("AB BC CA CD"), right_angles=(("A", "C", "B"),))
    givens = ((angle("A", "C", "B"), 90), (length("A", "C"), ac), (length("B", "C"), bc))
    relations = (("midpoint", "D", "A", "B"),)
    return problem("right_median", text, (cd, unit), thinking, length("C", "D"), givens, diagram, relations)
