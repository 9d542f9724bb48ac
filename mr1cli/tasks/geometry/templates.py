"""GeoQA-like problems: the problem type, number formatting, and the angle templates.

A template builds a `GeoProblem` from its parameters: the question in GeoQA's phrasing (all the
given numbers in the text, written "50.0" as GeoQA does), the exact answer, a short arithmetic
reasoning trace, and a diagram drawn to scale whose coordinates satisfy every given and the
answer (the tests measure them). Length templates live in `geometry_lengths`;
`geometry` registers all templates and decides which split sees which instance.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from mr1cli.tasks.geometry.diagram import Diagram, Point

Measure = tuple[str, ...]  # ("angle", P, V, Q) = angle PVQ | ("length", P, Q) | ("perimeter", P, Q, R)
Number = Fraction | int


@dataclass(frozen=True)
class GeoProblem:
    """One problem: the question, the exact answer and its reasoning, and the measured diagram."""

    template: str
    question: str
    value: Fraction
    unit: str  # "°", "cm" or ""
    thinking: str
    query: Measure
    givens: tuple[tuple[Measure, Fraction], ...]  # every number the question states, with its measure
    diagram: Diagram
    relations: tuple[tuple[str, ...], ...] = ()  # ("parallel", A, B, C, D), ("midpoint", M, P, Q), …

    @property
    def answer(self) -> str:
        return fmt(self.value) + self.unit


@dataclass(frozen=True)
class Template:
    """How to draw a template's parameters, and how to build the problem from them."""

    params: Callable[[random.Random], tuple]
    build: Callable[[tuple, random.Random], GeoProblem]
    # The parameters that fix the question text (what the train/test hold-out hashes); default: all.
    text_key: Callable[[tuple], tuple] = lambda params: params


def fmt(value: Number) -> str:
    """An exact number as GeoQA writes answers: '70', '2.5'.

    >>> fmt(Fraction(5, 2)), fmt(Fraction(140))
    ('2.5', '140')
    """
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0")
    if Fraction(text) != value:
        raise ValueError(f"{value} has no short decimal form")
    return text


def given(value: Number, unit: str = "") -> str:
    """A number as GeoQA's question texts write it: '50.0', '2.5cm'.

    >>> given(50), given(Fraction(5, 2), "cm")
    ('50.0', '2.5cm')
    """
    value = Fraction(value)
    return (f"{value.numerator}.0" if value.denominator == 1 else fmt(value)) + unit


def deg(value: Number) -> str:
    return f"{fmt(value)}°"


def angle(p: str, v: str, q: str) -> Measure:
    return ("angle", p, v, q)


def length(p: str, q: str) -> Measure:
    return ("length", p, q)


def segs(spec: str) -> tuple[tuple[str, str], ...]:
    """Segments from a compact spec.

    >>> segs("AB DE")
    (('A', 'B'), ('D', 'E'))
    """
    return tuple((pair[0], pair[1]) for pair in spec.split())


AT = {"A": angle("B", "A", "C"), "B": angle("A", "B", "C"), "C": angle("A", "C", "B")}
TRIANGLE = segs("AB BC CA")


def triangle(angle_b: float, angle_c: float, base: float = 1.0) -> dict[str, Point]:
    """A, B, C with BC on the x-axis and the given base angles (degrees)."""
    side_ab = base * math.sin(math.radians(angle_c)) / math.sin(math.radians(angle_b + angle_c))
    a = (side_ab * math.cos(math.radians(angle_b)), side_ab * math.sin(math.radians(angle_b)))
    return {"A": a, "B": (0.0, 0.0), "C": (base, 0.0)}


def on_circle(degrees: float, radius: float = 1.0) -> Point:
    return (radius * math.cos(math.radians(degrees)), radius * math.sin(math.radians(degrees)))


def mid(p: Point, q: Point, t: float = 0.5) -> Point:
    return (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))


def two_angles(rng: random.Random, lo: int = 20, hi: int = 110, rest: int = 20) -> tuple[int, int]:
    """Two multiples of 5 in [lo, hi] leaving at least `rest` degrees for a third angle."""
    while True:
        a, b = rng.randrange(lo, hi + 1, 5), rng.randrange(lo, hi + 1, 5)
        if 180 - a - b >= rest:
            return a, b


def problem(
    name: str,
    text: str,
    answer: tuple[Number, str],
    thinking: str,
    query: Measure,
    givens: tuple[tuple[Measure, Number], ...],
    diagram: Diagram,
    relations: tuple[tuple[str, ...], ...] = (),
) -> GeoProblem:
    """Assemble a problem; every question opens with GeoQA's "As shown in the figure, "."""
    value, unit = answer
    exact = tuple((measure, Fraction(v)) for measure, v in givens)
    question = "As shown in the figure, " + text
    return GeoProblem(name, question, Fraction(value), unit, thinking, query, exact, diagram, relations)


# ---- triangles ----------------------------------------------------------------------------------


def triangle_sum(params: tuple, rng: random.Random) -> GeoProblem:
    ask, x, y = params
    first, second = (v for v in "ABC" if v != ask)
    angles = {first: x, second: y, ask: 180 - x - y}
    text = f"in triangle ABC, angle {first} = {given(x)}, angle {second} = {given(y)}, "
    text += f"then the size of angle {ask} is ()"
    thinking = f"∠{ask} = 180° - {deg(x)} - {deg(y)} = {deg(angles[ask])}."
    diagram = Diagram(triangle(angles["B"], angles["C"]), TRIANGLE)
    givens = ((AT[first], x), (AT[second], y))
    return problem("triangle_sum", text, (angles[ask], "°"), thinking, AT[ask], givens, diagram)


def exterior(params: tuple, rng: random.Random) -> GeoProblem:
    ask, a, b = params
    diagram = Diagram({**triangle(b, 180 - a - b), "D": (1.45, 0.0)}, segs("AB BD CA"))
    acd = angle("A", "C", "D")
    text = "in triangle ABC, D is a point on the extension line of BC, "
    if ask == "ACD":
        text += f"angle A = {given(a)}, angle B = {given(b)}, then the degree of angle ACD is ()"
        thinking = f"∠ACD = ∠A + ∠B = {deg(a)} + {deg(b)} = {deg(a + b)}."
        value, query, givens = a + b, acd, ((AT["A"], a), (AT["B"], b))
    else:
        text += f"angle ACD = {given(a + b)}, angle A = {given(a)}, then the degree of angle B is ()"
        thinking = f"∠B = ∠ACD - ∠A = {deg(a + b)} - {deg(a)} = {deg(b)}."
        value, query, givens = b, AT["B"], ((acd, a + b), (AT["A"], a))
    relations = (("collinear", "B", "C", "D"),)
    return problem("exterior_angle", text, (value, "°"), thinking, query, givens, diagram, relations)


def isosceles(params: tuple, rng: random.Random) -> GeoProblem:
    ask, v = params
    apex, base = (Fraction(v), Fraction(180 - v, 2)) if ask == "B" else (Fraction(180 - 2 * v), Fraction(v))
    known = "A" if ask == "B" else "B"
    text = f"in triangle ABC, AB = AC, angle {known} = {given(v)}, then the degree of angle {ask} is ()"
    if ask == "B":
        thinking = f"∠B = ∠C = (180° - {deg(apex)}) / 2 = {deg(base)}."
    else:
        thinking = f"∠C = ∠B = {deg(base)}. ∠A = 180° - 2 * {deg(base)} = {deg(apex)}."
    diagram = Diagram(triangle(float(base), float(base)), TRIANGLE)
    answer = (base if ask == "B" else apex, "°")
    relations = (("equal", "A", "B", "A", "C"),)
    return problem("isosceles", text, answer, thinking, AT[ask], ((AT[known], v),), diagram, relations)


def triangle_parallel(params: tuple, rng: random.Random) -> GeoProblem:
    """Test-only: DE ∥ BC inside triangle ABC (GeoQA test item 0 is this template with 80°, 60°)."""
    ask, a, b = params
    c = 180 - a - b
    points = triangle(b, c)
    t = rng.uniform(0.4, 0.6)
    points["D"], points["E"] = mid(points["A"], points["B"], t), mid(points["A"], points["C"], t)
    thinking = f"∠C = 180° - {deg(a)} - {deg(b)} = {deg(c)}. ∠AED = ∠C = {deg(c)}."
    if ask == "CED":
        thinking += f" ∠CED = 180° - {deg(c)} = {deg(a + b)}."
    text = (
        f"in triangle ABC, it is known that angle A = {given(a)}, angle B = {given(b)}, point D is on AB and "
        f"point E is on AC, DE parallel BC, then the size of angle {ask} is ()"
    )
    diagram = Diagram(points, segs("AB BC CA DE"))
    relations = (("parallel", "D", "E", "B", "C"), ("collinear", "A", "D", "B"), ("collinear", "A", "E", "C"))
    answer = (a + b if ask == "CED" else c, "°")
    query, givens = angle(ask[0], "E", "D"), ((AT["A"], a), (AT["B"], b))
    return problem("triangle_parallel", text, answer, thinking, query, givens, diagram, relations)


# ---- parallel lines cut by a transversal --------------------------------------------------------


def parallel_points(x: int) -> dict[str, Point]:
    """AB ∥ CD (horizontal) cut by GH at E (on AB) and F (on CD), with angle AEF = x."""
    u = (-math.cos(math.radians(x)), -math.sin(math.radians(x)))  # unit direction E → F
    e, f = (0.0, 1.0), (u[0] / -u[1], 0.0)
    left, right = min(e[0], f[0]) - 0.9, max(e[0], f[0]) + 0.9
    g, h = (e[0] - 0.8 * u[0], e[1] - 0.8 * u[1]), (f[0] + 0.8 * u[0], f[1] + 0.8 * u[1])
    return {
        "A": (left, 1.0),
        "B": (right, 1.0),
        "C": (left, 0.0),
        "D": (right, 0.0),
        "E": e,
        "F": f,
        "G": g,
        "H": h,
    }


PARALLEL_RELATIONS = (
    ("parallel", "A", "B", "C", "D"),
    ("collinear", "A", "E", "B"),
    ("collinear", "C", "F", "D"),
    ("collinear", "G", "E", "F", "H"),
)
# The angles at F, by name: (measure, whether it equals angle AEF (else its supplement)).
AT_F = {
    "EFD": (angle("E", "F", "D"), True),
    "EFC": (angle("E", "F", "C"), False),
    "CFH": (angle("C", "F", "H"), True),
    "DFH": (angle("D", "F", "H"), False),
}


def parallel_named(params: tuple, rng: random.Random) -> GeoProblem:
    ask, x = params
    query, same = AT_F[ask]
    value = x if same else 180 - x
    thinking = {
        "EFD": f"∠EFD = ∠AEF = {deg(x)}.",
        "EFC": f"∠EFC = 180° - ∠AEF = 180° - {deg(x)} = {deg(value)}.",
        "CFH": f"∠EFD = ∠AEF = {deg(x)}. ∠CFH = ∠EFD = {deg(x)}.",
        "DFH": f"∠EFD = ∠AEF = {deg(x)}. ∠DFH = 180° - {deg(x)} = {deg(value)}.",
    }[ask]
    text = (
        "AB parallel CD, the straight line GH intersects AB at point E and intersects CD at point F, "
        f"angle AEF = {given(x)}, then the degree of angle {ask} is ()"
    )
    diagram = Diagram(parallel_points(x), segs("AB CD GH"))
    givens = ((angle("A", "E", "F"), x),)
    return problem("parallel_named", text, (value, "°"), thinking, query, givens, diagram, PARALLEL_RELATIONS)


def parallel_numbered(params: tuple, rng: random.Random) -> GeoProblem:
    """Angles 1 and 2 are marked in the figure only: the text alone does not say which they are."""
    ask, x = params
    query, same = AT_F[ask]
    value = x if same else 180 - x
    second = f"∠2 = ∠EFD = {deg(x)}." if same else f"∠2 = 180° - {deg(x)} = {deg(value)}."
    text = (
        "AB parallel CD, the straight line GH intersects AB at E and intersects CD at F, "
        f"angle 1 = {given(x)}, then the degree of angle 2 is ()"
    )
    marks = (("G", "E", "B", "1"), (query[1], "F", query[3], "2"))
    diagram = Diagram(parallel_points(x), segs("AB CD GH"), numbered=marks)
    thinking, givens = f"∠EFD = ∠1 = {deg(x)}. {second}", ((angle("G", "E", "B"), x),)
    return problem(
        "parallel_numbered", text, (value, "°"), thinking, query, givens, diagram, PARALLEL_RELATIONS
    )


# ---- circles ------------------------------------------------------------------------------------

CIRCLE = (("O", 1.0),)


def on_circle_relations(names: str) -> tuple[tuple[str, ...], ...]:
    return tuple(("on_circle", "O", name, "1") for name in names)


def inscribed(params: tuple, rng: random.Random) -> GeoProblem:
    ask, y = params
    c = on_circle(90 + rng.uniform(-40, 40))
    points = {"O": (0.0, 0.0), "A": on_circle(-90 - y), "B": on_circle(-90 + y), "C": c}
    aob, acb = angle("A", "O", "B"), angle("A", "C", "B")
    text = "points A, B and C are on circle O, "
    if ask == "ACB":
        text += f"angle AOB = {given(2 * y)}, then the degree of angle ACB is ()"
        thinking, value, query, givens = (
            f"∠ACB = ∠AOB / 2 = {deg(2 * y)} / 2 = {deg(y)}.",
            y,
            acb,
            ((aob, 2 * y),),
        )
    else:
        text += f"angle ACB = {given(y)}, then the degree of angle AOB is ()"
        thinking, value, query, givens = (
            f"∠AOB = 2 * ∠ACB = 2 * {deg(y)} = {deg(2 * y)}.",
            2 * y,
            aob,
            ((acb, y),),
        )
    diagram = Diagram(points, segs("OA OB CA CB"), circles=CIRCLE)
    relations = on_circle_relations("ABC")
    return problem("inscribed_angle", text, (value, "°"), thinking, query, givens, diagram, relations)


def diameter_points(abc: float) -> dict[str, Point]:
    """AB a horizontal diameter of the unit circle O, C on the upper arc with angle ABC = abc."""
    return {"O": (0.0, 0.0), "A": (-1.0, 0.0), "B": (1.0, 0.0), "C": on_circle(180 - 2 * abc)}


def semicircle(params: tuple, rng: random.Random) -> GeoProblem:
    ask, x = params
    known = "ABC" if ask == "BAC" else "BAC"
    at = {"ABC": AT["B"], "BAC": AT["A"]}
    text = f"AB is the diameter of circle O, point C is on circle O, angle {known} = {given(x)}, "
    text += f"then the degree of angle {ask} is ()"
    thinking = f"∠ACB = 90°. ∠{ask} = 90° - {deg(x)} = {deg(90 - x)}."
    diagram = Diagram(diameter_points(x if known == "ABC" else 90 - x), TRIANGLE, circles=CIRCLE)
    relations = (*on_circle_relations("C"), ("midpoint", "O", "A", "B"))
    return problem(
        "semicircle", text, (90 - x, "°"), thinking, at[ask], ((at[known], x),), diagram, relations
    )


def diameter_same_arc(params: tuple, rng: random.Random) -> GeoProblem:
    """Test-only: angle in a semicircle, then the inscribed angle on the same arc."""
    (x,) = params
    points = {**diameter_points(x), "D": on_circle(rng.uniform(235, 295))}
    text = (
        f"AB is the diameter of circle O, C and D are two points on circle O, angle ABC = {given(x)}, "
        "then the degree of angle BDC is ()"
    )
    thinking = f"∠ACB = 90°. ∠BAC = 90° - {deg(x)} = {deg(90 - x)}. ∠BDC = ∠BAC = {deg(90 - x)}."
    diagram = Diagram(points, segs("AB AC BC DB DC"), circles=CIRCLE)
    relations = (*on_circle_relations("CD"), ("midpoint", "O", "A", "B"))
    query, givens = angle("B", "D", "C"), ((AT["B"], x),)
    return problem("diameter_same_arc", text, (90 - x, "°"), thinking, query, givens, diagram, relations)


def circumcircle(params: tuple, rng: random.Random) -> GeoProblem:
    """Test-only: the isosceles triangle AOB gives the central angle, then half of it."""
    (x,) = params
    half = 90 - x  # half of the central angle AOB
    c = on_circle(90 + rng.uniform(-35, 35))
    points = {"O": (0.0, 0.0), "A": on_circle(-90 - half), "B": on_circle(-90 + half), "C": c}
    text = f"circle O is the circumscribed circle of triangle ABC, angle ABO = {given(x)}, "
    text += "then the size of angle ACB is ()"
    thinking = (
        f"∠OAB = ∠ABO = {deg(x)}. ∠AOB = 180° - 2 * {deg(x)} = {deg(2 * half)}. "
        f"∠ACB = {deg(2 * half)} / 2 = {deg(half)}."
    )
    diagram = Diagram(points, segs("AB BC CA OA OB"), circles=CIRCLE)
    query, givens = angle("A", "C", "B"), ((angle("A", "B", "O"), x),)
    return problem(
        "circumcircle", text, (half, "°"), thinking, query, givens, diagram, on_circle_relations("ABC")
    )
