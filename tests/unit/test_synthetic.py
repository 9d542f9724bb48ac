"""Synthetic datasets: determinism, the R1-V schemas, exact answers, and train/test disjointness."""

from __future__ import annotations

import ast
import io
import json
import math
import operator
import random
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.data import contact_sheet, synthetic
from mr1cli.data.example import Example, ImageRef
from mr1cli.data.for_config import balanced_by_answer, load_examples
from mr1cli.tasks.counting import scenes as synth_counting
from mr1cli.tasks.counting.scenes import TRAIN_COLOURS, TRAIN_STYLE, CountingScene
from mr1cli.tasks.geometry import problems as synth_geometry
from mr1cli.tasks.geometry.problems import SHARED, TEST_ONLY, is_held_out

TASKS = ("counting", "geometry")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def scenes(split: str, count: int = 300) -> list[CountingScene]:
    return [synth_counting.sample_scene(random.Random(f"scene-{split}-{i}"), split) for i in range(count)]


def problems(split: str, count: int = 400) -> list[synth_geometry.GeoProblem]:
    return [synth_geometry.sample_problem(random.Random(f"geo-{split}-{i}"), split) for i in range(count)]


# ---- determinism and files ----------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_same_seed_gives_byte_identical_files_and_other_seed_differs(
    tmp_path: Path, task: str, split: str
) -> None:
    first = synthetic.write_split(task, split, n=4, seed=3, out_dir=tmp_path / "a")
    synthetic.write_split(task, split, n=4, seed=3, out_dir=tmp_path / "b")
    other = synthetic.write_split(task, split, n=4, seed=4, out_dir=tmp_path / "c")
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    assert first.read_bytes() != other.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_train_parquet_has_the_r1v_schema(tmp_path: Path) -> None:
    path = synthetic.write_split("counting", "train", n=5, seed=0, out_dir=tmp_path / "d", image_size=64)
    assert path == tmp_path / "d" / "data.parquet"
    table = pq.read_table(path)
    assert table.schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for name in ("problem", "solution", "thinking"):
        assert table.schema.field(name).type == pa.string()
    assert b"huggingface" in table.schema.metadata  # `datasets` decodes `image` as an Image feature
    rows = synthetic.generate("counting", "train", n=5, seed=0, image_size=64)
    for record, row in zip(table.to_pylist(), rows, strict=True):
        assert record["image"] == {"bytes": row.image_png, "path": f"{row.id}.png"}
        assert record["problem"] == row.question
        assert record["solution"] == f"<answer> {row.answer} </answer>"
        assert record["thinking"] == row.thinking
        assert Image.open(io.BytesIO(row.image_png)).size == (64, 64)
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert {k: meta[k] for k in ("task", "split", "n", "seed", "image_size")} == {
        "task": "counting",
        "split": "train",
        "n": 5,
        "seed": 0,
        "image_size": 64,
    }
    assert meta["generator_version"] == synthetic.GENERATOR_VERSION


@pytest.mark.parametrize(("task", "truth_type"), [("counting", int), ("geometry", str)])
def test_test_jsonl_has_the_r1v_schema(tmp_path: Path, task: str, truth_type: type) -> None:
    path = synthetic.write_split(task, "test", n=5, seed=0, out_dir=tmp_path / "t")
    assert path == tmp_path / "t" / "test.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows = synthetic.generate(task, "test", n=5, seed=0)
    for record, row in zip(records, rows, strict=True):
        assert list(record) == ["image_path", "question", "ground_truth"]
        assert record["image_path"] == f"./images/{row.id}.png"
        assert type(record["ground_truth"]) is truth_type
        assert str(record["ground_truth"]) == row.answer and record["question"] == row.question
        assert (tmp_path / "t" / record["image_path"]).read_bytes() == row.image_png


@pytest.mark.parametrize("task", TASKS)
def test_the_dataset_loader_reads_every_split(tmp_path: Path, task: str) -> None:
    from mr1cli.data.sources import load_split

    for split in ("warmup", "test"):
        path = synthetic.write_split(task, split, n=3, seed=1, out_dir=tmp_path / split)
        loaded = load_split(str(path), task=task)
        rows = synthetic.generate(task, split, n=3, seed=1)
        assert [e.truth for e in loaded.examples] == [r.answer for r in rows]
        assert [e.question for e in loaded.examples] == [r.question for r in rows]
        assert loaded.examples[0].load_image().size == (112, 112)
    assert loaded.examples[0].thinking == ""  # test files carry no reasoning trace


@pytest.mark.parametrize("task", TASKS)
def test_sample_spec_is_the_structure_behind_each_generated_row(task: str) -> None:
    rows = synthetic.generate(task, "test", n=3, seed=2)
    for index, row in enumerate(rows):
        spec = synthetic.sample_spec(task, "test", seed=2, index=index)
        assert (spec.question, spec.answer, spec.thinking) == (row.question, row.answer, row.thinking)


def test_ids_and_streams_differ_per_split() -> None:
    rows = {split: synthetic.generate("counting", split, n=3, seed=0) for split in synthetic.SPLITS}
    assert rows["train"][2].id == "counting-train-000002"
    images = [row.image_png for split_rows in rows.values() for row in split_rows]
    assert len(set(images)) == len(images)


def test_write_split_reuses_the_same_dataset_and_refuses_another(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "set"
    path = synthetic.write_split("geometry", "train", n=3, seed=0, out_dir=out)
    stamp = path.stat().st_mtime_ns

    def no_generation(*args, **kwargs):
        raise AssertionError("regenerated an existing dataset")

    monkeypatch.setattr(synthetic, "generate", no_generation)
    assert synthetic.write_split("geometry", "train", n=3, seed=0, out_dir=out) == path
    assert path.stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="different synthetic dataset"):
        synthetic.write_split("geometry", "train", n=4, seed=0, out_dir=out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a synthetic dataset"):
        synthetic.write_split("geometry", "train", n=3, seed=0, out_dir=tmp_path / "other")


def test_an_interrupted_write_leaves_nothing_that_looks_complete(tmp_path: Path, monkeypatch) -> None:
    def crash(rows, folder: Path, synth, split: str) -> str:
        (folder / "data.parquet").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setitem(synthetic._WRITERS, "train", crash)
    with pytest.raises(KeyboardInterrupt):
        synthetic.write_split("counting", "train", n=2, seed=0, out_dir=tmp_path / "set")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("task", "split", "n", "size", "message"),
    [
        ("countin", "train", 2, 112, "did you mean 'counting'"),
        ("counting", "tst", 2, 112, "did you mean 'test'"),
        ("counting", "train", 0, 112, "n must be at least 1"),
        ("geometry", "train", 2, 8, "image_size"),
    ],
)
def test_bad_arguments_raise_one_line_config_errors(
    task: str, split: str, n: int, size: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        synthetic.generate(task, split, n=n, seed=0, image_size=size)
    assert "\n" not in str(caught.value)


def test_contact_sheet_lays_out_a_grid(tmp_path: Path) -> None:
    rows = synthetic.generate("geometry", "test", n=5, seed=0)
    items = [(Image.open(io.BytesIO(r.image_png)), r.question, r.answer) for r in rows]
    out = contact_sheet.make_contact_sheet(items, tmp_path / "sheets" / "g.png", columns=4, cell=160)
    with Image.open(out) as sheet:
        assert sheet.width == 4 * (160 + 12) and sheet.height > 2 * 160


# ---- counting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("split", synthetic.SPLITS)
def test_counting_answer_is_the_number_of_matching_objects(split: str) -> None:
    style = synth_counting.STYLES[split]
    for scene in scenes(split):
        target = scene.target
        matching = [o for o in scene.objects if target is None or getattr(o, target.kind) == target.value]
        assert scene.answer == str(len(matching))
        listing = ", ".join(f"{o.colour} {o.shape}" for o in sorted(matching, key=lambda o: o.x)) or "none"
        assert scene.thinking.startswith(f"{listing}. {len(matching)} ")
        assert style.counts[0] <= len(scene.objects) <= style.counts[1]
        if target is None:
            assert scene.question == style.unfiltered_question
        else:  # filters name only train-time attributes, so the test question is understood
            assert target.value in (*TRAIN_COLOURS, *TRAIN_STYLE.shapes)
            assert target.value in scene.question


@pytest.mark.parametrize("split", ["train", "test"])
def test_objects_are_inside_the_image_and_never_overlap(split: str) -> None:
    for scene in scenes(split, 150):
        boxes = [o.box() for o in scene.objects]
        for i, a in enumerate(boxes):
            assert min(a[0], a[1]) >= 0 and max(a[2], a[3]) <= 1
            for b in boxes[i + 1 :]:
                gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])
                assert gap >= synth_counting.MARGIN - 1e-9


def test_counting_test_split_is_shifted_like_superclevr() -> None:
    train, test = scenes("train"), scenes("test")
    novel = {"cone", "cyan", "brown"}
    assert not any({o.shape, o.colour} & novel for s in train for o in s.objects)
    assert sum(any({o.shape, o.colour} & novel for o in s.objects) for s in test) > len(test) // 2
    assert max(len(s.objects) for s in test) == 8 and min(len(s.objects) for s in test) == 2
    # Every test answer is one a trained model can give: no count above the training maximum.
    assert max(int(s.answer) for s in test) <= max(int(s.answer) for s in train) == 8
    assert "different items" in synth_counting.TEST_STYLE.unfiltered_question
    filtered = [s for s in train + test if s.target is not None]
    assert sum(s.answer == "0" for s in filtered) < 0.1 * len(filtered)


def test_counting_heldout_split_is_the_training_distribution() -> None:
    assert synth_counting.STYLES["heldout"] is synth_counting.TRAIN_STYLE
    heldout = scenes("heldout", 60)
    assert not any({o.shape, o.colour} & {"cone", "cyan", "brown"} for s in heldout for o in s.objects)


def test_every_object_is_visible_in_the_rendered_image() -> None:
    for scene in scenes("test", 12) + scenes("train", 12):
        size = 112
        image = synth_counting.render_scene(scene, size).convert("RGB")
        empty = synth_counting.render_scene(CountingScene((), None, "", scene.style), size)
        for obj in scene.objects:
            left, top, right, bottom = obj.box()
            xy = (int((left + right) / 2 * size), int((top + bottom) / 2 * size))
            difference = sum(abs(a - b) for a, b in zip(image.getpixel(xy), empty.getpixel(xy), strict=True))
            assert difference > 30, (obj, difference)


# ---- geometry: independent recomputation from the diagram ---------------------------------------


def measure(points: dict[str, tuple[float, float]], what: tuple[str, ...]) -> float:
    """Degrees or lengths measured on the diagram's coordinates (no template formulas)."""
    if what[0] == "angle":
        (px, py), (vx, vy), (qx, qy) = (points[name] for name in what[1:])
        ux, uy, wx, wy = px - vx, py - vy, qx - vx, qy - vy
        return math.degrees(abs(math.atan2(ux * wy - uy * wx, ux * wx + uy * wy)))
    corners = [points[name] for name in what[1:]]
    if what[0] == "length":
        return math.dist(*corners)
    return sum(math.dist(corners[i], corners[(i + 1) % len(corners)]) for i in range(len(corners)))


def relation_holds(points: dict[str, tuple[float, float]], relation: tuple[str, ...]) -> bool:
    kind, names = relation[0], relation[1:]

    def cross(a: str, b: str, c: str, d: str) -> float:
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = (points[n] for n in (a, b, c, d))
        return (bx - ax) * (dy - cy) - (by - ay) * (dx - cx)

    if kind == "parallel":
        return abs(cross(*names)) < 1e-9
    if kind == "collinear":
        return all(abs(cross(names[0], names[1], names[0], n)) < 1e-9 for n in names[2:])
    if kind == "midpoint":
        m, p, q = (points[n] for n in names)
        return math.dist(m, ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)) < 1e-9
    if kind == "on_circle":
        return abs(math.dist(points[names[0]], points[names[1]]) - float(names[2])) < 1e-9
    if kind == "equal":
        return (
            abs(math.dist(points[names[0]], points[names[1]]) - math.dist(points[names[2]], points[names[3]]))
            < 1e-9
        )
    raise AssertionError(f"unknown relation {relation}")


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def arithmetic(text: str) -> Fraction | None:
    """The exact value of a pure-number expression like '(180 - 40) / 2'; None if it has names."""
    text = text.replace("°", "").replace("cm", "").replace("^", "**").strip()
    if not re.fullmatch(r"[\d.\s()+\-*/]+", text):
        return None

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(str(node.value))
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        raise AssertionError(f"unexpected expression {text!r}")

    return value(ast.parse(text, mode="eval").body)


def answer_number(answer: str) -> Fraction:
    return Fraction(answer.removesuffix("°").removesuffix("cm"))


@pytest.mark.parametrize("split", synthetic.SPLITS)
def test_geometry_answers_match_the_measured_diagram(split: str) -> None:
    for problem in problems(split):
        points = problem.diagram.points
        assert measure(points, problem.query) == pytest.approx(float(answer_number(problem.answer)), abs=1e-6)
        for given, value in problem.givens:
            assert measure(points, given) == pytest.approx(float(value), abs=1e-6), (problem.question, given)
        for relation in problem.relations:
            assert relation_holds(points, relation), (problem.question, relation)
        stated = {Fraction(s) for s in re.findall(r"\d+\.\d+", problem.question)}
        assert stated == {value for _, value in problem.givens}, (
            problem.question
        )  # every given is in the text
        assert problem.question.startswith("As shown in the figure, ") and problem.question.endswith("is ()")
        assert problem.answer.endswith(problem.unit) and problem.unit in ("°", "cm", "")


@pytest.mark.parametrize("split", ["train", "test"])
def test_geometry_reasoning_traces_are_correct_arithmetic_ending_in_the_answer(split: str) -> None:
    for problem in problems(split, 200):
        assert problem.thinking.endswith(f"{problem.answer}.") or problem.thinking.endswith(
            f"= {problem.answer}."
        ), problem.thinking
        for sentence in problem.thinking.rstrip(".").split(". "):
            values = [v for v in map(arithmetic, sentence.split(" = ")) if v is not None]
            assert len(set(values)) <= 1, sentence  # every numeric side of a chain is equal


def test_geometry_train_and_test_are_disjoint() -> None:
    train = problems("train") + problems("warmup")
    test = problems("test")
    assert not {p.question for p in train} & {p.question for p in test}
    assert {p.template for p in train} == set(SHARED)
    assert set(TEST_ONLY) <= {p.template for p in test}
    assert not set(TEST_ONLY) & {p.template for p in train}
    share = sum(p.template in TEST_ONLY for p in test) / len(test)
    assert 0.2 < share < 0.4
    for name, template in SHARED.items():  # every shared template holds some instances out
        keys = {template.text_key(template.params(random.Random(i))) for i in range(300)}
        assert any(is_held_out(name, key) for key in keys) and not all(is_held_out(name, key) for key in keys)


def test_geometry_diagram_is_drawn_black_on_white() -> None:
    problem = problems("test", 1)[0]
    image = synth_geometry.render_problem(problem, 112)
    assert image.size == (112, 112) and image.mode == "RGB"
    greys = sorted(sum(pixel) // 3 for pixel in image.getdata())
    assert greys[-1] == 255 and greys[len(greys) // 2] == 255 and greys[0] < 60


def test_balanced_training_sets_take_answers_round_robin_in_file_order():
    truths = ["1", "1", "1", "2", "1", "3", "2", "1", "2"]
    examples = [Example(f"e{i}", "counting", "q", t, ImageRef(data=b"")) for i, t in enumerate(truths)]
    picked = balanced_by_answer(examples, 5)
    # round one takes e0 ("1"), e3 ("2"), e5 ("3"); round two e1 ("1"), e6 ("2"); "3" has run out
    assert [ex.id for ex in picked] == ["e0", "e1", "e3", "e5", "e6"]
    assert [ex.id for ex in balanced_by_answer(examples, 100)] == [ex.id for ex in examples]


def test_the_tiny_counting_set_is_balanced_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("MR1_CACHE", str(tmp_path))
    overrides = [
        "data.train=synthetic:counting-train-60",
        "data.train_limit=18",
        "data.synthetic_image_size=32",
    ]
    plain = load_examples(load_config(method="grpo", task="counting", overrides=overrides), "train")
    balanced = load_examples(
        load_config(method="grpo", task="counting", overrides=[*overrides, "data.balance_answers=true"]),
        "train",
    )
    assert len(plain) == len(balanced) == 18
    assert (
        max(Counter(ex.truth for ex in balanced).values())
        <= 3
        < max(Counter(ex.truth for ex in plain).values())
    )


def test_balancing_without_a_limit_is_refused():
    with pytest.raises(ConfigError, match=r"data\.balance_answers needs data\.train_limit"):
        load_config(method="grpo", task="geometry", overrides=["data.balance_answers=true"])
