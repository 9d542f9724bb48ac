"""Draw a geometry diagram: black segments and circles on white, capital point labels, angle marks.

Drawn at 3× the target size and downsampled with LANCZOS, so lines are crisp at 336 px and
labels legible at 112 px. Labels sit in the widest free angular gap around their point, so they
do not cover the lines through it. The built-in Pillow font keeps renders identical across
machines (no system fonts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

Point = tuple[float, float]
OVERSAMPLE = 3


@dataclass(frozen=True)
class Diagram:
    """A figure in its own (y-up) coordinates, drawn to scale."""

    points: dict[str, Point]
    segments: tuple[tuple[str, str], ...]
    circles: tuple[tuple[str, float], ...] = ()  # (centre point, radius)
    numbered: tuple[tuple[str, str, str, str], ...] = ()  # (P, V, Q, label): angle PVQ marked "label"
    right_angles: tuple[tuple[str, str, str], ...] = ()  # (P, V, Q): a square mark at V


def _unit(dx: float, dy: float) -> Point:
    norm = math.hypot(dx, dy)
    return (dx / norm, dy / norm)


def _rays(diagram: Diagram, name: str) -> list[float]:
    """Directions (radians, y-up) of every line leaving point `name`, including circle tangents."""
    px, py = diagram.points[name]
    rays = []
    for a, b in diagram.segments:
        (ax, ay), (bx, by) = diagram.points[a], diagram.points[b]
        length2 = (bx - ax) ** 2 + (by - ay) ** 2
        t = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / length2
        cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
        if abs(cross) > 1e-6 * length2 or t < -1e-9 or t > 1 + 1e-9:
            continue  # the point is not on this segment
        if t > 1e-9:
            rays.append(math.atan2(ay - py, ax - px))
        if t < 1 - 1e-9:
            rays.append(math.atan2(by - py, bx - px))
    for centre, radius in diagram.circles:
        cx, cy = diagram.points[centre]
        if abs(math.hypot(px - cx, py - cy) - radius) < 1e-6 * radius:
            tangent = math.atan2(px - cx, -(py - cy))
            rays += [tangent, tangent + math.pi]
    marked = [mark[:3] for mark in diagram.numbered] + list(diagram.right_angles)
    for p, v, q in marked:  # keep the label off an angle mark: its bisector counts as a line
        if v == name:
            (ax, ay), (bx, by) = (
                _unit(*_minus(diagram.points[p], (px, py))),
                _unit(*_minus(diagram.points[q], (px, py))),
            )
            rays.append(math.atan2(ay + by, ax + bx))
    return rays


def _minus(p: Point, q: Point) -> Point:
    return (p[0] - q[0], p[1] - q[1])


def label_direction(diagram: Diagram, name: str) -> Point:
    """Unit vector (y-up) pointing into the widest gap between the lines at the point.

    >>> d = Diagram({"A": (0.0, 0.0), "B": (1.0, 0.0)}, (("A", "B"),))
    >>> tuple(round(v, 6) for v in label_direction(d, "A"))
    (-1.0, 0.0)
    """
    rays = sorted(r % (2 * math.pi) for r in _rays(diagram, name))
    if not rays:
        return _unit(1.0, 1.0)
    gaps = [((rays[(i + 1) % len(rays)] - r) % (2 * math.pi) or 2 * math.pi, r) for i, r in enumerate(rays)]
    width, start = max(gaps)
    middle = start + width / 2
    return (math.cos(middle), math.sin(middle))


def render_diagram(diagram: Diagram, image_size: int) -> Image.Image:
    """The diagram as an RGB image_size × image_size picture."""
    side = image_size * OVERSAMPLE
    pad = 0.14 * side
    xs = [p[0] for p in diagram.points.values()]
    ys = [p[1] for p in diagram.points.values()]
    for centre, radius in diagram.circles:
        cx, cy = diagram.points[centre]
        xs += [cx - radius, cx + radius]
        ys += [cy - radius, cy + radius]
    scale = (side - 2 * pad) / max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    x_off = (side - scale * (max(xs) - min(xs))) / 2 - scale * min(xs)
    y_off = (side - scale * (max(ys) - min(ys))) / 2 + scale * max(ys)

    def pixel(name: str) -> Point:
        x, y = diagram.points[name]
        return (x_off + scale * x, y_off - scale * y)

    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    width = max(2, round(side / 80))
    for a, b in diagram.segments:
        draw.line([pixel(a), pixel(b)], fill="black", width=width)
    for centre, radius in diagram.circles:
        cx, cy = pixel(centre)
        r = radius * scale
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline="black", width=width)
    _marks(draw, diagram, pixel, side, width)
    font = ImageFont.load_default(size=round(0.1 * side))
    dot = width * 0.9
    for name in diagram.points:
        x, y = pixel(name)
        draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill="black")
        dx, dy = label_direction(diagram, name)
        offset = 0.075 * side
        draw.text((x + offset * dx, y - offset * dy), name, font=font, fill="black", anchor="mm")
    return image.resize((image_size, image_size), Image.Resampling.LANCZOS)


def _marks(draw: ImageDraw.ImageDraw, diagram: Diagram, pixel, side: int, width: int) -> None:
    """Numbered angle arcs and right-angle squares (pixel space, y down)."""
    font = ImageFont.load_default(size=round(0.075 * side))
    for p, v, q, label in diagram.numbered:
        vx, vy = pixel(v)
        a1 = math.degrees(math.atan2(pixel(p)[1] - vy, pixel(p)[0] - vx))
        a2 = math.degrees(math.atan2(pixel(q)[1] - vy, pixel(q)[0] - vx))
        start, end = (a1, a2) if (a2 - a1) % 360 < 180 else (a2, a1)
        r = 0.06 * side
        draw.arc((vx - r, vy - r, vx + r, vy + r), start, end, fill="black", width=max(1, width - 1))
        middle = math.radians(start + ((end - start) % 360) / 2)
        draw.text(
            (vx + 1.9 * r * math.cos(middle), vy + 1.9 * r * math.sin(middle)),
            label,
            font=font,
            fill="black",
            anchor="mm",
        )
    for p, v, q in diagram.right_angles:
        vx, vy = pixel(v)
        u1 = _unit(pixel(p)[0] - vx, pixel(p)[1] - vy)
        u2 = _unit(pixel(q)[0] - vx, pixel(q)[1] - vy)
        s = 0.045 * side
        corner = (vx + s * (u1[0] + u2[0]), vy + s * (u1[1] + u2[1]))
        draw.line(
            [(vx + s * u1[0], vy + s * u1[1]), corner, (vx + s * u2[0], vy + s * u2[1])],
            fill="black",
            width=max(1, width - 1),
        )
