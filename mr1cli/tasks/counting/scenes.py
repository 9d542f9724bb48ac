"""CLEVR-like counting scenes for training, and a shifted SuperCLEVR-like test distribution.

Train and warm-up scenes hold 1–8 spheres, cubes and cylinders in five colours (rubber or
metal, two sizes), lit from the upper left, on a grey gradient floor with soft shadows. The
question is "How many items are there in the image?" or a colour / shape filtered variant.

The test split shifts the distribution the way SuperCLEVR shifts CLEVR, while staying countable:
an unseen object type (cones) and unseen colours (cyan, brown), light from the upper right on a
warmer floor, 2–8 objects (every test answer is one training can reach), and R1-V's SuperCLEVR wording "How many different items are there in
the image?" for the unfiltered question (75 % of test questions; the filters name train-time
colours and shapes only). No object hides or touches another (rejection-sampled positions).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

TRAIN_COLOURS = {
    "red": (178, 34, 34),
    "blue": (40, 80, 215),
    "green": (30, 150, 55),
    "yellow": (235, 205, 40),
    "purple": (135, 45, 195),
}
TEST_COLOURS = {**TRAIN_COLOURS, "cyan": (40, 205, 210), "brown": (125, 75, 30)}
PLURAL = {"sphere": "spheres", "cube": "cubes", "cylinder": "cylinders", "cone": "cones"}
# Bounding box of each shape, as (width, height) in units of the object's size.
_EXTENT = {"sphere": (1.0, 1.0), "cube": (1.0, 1.0), "cylinder": (0.86, 1.05), "cone": (0.94, 1.1)}
LARGE, SMALL = 0.16, 0.115  # object size as a fraction of the image side, before perspective
Y_NEAR, Y_FAR = 0.94, 0.3  # range of the ground-contact line (fraction of the image height)
X_MIN, X_MAX, MARGIN = 0.05, 0.95, 0.03
SUPERSAMPLE = 2


@dataclass(frozen=True)
class Style:
    """What a split's scenes look like and ask."""

    shapes: tuple[str, ...]
    colours: dict[str, tuple[int, int, int]]
    counts: tuple[int, int]  # inclusive range of the number of objects
    unfiltered_question: str
    p_unfiltered: float
    light_from_right: bool
    floor_tint: tuple[int, int, int]


TRAIN_STYLE = Style(
    shapes=("sphere", "cube", "cylinder"),
    colours=TRAIN_COLOURS,
    counts=(1, 8),
    unfiltered_question="How many items are there in the image?",
    p_unfiltered=0.5,
    light_from_right=False,
    floor_tint=(0, 0, 0),
)
TEST_STYLE = Style(
    shapes=("sphere", "cube", "cylinder", "cone"),
    colours=TEST_COLOURS,
    counts=(2, 8),
    unfiltered_question="How many different items are there in the image?",
    p_unfiltered=0.75,
    light_from_right=True,
    floor_tint=(8, 3, -6),
)
STYLES = {"train": TRAIN_STYLE, "warmup": TRAIN_STYLE, "heldout": TRAIN_STYLE, "test": TEST_STYLE}


@dataclass(frozen=True)
class SceneObject:
    """One object; `x` is the centre and `y` the ground-contact line, as fractions of the image."""

    shape: str
    colour: str
    large: bool
    metal: bool
    x: float
    y: float

    @property
    def size(self) -> float:
        """Apparent size (fraction of the image side): nearer objects (larger y) look bigger."""
        return (LARGE if self.large else SMALL) * perspective(self.y)

    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) as fractions of the image."""
        width, height = (factor * self.size for factor in _EXTENT[self.shape])
        return (self.x - width / 2, self.y - height, self.x + width / 2, self.y)


@dataclass(frozen=True)
class CountFilter:
    """Count only objects whose `kind` ("colour" or "shape") equals `value`."""

    kind: str
    value: str

    def matches(self, obj: SceneObject) -> bool:
        return getattr(obj, self.kind) == self.value


@dataclass(frozen=True)
class CountingScene:
    """A scene, its question and (derived) answer and left-to-right reasoning trace."""

    objects: tuple[SceneObject, ...]
    target: CountFilter | None
    question: str
    style: Style

    def counted(self) -> list[SceneObject]:
        """The objects the question asks about, left to right."""
        chosen = [o for o in self.objects if self.target is None or self.target.matches(o)]
        return sorted(chosen, key=lambda o: o.x)

    @property
    def answer(self) -> str:
        return str(len(self.counted()))

    @property
    def thinking(self) -> str:
        counted = self.counted()
        listing = ", ".join(f"{o.colour} {o.shape}" for o in counted) or "none"
        return f"{listing}. {len(counted)} {_noun(self.target, len(counted))}."


def perspective(y: float) -> float:
    """Apparent-size factor of an object standing at height y (0.85 far … 1.15 near).

    >>> round(perspective(Y_FAR), 2), round(perspective(Y_NEAR), 2)
    (0.85, 1.15)
    """
    return 0.85 + 0.3 * (y - Y_FAR) / (Y_NEAR - Y_FAR)


def _noun(target: CountFilter | None, count: int) -> str:
    """The counted noun with its number: 'items', 'red objects', 'cubes' (singular for 1).

    >>> _noun(CountFilter("colour", "red"), 1), _noun(CountFilter("shape", "cube"), 2)
    ('red object', 'cubes')
    """
    if target is None:
        return "item" if count == 1 else "items"
    if target.kind == "colour":
        return f"{target.value} object" + ("" if count == 1 else "s")
    return target.value if count == 1 else PLURAL[target.value]


def _question(style: Style, target: CountFilter | None) -> str:
    if target is None:
        return style.unfiltered_question
    noun = f"{target.value} objects" if target.kind == "colour" else PLURAL[target.value]
    return f"How many {noun} are there in the image?"


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return not (
        a[2] + MARGIN <= b[0] or b[2] + MARGIN <= a[0] or a[3] + MARGIN <= b[1] or b[3] + MARGIN <= a[1]
    )


def _place(rng: random.Random, kinds: list[tuple[str, str, bool, bool]]) -> list[SceneObject] | None:
    """Positions for every object with no two boxes closer than MARGIN, or None if stuck."""
    placed: list[SceneObject] = []
    for shape, colour, large, metal in kinds:
        for _ in range(80):
            y = rng.uniform(Y_FAR, Y_NEAR)
            obj = SceneObject(shape, colour, large, metal, 0.0, y)
            half = _EXTENT[shape][0] * obj.size / 2
            obj = SceneObject(shape, colour, large, metal, rng.uniform(X_MIN + half, X_MAX - half), y)
            if obj.box()[1] >= 0.04 and not any(_overlaps(obj.box(), other.box()) for other in placed):
                placed.append(obj)
                break
        else:
            return None
    return placed


def _sample_objects(rng: random.Random, style: Style, count: int) -> list[SceneObject]:
    colours = list(style.colours)
    for attempt in range(60):  # after 30 crowded layouts fail, fall back to small objects only
        kinds = [
            (
                rng.choice(style.shapes),
                rng.choice(colours),
                attempt < 30 and rng.random() < 0.5,
                rng.random() < 0.4,
            )
            for _ in range(count)
        ]
        placed = _place(rng, kinds)
        if placed is not None:
            return placed
    raise RuntimeError(f"could not place {count} objects without overlap")  # not reached in practice


def _sample_target(rng: random.Random, style: Style, objects: list[SceneObject]) -> CountFilter | None:
    """None (count everything) or a filter naming a train-time colour / shape, present 95 % of the time."""
    if rng.random() < style.p_unfiltered:
        return None
    kind = rng.choice(("colour", "shape"))
    known = sorted(TRAIN_COLOURS) if kind == "colour" else list(TRAIN_STYLE.shapes)
    present = [v for v in known if any(getattr(o, kind) == v for o in objects)]
    absent = [v for v in known if v not in present]
    pool = absent if absent and (not present or rng.random() < 0.05) else present
    return CountFilter(kind, rng.choice(pool))


def sample_scene(rng: random.Random, split: str) -> CountingScene:
    """Draw one scene for `split` ("train", "warmup", "heldout" or "test") from `rng`."""
    style = STYLES[split]
    objects = _sample_objects(rng, style, rng.randint(*style.counts))
    target = _sample_target(rng, style, objects)
    return CountingScene(tuple(objects), target, _question(style, target), style)


# ---- rendering ---------------------------------------------------------------------------------


def _light(from_right: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit light and half-vectors (x right, y up, z towards the viewer)."""
    light = np.array([0.55 if from_right else -0.55, 0.75, 0.65])
    light /= np.linalg.norm(light)
    half = light + np.array([0.0, 0.0, 1.0])
    return light, half / np.linalg.norm(half)


def _shade(rgb: tuple[int, int, int], normals: np.ndarray, metal: bool, from_right: bool) -> np.ndarray:
    """Blinn-Phong colour for an [h, w, 3] array of unit normals."""
    light, half = _light(from_right)
    diffuse = np.clip(normals @ light, 0.0, 1.0)[..., None]  # [h, w, 1]
    specular = np.clip(normals @ half, 0.0, 1.0)[..., None] ** (40 if metal else 8)
    ambient, gain, shine = (0.18, 1.0, 0.9) if metal else (0.32, 0.78, 0.16)
    return np.asarray(rgb, dtype=np.float32) * (ambient + gain * diffuse) + 255.0 * shine * specular


Surface = tuple[np.ndarray, np.ndarray]  # (mask [h, w], unit normals [h, w, 3])


def _sphere(xs: np.ndarray, ys: np.ndarray, box: tuple[float, ...], s: float) -> Surface:
    left, _, right, bottom = box
    r = s / 2
    nx, ny = (xs - (left + right) / 2) / r, ((bottom - r) - ys) / r
    nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
    return nx**2 + ny**2 <= 1.0, np.stack([nx, ny, nz], axis=-1)


def _cube(xs: np.ndarray, ys: np.ndarray, box: tuple[float, ...], s: float) -> Surface:
    """A front square, a top parallelogram and a right side face (oblique projection)."""
    x0, _, _, y1 = box
    front, depth = 0.78 * s, 0.22 * s
    in_front = (xs >= x0) & (xs <= x0 + front) & (ys >= y1 - front) & (ys <= y1)
    t = (y1 - front) - ys
    in_top = (t >= 0) & (t <= depth) & (xs >= x0 + t) & (xs <= x0 + front + t)
    u = xs - (x0 + front)
    in_side = (u >= 0) & (u <= depth) & (ys >= y1 - front - u) & (ys <= y1 - u)
    normals = np.zeros((*xs.shape, 3), dtype=np.float32)
    normals[in_front] = (0.0, 0.0, 1.0)
    normals[in_side] = (1.0, 0.0, 0.0)
    normals[in_top] = (0.0, 1.0, 0.0)
    return in_front | in_top | in_side, normals


def _revolved(xs: np.ndarray, ys: np.ndarray, box: tuple[float, ...], s: float, cone: bool) -> Surface:
    """A cylinder (flat lit cap) or a cone: a body of revolution over an elliptical base."""
    left, top, right, bottom = box
    cx, rx, ry = (left + right) / 2, (right - left) / 2, 0.16 * s
    base_y, top_y = bottom - ry, top + ry
    in_base = ((xs - cx) / rx) ** 2 + ((ys - base_y) / ry) ** 2 <= 1.0
    if cone:
        in_body = (ys >= top) & (ys <= base_y) & (np.abs(xs - cx) <= rx * (ys - top) / (base_y - top))
        in_cap = np.zeros_like(in_body)
    else:
        in_body = (np.abs(xs - cx) <= rx) & (ys >= top_y) & (ys <= base_y)
        in_cap = ((xs - cx) / rx) ** 2 + ((ys - top_y) / ry) ** 2 <= 1.0
    tilt = 0.4 if cone else 0.0  # a cone's flank leans towards the sky
    nx = np.clip((xs - cx) / rx, -1.0, 1.0)
    normals = np.stack(
        [nx * np.cos(tilt), np.full_like(nx, np.sin(tilt)), np.sqrt(1.0 - nx**2) * np.cos(tilt)], axis=-1
    )
    normals[in_cap] = (0.0, 1.0, 0.0)
    return in_body | in_base | in_cap, normals


_SURFACES = {
    "sphere": _sphere,
    "cube": _cube,
    "cylinder": lambda xs, ys, box, s: _revolved(xs, ys, box, s, cone=False),
    "cone": lambda xs, ys, box, s: _revolved(xs, ys, box, s, cone=True),
}


def _paint_object(canvas: np.ndarray, obj: SceneObject, from_right: bool) -> None:
    """Draw one object into the float [H, W, 3] canvas in place."""
    side = canvas.shape[0]
    box = tuple(v * side for v in obj.box())
    left, top = max(0, int(box[0]) - 1), max(0, int(box[1]) - 1)
    right, bottom = min(side, int(box[2]) + 2), min(side, int(box[3]) + 2)
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32) + 0.5  # pixel centres
    mask, normals = _SURFACES[obj.shape](xs, ys, box, obj.size * side)
    colours = _shade(TEST_COLOURS[obj.colour], normals, obj.metal, from_right)  # [h, w, 3]
    region = canvas[top:bottom, left:right]
    region[mask] = colours[mask]


def _floor(side: int, style: Style) -> np.ndarray:
    """A grey floor, lighter far away, with a faint light pool on the lit side."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / side
    lit_x = 0.8 if style.light_from_right else 0.2
    value = 168.0 - 48.0 * ys + 14.0 * np.exp(-((xs - lit_x) ** 2 + (ys - 0.35) ** 2) / 0.15)
    return value[..., None] + np.asarray(style.floor_tint, dtype=np.float32)  # [H, W, 3]


def _shadow_mask(scene: CountingScene, side: int) -> np.ndarray:
    """Soft contact shadows, cast away from the light: [H, W] in 0..1."""
    layer = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(layer)
    direction = -1.0 if scene.style.light_from_right else 1.0
    for obj in scene.objects:
        s = obj.size * side
        cx, cy = obj.x * side + direction * 0.28 * s, obj.y * side - 0.1 * s
        draw.ellipse((cx - 0.62 * s, cy - 0.2 * s, cx + 0.62 * s, cy + 0.2 * s), fill=255)
    layer = layer.filter(ImageFilter.GaussianBlur(radius=0.012 * side))
    return np.asarray(layer, dtype=np.float32) / 255.0


def render_scene(scene: CountingScene, image_size: int) -> Image.Image:
    """Draw the scene as an RGB image_size × image_size picture (rendered 2× then downsampled)."""
    side = image_size * SUPERSAMPLE
    canvas = _floor(side, scene.style) * (1.0 - 0.45 * _shadow_mask(scene, side))[..., None]
    for obj in sorted(scene.objects, key=lambda o: o.y):  # far to near
        _paint_object(canvas, obj, scene.style.light_from_right)
    pixels = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB").resize((image_size, image_size), Image.Resampling.LANCZOS)
