"""The published test files and evaluation logs, in their authors' exact schemas, load and re-score.

R1-V's SuperCLEVR counting file (`superclevr_test200_counting_problems.jsonl`: `image_path`
`./images/superCLEVR_new_025000.png` …, `question`, `ground_truth` int) and GeoQA file
(`geoqa_test_prompts.jsonl`: `image_path` `./Geo170K/images/test/N.png`, `question`,
`ground_truth` string such as "140°" or the bare symbol "π"), with small generated images under an
image root; and their evaluation scripts' logs (`{"accuracy": …, "results": [{"question": <test row>,
"ground_truth", "model_output", "extracted_answer"(, "is_correct")}]}`), whose stated accuracy the
r1v re-score must reproduce. Every expected value below is derived by hand from R1-V's scripts.
"""

import json

import pytest
from fixtures_data import GEO_QUESTION, SUPERCLEVR_QUESTION, write_jsonl, write_png

from mr1cli.cli import main
from mr1cli.data.sources import load_split
from mr1cli.tasks import get_task

# GeoQA truths as the test file spells them, the hard ones included: a bare symbol (row 502 of the
# real file is "π"), radicals, LaTeX, units, and a truth nothing reads as a value.
GEOQA_TRUTHS = ["140°", "π", "√3", "2π", "\\frac{1}{2}", "3cm", "2√{3}cm", "4πcm²", "60°", "0.5", "CD"]
KINDS = {"number": 4, "expression": 6, "text": 1}  # per cycle of GEOQA_TRUTHS


def superclevr_file(root, n=200):
    rows = []
    for i in range(n):
        name = f"superCLEVR_new_{25000 + i:06d}.png"
        write_png(root / "images" / name, (16, 12))
        rows.append(
            {"image_path": f"./images/{name}", "question": SUPERCLEVR_QUESTION, "ground_truth": i % 10}
        )
    return write_jsonl(root / "superclevr_test200_counting_problems.jsonl", rows)


def geoqa_file(folder, image_root, n=754):
    rows = []
    for i in range(n):
        write_png(image_root / "Geo170K" / "images" / "test" / f"{i}.png", (12, 16))
        truth = GEOQA_TRUTHS[i % len(GEOQA_TRUTHS)]
        rows.append(
            {"image_path": f"./Geo170K/images/test/{i}.png", "question": GEO_QUESTION, "ground_truth": truth}
        )
    return write_jsonl(folder / "geoqa_test_prompts.jsonl", rows)


def test_superclevr_200_loads_completely_with_data_check(tmp_path, capsys):
    path = superclevr_file(tmp_path / "superclevr")
    assert (
        main(["data", "check", str(path), "--task", "counting", "--image-root", str(tmp_path / "superclevr")])
        == 0
    )
    out = capsys.readouterr().out
    assert "200" in out and '{"integer": 200}' in out


def test_geoqa_754_loads_completely_and_counts_truth_kinds(tmp_path, capsys):
    path = geoqa_file(tmp_path / "prompts", tmp_path / "playground", n=754)
    args = ["data", "check", str(path), "--task", "geometry", "--image-root", str(tmp_path / "playground")]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "754" in captured.out
    split = load_split(str(path), task="geometry", image_root=tmp_path / "playground")
    assert len(split.examples) == 754
    cycles, rest = divmod(754, len(GEOQA_TRUTHS))
    expected = {kind: count * cycles for kind, count in KINDS.items()}
    for truth in GEOQA_TRUTHS[:rest]:
        expected[get_task("geometry").truth_kind(truth)] += 1
    assert split.truth_kinds == expected
    assert json.dumps(split.truth_kinds) in captured.out  # `mr1 data check` prints the kinds
    assert f"{expected['text']} ground truth(s) are not mathematical values" in captured.err
    assert split.examples[1].truth == "π" and split.examples[4].truth == "\\frac{1}{2}"


# R1-V's counting log: `<answer>\s*(\d+)\s*</answer>`, first match, int == ground_truth.
COUNTING_LOG = [
    ("<think>1 2 3</think><answer>3</answer>", 3, True),
    ("<think>x</think><answer> 3 </answer><answer>4</answer>", 3, True),  # repeated tag: first counts
    ("There are 3 objects.", 3, False),  # untagged
    ("<think>I count 5</think><answer>4</answer>", 5, False),
    ("<answer>3 items</answer>", 3, False),
    ("<think>x</think><answer>\n7\n</answer>", 7, True),
    ("<answer>02</answer>", 2, True),
    ("", 0, False),
    ("<think>two</think><answer>two</answer>", 2, False),
]
# R1-V's GeoQA log: math-verify parses the whole output; correct iff verify(parse(output), parse(truth)).
GEOQA_LOG = [
    ("<think>180-50-60=70</think><answer>70°</answer>", "70°", True),
    ("<think>x</think><answer>π</answer>", "π", False),  # parse("π") reads nothing: never correct
    ("The answer is 3 cm", "3cm", True),  # untagged
    ("<think>x</think><answer>3</answer>", "3cm", False),  # "<answer>3" is not read
    ("<think> 70 </think><answer> 60 </answer>", "60°", True),
    ("<think>x</think><answer>$\\frac{1}{2}$</answer>", "\\frac{1}{2}", True),
    ("<think>x</think><answer>CD</answer>", "CD", False),
    ("<think>AB = 4, so AC = 2√{3}</think><answer>2√{3}</answer>", "2√{3}", True),  # reads the 2
    ("<think>x</think><answer>140°</answer><answer>140°</answer>", "140°", False),  # repeated tag
]


def r1v_log(path, rows, image_path):
    results = [
        {
            "question": {"image_path": image_path(i), "question": "q", "ground_truth": truth},
            "ground_truth": truth,
            "model_output": output,
            "extracted_answer": None,
            "is_correct": correct,
        }
        for i, (output, truth, correct) in enumerate(rows)
    ]
    accuracy = sum(correct for _, _, correct in rows) / len(rows) * 100  # as R1-V's scripts compute it
    path.write_text(json.dumps({"accuracy": accuracy, "results": results}, ensure_ascii=False, indent=2))
    return accuracy


@pytest.mark.parametrize(
    ("task", "rows", "image_path"),
    [
        ("counting", COUNTING_LOG, lambda i: f"./images/superCLEVR_new_{25000 + i:06d}.png"),
        ("geometry", GEOQA_LOG, lambda i: f"./Geo170K/images/test/{i}.png"),
    ],
)
def test_published_logs_rescore_to_their_stated_accuracy(tmp_path, monkeypatch, task, rows, image_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    stated = r1v_log(logs / f"{task}_results.json", rows, image_path)
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--rescore", str(logs / f"{task}_results.json"), "--task", task]) == 0
    out = tmp_path / "results" / "eval" / f"{task}_results-rescored-{task}"  # under the working directory
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scoring"] == "r1v" and metrics["n"] == len(rows)
    assert metrics["accuracy"] == pytest.approx(stated, abs=1e-3)
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["correct_r1v"] for p in predictions] == [correct for _, _, correct in rows]
