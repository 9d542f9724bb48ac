"""results/summary.md on a hand-made mini grid of all three experiments: per-example correctness is
constructed so that every verdict is known (a better model is right on a superset of a worse one's
examples; equal models are right on the same examples), and each claim's row is checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mr1cli.reporting.records import load_paper_numbers
from mr1cli.reporting.summary import write_summary

PAPER = load_paper_numbers()
N = 200  # examples per test set


def first(percent: float) -> str:
    """The first `percent` % of the N examples right."""
    right = round(percent * N / 100)
    return "1" * right + "0" * (N - right)


def record(experiment, grid, method, train, test, percent, seed=0, setting=None, heldout=None):
    row = {
        "experiment": experiment,
        "grid": grid,
        "method": method,
        "train_task": train,
        "eval_task": test,
        "seed": seed,
        "setting": setting or {},
        "accuracy": percent,
        "format_rate": 95.0,
        "scoring": "r1v",
        "run": f"{method}-{train}-{seed}",
        "profile": "tiny",
        "test_hash": f"{test}-test",
        "test_correct": first(percent),
        "heldout_accuracy": heldout,
    }
    if heldout is not None:
        row |= {"heldout_hash": f"{test}-heldout", "heldout_correct": first(heldout)}
    return row


def same_task() -> list[dict]:
    """Counting: base 40 (held-out 60), GRPO 50 (held-out 60, the base's examples), GRPO-D 60
    (held-out 50), SFT 70; two seeds."""
    rows = [record("exp3-same-task", "same-task", "base", None, "counting", 40.0, heldout=60.0)]
    for seed in (0, 1):
        for method, percent, heldout in (("grpo", 50.0, 60.0), ("grpo-d", 60.0, 50.0), ("sft", 70.0, 60.0)):
            rows.append(
                record(
                    "exp3-same-task",
                    "same-task",
                    method,
                    "counting",
                    "counting",
                    percent,
                    seed,
                    None,
                    heldout,
                )
            )
    return rows


def cross_task() -> list[dict]:
    """counting → geometry: base 20, SFT 10, GRPO-D 20 (the base's examples); geometry → counting:
    base 40, SFT 40 (the same examples), GRPO-D 50."""
    rows = []
    for train, test, base, sft, grpo_d in (
        ("counting", "geometry", 20.0, 10.0, 20.0),
        ("geometry", "counting", 40.0, 40.0, 50.0),
    ):
        rows.append(record("exp2-cross-task", "cross-task", "base", None, test, base))
        rows += [record("exp2-cross-task", "cross-task", "sft", train, test, sft, seed) for seed in (0, 1)]
        rows += [
            record("exp2-cross-task", "cross-task", "grpo-d", train, test, grpo_d, seed) for seed in (0, 1)
        ]
    return rows


def format_reward(beta_002: float) -> list[dict]:
    """α = 0: 20, α = 0.5: 30, α = 1: 25; β = 0: 20, β = 0.01: 30, β = 0.02: `beta_002`."""
    rows = []
    for grid, key, accuracy in (
        ("alpha", "reward.weights.format", {0.0: 20.0, 0.5: 30.0, 1.0: 25.0}),
        ("beta", "rl.kl.beta", {0.0: 20.0, 0.01: 30.0, 0.02: beta_002}),
    ):
        rows.append(record("exp1-format-reward", grid, "base", None, "geometry", 15.0))
        for value, percent in accuracy.items():
            rows += [
                record(
                    "exp1-format-reward", grid, "grpo", "geometry", "geometry", percent, seed, {key: value}
                )
                for seed in (0, 1)
            ]
    return rows


def write(root: Path, experiment: str, rows: list[dict]) -> None:
    (root / experiment).mkdir(parents=True, exist_ok=True)
    (root / experiment / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def claim_rows(text: str) -> dict[str, list[str]]:
    """The summary's table rows: claim → its other cells (paper, Δ, accuracies, verdict)."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] != "claim":
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def summary(tmp_path) -> str:
    write(tmp_path, "exp3-same-task", same_task())
    write(tmp_path, "exp2-cross-task", cross_task())
    write(tmp_path, "exp1-format-reward", format_reward(beta_002=30.0))
    path = write_summary(tmp_path, PAPER)
    assert path == tmp_path / "summary.md" and not list(tmp_path.glob(".*"))
    return path.read_text()


def test_same_task_claims(summary):
    rows = claim_rows(summary)
    assert rows["GRPO-D > GRPO, same task: counting"][0] == "+12.00 (76.50 vs 64.50)"  # Table 1
    assert rows["GRPO-D > GRPO, same task: counting"][2:] == ["60.0 vs 50.0", "reproduced"]
    assert rows["GRPO-D > SFT, same task: counting"][1].startswith("-10.0 [")
    assert rows["GRPO-D > SFT, same task: counting"][3] == "opposite"
    assert rows["GRPO > base: counting"][3] == rows["GRPO-D > base: counting"][3] == "reproduced"
    # held-out set: GRPO right on exactly the base's examples, GRPO-D below it
    assert rows["GRPO > base: counting, held-out set"][1:] == [
        "+0.0 [+0.0, +0.0]",
        "60.0 vs 60.0",
        "not detected (MDE 0.0)",
    ]
    assert rows["GRPO-D > base: counting, held-out set"][0] == "— (test set only)"
    assert rows["GRPO-D > base: counting, held-out set"][3] == "opposite"
    assert not any("geometry" in claim for claim in rows if "same task" in claim)  # counting only was run


def test_cross_task_claims(summary):
    rows = claim_rows(summary)
    collapse = rows["SFT < base across tasks: counting → geometry"]
    assert collapse[0] == "-77.77 % rel. (≈ 3.45 vs 15.52)" and collapse[3] == "reproduced"
    assert rows["GRPO-D > base across tasks: counting → geometry"][3] == "not detected (MDE 0.0)"
    assert rows["GRPO-D > SFT across tasks: counting → geometry"][3] == "reproduced"
    no_change = rows["SFT ≈ base across tasks: geometry → counting"]  # the paper: "≈ 0"
    assert no_change[0] == "≈ 0 (text)" and no_change[3] == "no difference (MDE 0.0)"
    assert rows["GRPO-D > SFT across tasks: geometry → counting"][0] == "+61.63 % rel. (≈ 69.50 vs 43.00)"
    assert rows["GRPO-D > SFT across tasks: geometry → counting"][3] == "reproduced"


def test_format_reward_claims(summary):
    rows = claim_rows(summary)
    assert rows["α = 1 > α = 0"][0] == "+20.02 % rel. (α = 1: 30.24)"
    assert rows["α = 1 > α = 0"][2:] == ["25.0 vs 20.0", "reproduced"]
    assert rows["best α > 0 (α = 0.5, our highest mean) > α = 0"][3] == "reproduced"
    assert rows["β = 0.01 > β = 0"][3] == "reproduced"
    assert rows["β = 0.01 > β = 0.02"][3] == "not detected (MDE 0.0)"
    joint = rows["**β = 0.01 beats every other constant β**"]
    assert joint[1].startswith("closest: β = 0.01 > β = 0.02: +0.0 [")
    assert joint[3] == "**not detected (MDE 0.0)**"


@pytest.mark.parametrize(("beta_002", "expected"), [(25.0, "reproduced"), (40.0, "opposite")])
def test_the_beta_sweep_is_read_jointly(tmp_path, beta_002, expected):
    write(tmp_path, "exp1-format-reward", format_reward(beta_002))
    rows = claim_rows(write_summary(tmp_path, PAPER).read_text())
    assert rows["**β = 0.01 beats every other constant β**"][3] == f"**{expected}**"


def test_header_states_the_design(summary):
    assert summary.startswith("# The paper's claims, checked")
    assert "seeds per trained configuration: 0, 1" in summary
    assert "counting test 200, counting heldout 200, geometry test 200" in summary
    assert "2000 resamples" in summary and "2.80 × SE" in summary
    assert "Not run" not in summary


def test_experiments_not_run_are_named_and_old_records_still_read(tmp_path):
    assert write_summary(tmp_path, PAPER) is None and not (tmp_path / "summary.md").exists()
    old = [{k: v for k, v in row.items() if "_correct" not in k} for row in same_task()]
    write(tmp_path, "exp3-same-task", old)
    text = write_summary(tmp_path, PAPER).read_text()
    assert "Not run: exp2-cross-task, exp1-format-reward." in text
    row = claim_rows(text)["GRPO-D > GRPO, same task: counting"]
    assert row[1:] == ["+10.0 (no interval)", "60.0 vs 50.0", "— (no per-example results)"]


def test_without_the_paper_numbers_the_claims_stand_and_directions_go(tmp_path):
    write(tmp_path, "exp2-cross-task", cross_task())
    write(tmp_path, "exp1-format-reward", format_reward(beta_002=25.0))
    rows = claim_rows(write_summary(tmp_path, paper={}).read_text())
    assert rows["SFT vs base across tasks: counting → geometry"][::3] == ["—", "lower"]  # no direction
    assert rows["α = 1 > α = 0"][::3] == ["—", "reproduced"]  # the paper's text still says α > 0 helps
    assert rows["β = 0.01 > β = 0"][0] == "best at β = 0.01"
