"""GeoQA-like geometry problems for the tiny profile: which template, which split, and the picture.

Ten shared templates: the triangle angle sum, the exterior angle, the isosceles triangle, parallel
lines cut by a transversal (named angles, or angles 1 and 2 marked only in the figure), inscribed
vs central angles, the angle in a semicircle, the midline, Pythagorean triples and the perimeter of
a midline triangle. Four test-only templates chain the same steps into new problems: a parallel
line inside a triangle (GeoQA's own first test item), same-arc angles on a diameter, a
circumcircle with an isosceles central triangle, and the median to the hypotenuse.

Train / test disjointness: a shared-template instance has a key (template name and the parameters
that fix its question text, `Template.text_key`); a fixed 20 % of keys (by hash) is held out.
Train and warm-up draw only the other keys, so no test question text ever appears in training.
The test split is 70 % held-out instances of the shared templates (new combinations of familiar
numbers) and 30 % test-only templates. Train and warm-up share a distribution (different seed
streams), so the same question text can recur between them, with a different random diagram.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random

from PIL import Image

from mr1cli.tasks.geometry import lengths
from mr1cli.tasks.geometry import templates as angles
from mr1cli.tasks.geometry.diagram import render_diagram
from mr1cli.tasks.geometry.templates import GeoProblem, Template, two_angles

HELD_OUT_PERCENT = 20
TEST_ONLY_FRACTION = 0.3
_UNITS = ("", "cm")


def _transversal(rng: random.Random) -> int:
    return rng.choice([x for x in range(40, 141, 5) if x != 90])


def _isosceles_sides(rng: random.Random) -> tuple[int, int]:
    while True:
        a, b = rng.randint(3, 10), rng.randint(2, 12)
        if b <= 1.6 * a:
            return a, b


def _midline_params(rng: random.Random) -> tuple:
    if rng.random() < 0.5:
        return ("DE", rng.randint(3, 20), rng.choice(_UNITS))
    return ("BC", rng.randint(2, 10), rng.choice(_UNITS))


def _triple_params(rng: random.Random) -> tuple:
    return (rng.randrange(len(lengths.TRIPLES)), rng.random() < 0.5, rng.choice(_UNITS))


SHARED: dict[str, Template] = {
    "triangle_sum": Template(lambda r: (r.choice("ABC"), *two_angles(r)), angles.triangle_sum),
    "exterior_angle": Template(lambda r: (r.choice(("ACD", "B")), *two_angles(r, hi=100)), angles.exterior),
    "isosceles": Template(
        lambda r: ("B", r.randrange(20, 141, 10)) if r.random() < 0.5 else ("A", r.randrange(25, 81, 5)),
        angles.isosceles,
    ),
    "parallel_named": Template(
        lambda r: (r.choice(sorted(angles.AT_F)), _transversal(r)), angles.parallel_named
    ),
    "parallel_numbered": Template(  # which angle is "2" shows in the figure only, not in the text
        lambda r: (r.choice(("DFH", "CFH", "EFC")), _transversal(r)),
        angles.parallel_numbered,
        lambda p: p[1:],
    ),
    "inscribed_angle": Template(
        lambda r: (r.choice(("ACB", "AOB")), r.randrange(20, 81, 5)), angles.inscribed
    ),
    "semicircle": Template(lambda r: (r.choice(("BAC", "ABC")), r.randrange(20, 71, 5)), angles.semicircle),
    "midline": Template(_midline_params, lengths.midline),
    "pythagoras": Template(lambda r: (r.choice(("AB", "BC")), *_triple_params(r)), lengths.pythagoras),
    "midline_perimeter": Template(
        lambda r: (*_isosceles_sides(r), r.choice(_UNITS)), lengths.midline_perimeter
    ),
}
TEST_ONLY: dict[str, Template] = {
    "triangle_parallel": Template(
        lambda r: (r.choice(("CED", "AED")), *two_angles(r, hi=100)), angles.triangle_parallel
    ),
    "diameter_same_arc": Template(lambda r: (r.randrange(20, 71, 5),), angles.diameter_same_arc),
    "circumcircle": Template(lambda r: (r.randrange(20, 71, 5),), angles.circumcircle),
    "right_median": Template(_triple_params, lengths.right_median),
}


def is_held_out(template: str, key: tuple) -> bool:
    """Whether a shared-template instance belongs to the test split only (a fixed hash of its text key).

    >>> is_held_out("triangle_sum", ("C", 50, 60)) in (True, False)
    True
    """
    digest = hashlib.sha256(f"{template}:{key!r}".encode()).hexdigest()
    return int(digest[:8], 16) % 100 < HELD_OUT_PERCENT


def sample_problem(rng: random.Random, split: str) -> GeoProblem:
    """Draw one problem for `split`: train/warm-up never see a held-out key; test sees only those."""
    test = split == "test"
    if test and rng.random() < TEST_ONLY_FRACTION:
        template = TEST_ONLY[rng.choice(sorted(TEST_ONLY))]
        return _turned(template.build(template.params(rng), rng), rng)
    while True:
        name = rng.choice(sorted(SHARED))
        for _ in range(200):
            params = SHARED[name].params(rng)
            if is_held_out(name, SHARED[name].text_key(params)) == test:
                return _turned(SHARED[name].build(params, rng), rng)


def _turned(problem: GeoProblem, rng: random.Random) -> GeoProblem:
    """The same problem with its figure rotated by up to 25° and mirrored half the time.

    Angles, lengths and relations are unchanged, so the answer stands; the picture varies, so two
    draws of the same question text (train vs warm-up) are still different examples.
    """
    turn, mirror = math.radians(rng.uniform(-25, 25)), rng.random() < 0.5
    cos, sin = math.cos(turn), math.sin(turn)
    points = {}
    for name, (x, y) in problem.diagram.points.items():
        x = -x if mirror else x
        points[name] = (cos * x - sin * y, sin * x + cos * y)
    return dataclasses.replace(problem, diagram=dataclasses.replace(problem.diagram, points=points))


def render_problem(problem: GeoProblem, image_size: int) -> Image.Image:
    """The problem's diagram as an RGB image_size × image_size picture."""
    return render_diagram(problem.diagram, image_size)
