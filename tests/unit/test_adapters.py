"""Real-dataset adapters: the public R1-V schemas load to the right Examples; every defect is one line."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from fixtures_data import (
    COUNT_QUESTION,
    GEO_QUESTION,
    SUPERCLEVR_QUESTION,
    counting_train_columns,
    image_struct,
    png_bytes,
    superclevr_test,
    write_jsonl,
    write_lines,
    write_parquet,
    write_png,
)

from mr1cli.core.errors import ConfigError, DataError
from mr1cli.data.example import fit_pixel_budget
from mr1cli.data.sources import load_split
from mr1cli.data.summary import summarize

# --- the public schemas load ---------------------------------------------------------------------


def test_train_parquet_with_image_structs(tmp_path):
    sizes = [(40, 30), (50, 20), (32, 32)]
    path = write_parquet(tmp_path / "train.parquet", counting_train_columns(sizes, [3, 10, 0]))
    split = load_split(str(path), task="counting")
    assert [e.truth for e in split.examples] == ["3", "10", "0"]
    assert [e.id for e in split.examples] == ["train-1", "train-2", "train-3"]
    first = split.examples[0]
    assert (first.task, first.question, first.thinking) == ("counting", COUNT_QUESTION, "I see 3 objects.")
    assert first.image.data is not None and first.image.path is None
    assert [e.image.open().size for e in split.examples] == sizes
    # within the pixel budget, except that the short side is raised to Qwen2-VL's 28-pixel minimum
    assert [e.load_image().size for e in split.examples] == [(40, 30), (70, 28), (32, 32)]
    assert fit_pixel_budget(first.image.open(), max_pixels=300).size == (20, 15)
    assert (split.skipped, split.path, [o.row for o in split.origins]) == (0, path, [1, 2, 3])


def test_id_column_and_test_style_columns_in_a_parquet(tmp_path):
    path = write_parquet(
        tmp_path / "eval.parquet",
        {
            "id": ["a", "b"],
            "image": [png_bytes((8, 9)), png_bytes((9, 8))],
            "question": [SUPERCLEVR_QUESTION] * 2,
            "ground_truth": [2, 5],
        },
    )
    split = load_split(str(path), task="counting")
    assert [(e.id, e.truth, e.thinking) for e in split.examples] == [("a", "2", ""), ("b", "5", "")]
    assert split.examples[1].image.open().size == (9, 8)


def test_save_to_disk_folder_and_its_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"image": datasets.Image(), "problem": datasets.Value("string"), "solution": datasets.Value("string")}
    )
    rows = {
        "image": [{"bytes": png_bytes((30, 20)), "path": None}, {"bytes": png_bytes((20, 30)), "path": None}],
        "problem": [GEO_QUESTION] * 2,
        "solution": ["<answer> 140° </answer>", "<answer> 2√{3}cm </answer>"],
    }
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "geoqa"))
    split = load_split(str(tmp_path / "geoqa"), task="geometry")
    assert [e.truth for e in split.examples] == ["140°", "2√{3}cm"]
    assert [e.image.open().size for e in split.examples] == [(30, 20), (20, 30)]
    assert split.examples[0].id == "geoqa-1"

    train = datasets.Dataset.from_dict(rows, features=features)
    test = datasets.Dataset.from_dict({k: v[:1] for k, v in rows.items()}, features=features)
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "both"))
    assert len(load_split(str(tmp_path / "both"), task="geometry").examples) == 2
    assert len(load_split(f"{tmp_path / 'both'}:test", task="geometry").examples) == 1
    with pytest.raises(DataError, match="no split 'dev'"):
        load_split(f"{tmp_path / 'both'}:dev", task="geometry")


def test_superclevr_jsonl_with_relative_image_paths(tmp_path):
    path = superclevr_test(tmp_path / "eval", counts=[3, 7], sizes=[(48, 32), (16, 16)])
    split = load_split(str(path), task="counting")
    assert [(e.truth, e.question) for e in split.examples] == [
        ("3", SUPERCLEVR_QUESTION),
        ("7", SUPERCLEVR_QUESTION),
    ]
    assert split.examples[0].image.path == tmp_path / "eval" / "images" / "superCLEVR_new_025000.png"
    assert split.examples[0].image.open().size == (48, 32)
    assert split.examples[1].id == "superclevr_test200_counting_problems-2"
    assert len(load_split(str(tmp_path / "eval"), task="counting").examples) == 2  # the folder works too


def test_geoqa_json_list(tmp_path):
    write_png(tmp_path / "Geo170K" / "images" / "test" / "0.png", (64, 40))
    row = {"image_path": "./Geo170K/images/test/0.png", "question": GEO_QUESTION, "ground_truth": "140°"}
    (tmp_path / "geoqa_test.json").write_text(json.dumps([row]), encoding="utf-8")
    (example,) = load_split(str(tmp_path / "geoqa_test.json"), task="geometry").examples
    assert (example.truth, example.id) == ("140°", "geoqa_test-1")
    assert example.image.open().size == (64, 40)


def test_authors_absolute_paths_resolve_under_the_image_root(tmp_path):
    root = tmp_path / "mine"
    write_png(root / "images" / "x.png", (12, 10))
    write_png(root / "y.png", (10, 12))
    data = write_jsonl(
        tmp_path / "test.jsonl",
        [
            {"image_path": "/home/someone/data/images/x.png", "question": "q?", "ground_truth": 1},
            {"image_path": "/home/someone/elsewhere/y.png", "question": "q?", "ground_truth": 2},
            {"image_path": str(root / "y.png"), "question": "q?", "ground_truth": 3},  # exists: used as is
        ],
    )
    split = load_split(str(data), task="counting", image_root=root)
    assert [e.image.path for e in split.examples] == [
        root / "images" / "x.png",
        root / "y.png",
        root / "y.png",
    ]
    with pytest.raises(DataError, match=r"test\.jsonl: row 1: field 'image_path': image file not found"):
        load_split(str(data), task="counting")  # the default root is the data file's folder


def test_parquet_shards_and_limit(tmp_path):
    for shard, counts in (("train-00000-of-00002", [1, 2]), ("train-00001-of-00002", [3, 4])):
        write_parquet(tmp_path / "data" / f"{shard}.parquet", counting_train_columns([(8, 8)] * 2, counts))
    split = load_split(str(tmp_path), task="counting")
    assert [e.truth for e in split.examples] == ["1", "2", "3", "4"]
    assert split.examples[2].id == "train-00001-of-00002-1"
    assert [e.truth for e in load_split(str(tmp_path), task="counting", limit=3).examples] == ["1", "2", "3"]
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", counting_train_columns([(8, 8)], [9]))
    assert [e.truth for e in load_split(f"{tmp_path}:test", task="counting").examples] == ["9"]
    assert len(load_split(str(tmp_path), task="counting").examples) == 4  # several splits: train


def test_imagefolder_with_metadata(tmp_path):
    write_png(tmp_path / "a.png", (20, 10))
    rows = [{"file_name": "a.png", "problem": COUNT_QUESTION, "solution": "<answer> 4 </answer>"}]
    write_jsonl(tmp_path / "metadata.jsonl", rows)
    (example,) = load_split(str(tmp_path), task="counting").examples
    assert (example.truth, example.image.path, example.image.open().size) == (
        "4",
        tmp_path / "a.png",
        (20, 10),
    )


# --- every defect: one line naming file, row and field; or skipped and counted ---------------------

GOOD = {"question": SUPERCLEVR_QUESTION, "ground_truth": 2}


def _jsonl_case(root: Path, defect: str) -> Path:
    """A 3-row superclevr-style jsonl whose row 2 has `defect`."""
    for name in ("a", "b", "c"):
        write_png(root / "data" / "images" / f"{name}.png", (8, 8))
    rows = [json.dumps({"image_path": f"./images/{n}.png", **GOOD}) for n in ("a", "b", "c")]
    bad = {"image_path": "./images/b.png", **GOOD}
    if defect == "missing_key":
        del bad["question"]
    elif defect == "missing_image":
        bad["image_path"] = "./images/nope.png"
    elif defect == "not_an_image":
        (root / "data" / "images" / "b.png").write_text("hello", encoding="utf-8")
    elif defect == "truncated_header":
        (root / "data" / "images" / "b.png").write_bytes(png_bytes((8, 8))[:16])
    elif defect == "empty_question":
        bad["question"] = "   "
    elif defect == "bad_truth":
        bad["ground_truth"] = "abc"
    elif defect == "null_truth":
        bad["ground_truth"] = None
    elif defect == "escape_dotdot":
        write_png(root / "outside.png", (8, 8))
        bad["image_path"] = "../outside.png"
    elif defect == "escape_symlink":
        write_png(root / "outside.png", (8, 8))
        (root / "data" / "images" / "link.png").symlink_to(root / "outside.png")
        bad["image_path"] = "./images/link.png"
    rows[1] = json.dumps(bad)
    if defect == "malformed_json":
        rows[1] = '{"image_path": "./images/b.png", "question": '
    elif defect == "not_an_object":
        rows[1] = "[1, 2]"
    return write_lines(root / "data" / "superclevr.jsonl", rows)


def _parquet_case(root: Path, defect: str) -> Path:
    """A 3-row CLEVR train-style parquet whose row 2 has `defect`."""
    columns = counting_train_columns([(8, 8)] * 3, [1, 2, 3])
    if defect == "bad_bytes":
        columns["image"][1] = image_struct(b"not a png at all")
    elif defect == "null_image":
        columns["image"][1] = None
    elif defect == "bad_solution":
        columns["solution"][1] = "<answer> abc </answer>"
    elif defect == "empty_problem":
        columns["problem"][1] = ""
    return write_parquet(root / "clevr.parquet", columns)


DEFECTS = [
    (_jsonl_case, "missing_key", "question", "missing"),
    (_jsonl_case, "missing_image", "image_path", "image file not found"),
    (_jsonl_case, "not_an_image", "image_path", "not a readable image"),
    (_jsonl_case, "truncated_header", "image_path", "not a readable image"),
    (_jsonl_case, "empty_question", "question", "empty question"),
    (_jsonl_case, "bad_truth", "ground_truth", "expected an integer count"),
    (_jsonl_case, "null_truth", "ground_truth", "missing value"),
    (_jsonl_case, "malformed_json", "(row)", "malformed JSON line"),
    (_jsonl_case, "not_an_object", "(row)", "expected a JSON object"),
    (_jsonl_case, "escape_dotdot", "image_path", "escapes the image root"),
    (_jsonl_case, "escape_symlink", "image_path", "outside the image root"),
    (_parquet_case, "bad_bytes", "image", "not a readable image"),
    (_parquet_case, "null_image", "image", "missing value"),
    (_parquet_case, "bad_solution", "solution", "expected an integer count"),
    (_parquet_case, "empty_problem", "problem", "empty question"),
]


@pytest.mark.parametrize(("make", "defect", "field", "what"), DEFECTS, ids=[d[1] for d in DEFECTS])
def test_defect_is_one_line_naming_file_row_field(tmp_path, make, defect, field, what):
    path = make(tmp_path, defect)
    with pytest.raises(DataError) as caught:
        load_split(str(path), task="counting")
    message = str(caught.value)
    assert message.startswith(f"{path}: row 2: field '{field}': "), message
    assert what in message and "\n" not in message

    split = load_split(str(path), task="counting", skip_bad=True)
    assert (split.skipped, len(split.examples), split.skipped_reasons) == (1, 2, [message])
    assert [e.truth for e in split.examples] in (["2", "2"], ["1", "3"])


def test_missing_column_is_a_schema_error_even_with_skip_bad(tmp_path):
    columns = counting_train_columns([(8, 8)], [1])
    del columns["solution"]
    path = write_parquet(tmp_path / "clevr.parquet", columns)
    for skip_bad in (False, True):
        with pytest.raises(DataError, match=r"clevr\.parquet: row 1: field 'solution': column missing"):
            load_split(str(path), task="counting", skip_bad=skip_bad)
    with pytest.raises(DataError, match="no R1-V columns"):
        load_split(str(write_jsonl(tmp_path / "x.jsonl", [{"text": "hi"}])), task="counting")


def test_whole_file_problems(tmp_path):
    (tmp_path / "list.json").write_text('[{"question": "q",\n "oops"}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"list\.json: line 2: malformed JSON"):
        load_split(str(tmp_path / "list.json"), task="counting")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"broken\.parquet: cannot read as parquet"):
        load_split(str(tmp_path / "broken.parquet"), task="counting")
    with pytest.raises(DataError, match="no such file or folder"):
        load_split(str(tmp_path / "absent.parquet"), task="counting")
    all_bad = write_jsonl(tmp_path / "all_bad.jsonl", [{**GOOD, "image_path": "./n.png"}] * 3)
    with pytest.raises(DataError, match=r"no usable rows \(3 skipped; first: .*all_bad\.jsonl: row 1"):
        load_split(str(all_bad), task="counting", skip_bad=True)


def test_hub_id_offline_is_the_promised_error(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(DataError) as caught:
        load_split("mr1-tests/no-such-dataset:train", task="counting")
    assert str(caught.value).startswith(
        "dataset mr1-tests/no-such-dataset is not in the local Hugging Face cache; download it on a machine "
        "with network or pass a local path"
    )


def test_hub_dataset_rows_keep_images_encoded(monkeypatch):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"image": datasets.Image(), "problem": datasets.Value("string"), "solution": datasets.Value("string")}
    )
    rows = {
        "image": [{"bytes": png_bytes((10, 6)), "path": None}],
        "problem": ["q?"],
        "solution": ["<answer>2</answer>"],
    }
    asked = []

    def load_dataset(dataset_id, split):
        asked.append((dataset_id, split))
        return datasets.Dataset.from_dict(rows, features=features)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    split = load_split("leonardPKU/clevr_cogen_a_train", task="counting")
    (example,) = split.examples
    assert asked == [("leonardPKU/clevr_cogen_a_train", "train")] and split.path is None
    assert (example.id, example.truth, example.image.open().size) == ("clevr_cogen_a_train-1", "2", (10, 6))
    assert split.origins[0].file == "leonardPKU/clevr_cogen_a_train:train"
    load_split("leonardPKU/GEOQA_R1V_Train_8K:test", task="counting")
    assert asked[-1] == ("leonardPKU/GEOQA_R1V_Train_8K", "test")


# --- synthetic sources ---------------------------------------------------------------------------


def test_synthetic_source_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    calls = []

    def write_split(task, split, *, n, seed, out_dir, image_size=112, progress=None):
        calls.append((task, split, n, seed, image_size))
        return superclevr_test(out_dir, counts=list(range(n)), sizes=[(image_size, image_size)] * n)

    monkeypatch.setitem(
        sys.modules,
        "mr1cli.data.synthetic",
        types.SimpleNamespace(
            write_split=write_split, GENERATOR_VERSION=2, logged_progress=lambda source, n: None
        ),
    )
    for _ in range(2):
        split = load_split("synthetic:counting-test-3", task="counting", cache_dir=tmp_path, synthetic_seed=7)
        assert [e.truth for e in split.examples] == ["0", "1", "2"]
    assert calls == [("counting", "test", 3, 7, 112)]
    assert split.path.parent == tmp_path / "synthetic" / "counting-test-3-s7-v2"
    with pytest.raises(ConfigError, match="holds counting data, but the task is geometry"):
        load_split("synthetic:counting-test-3", task="geometry", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="bad synthetic source"):
        load_split("synthetic:counting-dev", task="counting", cache_dir=tmp_path)


# --- summarize: full decode catches what a header check cannot -----------------------------------


def test_summarize_counts_and_sizes(tmp_path):
    path = write_parquet(
        tmp_path / "t.parquet", counting_train_columns([(40, 30), (20, 10), (40, 30)], [3, 3, 5])
    )
    summary = summarize(load_split(str(path), task="counting"))
    assert summary["examples"] == 3 and summary["answers"] == [("3", 2), ("5", 1)]
    assert summary["image_width"] == {"min": 20, "mean": 33.33, "median": 40, "max": 40}
    assert summary["images_decoded"] == 3 and summary["bad_images"] == 0 and summary["with_thinking"] == 3
    assert summary["samples"][0]["truth"] == "3" and summary["duplicate_ids"] == 0


def test_summarize_catches_an_image_truncated_in_its_pixels(tmp_path):
    path = superclevr_test(tmp_path, counts=[1, 2], sizes=[(24, 24), (24, 24)])
    image = tmp_path / "images" / "superCLEVR_new_025001.png"
    data = png_bytes((64, 64), noisy=True)
    image.write_bytes(data[: len(data) // 2])
    split = load_split(str(path), task="counting")  # the header is fine: loading passes
    with pytest.raises(DataError, match=rf"{path.name}: row 2: field 'image_path': cannot decode the image"):
        summarize(split)
    summary = summarize(split, skip_bad=True)
    assert (summary["images_decoded"], summary["bad_images"]) == (1, 1)
    assert summarize(split, decode_images=False)["examples"] == 2
