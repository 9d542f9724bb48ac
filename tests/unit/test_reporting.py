"""Reporting: the paper's relative changes, tables from hand-made records (paired differences and
verdicts on constructed per-example results; records without them still read), and tables + figures
end to end on synthetic results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from mr1cli.core.errors import Mr1Error
from mr1cli.reporting.figure_kit import Inputs
from mr1cli.reporting.figures import make_all, make_figures
from mr1cli.reporting.records import load_paper_numbers, load_records, normalize_records
from mr1cli.reporting.reports import REPORTS
from mr1cli.reporting.statistics import relative_change
from mr1cli.reporting.tables import build_table, write_tables

PAPER = load_paper_numbers()


# ---------------------------------------------------------------- relative changes


def test_relative_change_reproduces_the_paper():
    # Abstract: GRPO-D beats SFT by 5.72 % and GRPO by 13.59 % (Table 1, 2B geometry).
    assert round(relative_change(34.35, 32.49), 2) == 5.72
    assert round(relative_change(34.35, 30.24), 2) == 13.59
    # Figure 7 back-calculations in paper.md reproduce the printed relative changes.
    assert round(relative_change(69.5, 42.5), 2) == 63.53
    assert round(relative_change(3.45, 15.52), 2) == -77.77
    assert math.isnan(relative_change(1.0, 0.0))


# ---------------------------------------------------------------- tables


TEST_SIZE = 200  # examples of the hand-made test set


def first_correct(accuracy: float, n: int = TEST_SIZE) -> str:
    """Per-example correctness as a record stores it: the first accuracy % of n examples right."""
    right = round(accuracy * n / 100)
    return "1" * right + "0" * (n - right)


def record(method, task, accuracy, seed=0, train=None, per_example=True, **extra):
    """A record as `mr1 reproduce` writes it; its test set's first `accuracy` % of examples are right
    (so better models are right on a superset of a worse one's examples). `per_example=False`: a
    record of an earlier mr1, without per-example results."""
    train = None if method == "base" else (train or task)
    examples = {"test_hash": f"{task}-test", "test_correct": first_correct(accuracy)} if per_example else {}
    return {
        "experiment": "exp3-same-task",
        "grid": "same-task",
        "method": method,
        "train_task": train,
        "eval_task": task,
        "seed": seed,
        "setting": {},
        "accuracy": accuracy,
        "format_rate": 90.0,
        "scoring": "r1v",
        "run": method,
        "profile": "tiny",
        **examples,
        **extra,
    }


@pytest.fixture
def same_task_records():
    rows = [record("base", "counting", 40.0)]
    for seed, (sft, grpo, grpo_d) in enumerate([(60.0, 50.0, 70.0), (64.0, 54.0, 70.5)]):
        rows += [record("sft", "counting", sft, seed), record("grpo", "counting", grpo, seed)]
        rows.append(record("grpo-d", "counting", grpo_d, seed))
    return pd.DataFrame(rows)


def test_build_table_same_task(same_task_records):
    table = build_table(REPORTS.get("exp3-same-task"), same_task_records, PAPER).set_index("method")
    sft = table.loc["sft"]
    assert (sft["accuracy"], sft["n_seeds"]) == (62.0, 2)
    assert sft["accuracy_low"] < 62.0 < sft["accuracy_high"]
    assert sft["accuracy_ci"] == pytest.approx((sft["accuracy_high"] - sft["accuracy_low"]) / 2)
    assert sft["paper_accuracy"] == 68.5
    assert sft["vs_base_ours_pct"] == pytest.approx((62 - 40) / 40 * 100)
    assert sft["vs_base_paper_pct"] == pytest.approx((68.5 - 42.5) / 42.5 * 100)
    assert sft["grpo_d_vs_this_ours_pct"] == pytest.approx((70.25 - 62) / 62 * 100)
    assert sft["grpo_d_vs_this_paper_pct"] == pytest.approx((76.5 - 68.5) / 68.5 * 100)
    assert table.loc["grpo", "grpo_d_vs_this_paper_pct"] == pytest.approx(18.60, abs=0.01)
    # the one-seed base: its interval covers the test examples only
    assert table.loc["base", "n_seeds"] == 1 and table.loc["base", "accuracy_ci"] > 0
    # paired differences in points; a better model is right on a superset of the worse one's examples,
    # so every resample's difference has the sign of the paper's change
    assert sft["vs_base_diff_pts"] == pytest.approx(22.0)
    assert 0 < sft["vs_base_diff_low"] < 22.0 < sft["vs_base_diff_high"]
    assert sft["grpo_d_vs_this_diff_pts"] == pytest.approx(8.25)
    assert sft["vs_base_verdict"] == sft["grpo_d_vs_this_verdict"] == "reproduced"
    assert table.loc["grpo", "grpo_d_vs_this_verdict"] == "reproduced"
    assert table.loc["base", "vs_base_verdict"] == "" and math.isnan(table.loc["base", "vs_base_diff_pts"])
    assert math.isnan(table.loc["grpo-d", "grpo_d_vs_this_ours_pct"])


def test_paired_verdicts_not_detected_and_opposite():
    # GRPO right on the first half of 200 examples, GRPO-D on the second half: the same accuracy, a
    # difference of 0 with every example discordant (SE √(1/200) = 7.07 points, MDE 2.80 × 7.07 = 19.8).
    # SFT, right on the first 70 %, beats GRPO-D's 50 %, against the paper's GRPO-D > SFT.
    half = "1" * 100 + "0" * 100
    rows = [record("base", "counting", 40.0), record("sft", "counting", 70.0)]
    rows.append(record("grpo", "counting", 50.0, test_correct=half))
    rows.append(record("grpo-d", "counting", 50.0, test_correct=half[::-1]))
    table = build_table(REPORTS.get("exp3-same-task"), pd.DataFrame(rows), PAPER).set_index("method")
    grpo = table.loc["grpo"]
    assert grpo["grpo_d_vs_this_diff_pts"] == 0.0
    assert grpo["grpo_d_vs_this_mde"] == pytest.approx(2.80 * 7.07, rel=0.08)
    assert grpo["grpo_d_vs_this_verdict"].startswith("not detected (MDE ")
    assert table.loc["sft", "grpo_d_vs_this_diff_pts"] == pytest.approx(-20.0)
    assert table.loc["sft", "grpo_d_vs_this_verdict"] == "opposite"


def test_build_table_cross_task_uses_printed_relative_changes():
    rows = [record("base", "counting", 40.0), record("sft", "counting", 30.0, train="geometry")]
    rows += [record("grpo-d", "counting", 50.0, train="geometry"), record("base", "geometry", 20.0)]
    rows.append(record("sft", "geometry", 10.0, train="counting"))
    table = build_table(REPORTS.get("exp2-cross-task"), pd.DataFrame(rows), PAPER)
    sft_geo = table[(table["method"] == "sft") & (table["eval_task"] == "geometry")].iloc[0]
    assert sft_geo["vs_base_paper_pct"] == -77.77 and sft_geo["vs_base_ours_pct"] == -50.0
    assert (
        sft_geo["paper_accuracy"] == 3.45 and sft_geo["vs_base_verdict"] == "reproduced"
    )  # a fall, as printed
    sft_count = table[(table["method"] == "sft") & (table["eval_task"] == "counting")].iloc[0]
    assert sft_count["grpo_d_vs_this_paper_pct"] == 61.63
    assert sft_count["grpo_d_vs_this_ours_pct"] == pytest.approx(200 / 3)
    assert sft_count["vs_base_verdict"] == "lower"  # the paper prints no number ("≈ 0"): no direction


def test_build_table_format_reward():
    rows = [record("base", "geometry", 10.0, grid="alpha")]
    for alpha, accuracy in [(0.0, 20.0), (1.0, 30.0)]:
        rows.append(
            record("grpo", "geometry", accuracy, grid="alpha", setting={"reward.weights.format": alpha})
        )
    table = build_table(REPORTS.get("exp1-format-reward"), pd.DataFrame(rows), PAPER).set_index(
        "setting_label"
    )
    assert table.loc["α=1.0", "paper_accuracy"] == 30.24
    alpha1 = table.loc["α=1.0"]
    assert (alpha1["vs_zero_ours_pct"], alpha1["vs_zero_paper_pct"]) == (50.0, 20.02)  # (30 − 20)/20; paper
    assert alpha1["vs_zero_diff_pts"] == pytest.approx(10.0) and alpha1["vs_zero_verdict"] == "reproduced"
    assert table.loc["α=0.0", "paper_format_rate"] == 99.70
    assert table.loc["", "paper_accuracy"] == 15.52  # the base row: Table 1's base


def test_write_tables_markdown(tmp_path, same_task_records):
    folder = tmp_path / "exp3-same-task"
    folder.mkdir()
    folder.joinpath("records.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in same_task_records.to_dict("records"))
    )
    csv_path, md_path = write_tables(tmp_path, "exp3-same-task", REPORTS.get("exp3-same-task"))
    assert pd.read_csv(csv_path)["accuracy"].tolist() == [40.0, 62.0, 52.0, 70.25]
    text = md_path.read_text()
    assert text.startswith("# Exp3 — same-task accuracy (paper Table 1)")
    assert "profile **tiny**, scoring **r1v**" in text and "two-level bootstrap" in text
    [sft_row] = [line for line in text.splitlines() if line.startswith("| counting | counting | sft |")]
    assert sft_row.startswith("| counting | counting | sft | 62.00 ± ")
    assert "| 2 | 90.00 | 68.50 | +22.0 [" in sft_row and "] (+55.00 %) | +61.18 | reproduced |" in sft_row
    assert "ours Δ pts [95 % CI] (rel.)" in text and "held-out" not in text  # no held-out set here
    assert "(34.35 − 32.49) / 32.49 × 100 = +5.72 %" in text and "MDE" in text
    assert not list(folder.glob(".*"))  # no temp files left behind


def test_held_out_accuracy_is_shown_when_present(tmp_path):
    held_out = {"heldout_hash": "counting-heldout", "heldout_correct": first_correct(80.0)}
    rows = [record("base", "counting", 40.0, heldout_accuracy=80.0, **held_out)]
    rows.append(record("sft", "counting", 60.0, heldout_accuracy=None))
    table = build_table(REPORTS.get("exp3-same-task"), pd.DataFrame(rows), PAPER).set_index("method")
    assert table.loc["base", "heldout_accuracy"] == 80.0 and table.loc["base", "heldout_accuracy_ci"] > 0
    assert math.isnan(table.loc["sft", "heldout_accuracy"])
    folder = tmp_path / "exp3-same-task"
    folder.mkdir()
    folder.joinpath("records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_tables(tmp_path, "exp3-same-task", REPORTS.get("exp3-same-task"))[1].read_text()
    assert "| ours held-out acc. % |" in text and "| 80.00 ± " in text


def test_single_seed_tables_say_what_the_interval_covers(tmp_path):
    folder = tmp_path / "exp3-same-task"
    folder.mkdir()
    rows = [record("base", "counting", 40.0), record("sft", "counting", 60.0)]
    folder.joinpath("records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_tables(tmp_path, "exp3-same-task", REPORTS.get("exp3-same-task"))[1].read_text()
    assert "intervals cover the test examples only" in text and "| reproduced |" in text


def test_records_without_per_example_results_still_read(tmp_path):
    folder = tmp_path / "exp3-same-task"
    folder.mkdir()
    rows = [record("base", "counting", 40.0, per_example=False)]
    rows += [
        record("sft", "counting", accuracy, seed, per_example=False) for seed, accuracy in enumerate((60, 64))
    ]
    folder.joinpath("records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = build_table(
        REPORTS.get("exp3-same-task"), load_records(tmp_path, "exp3-same-task"), PAPER
    ).set_index("method")
    assert table.loc["sft", "accuracy"] == 62.0 and math.isnan(table.loc["sft", "accuracy_ci"])
    assert math.isnan(table.loc["sft", "vs_base_diff_pts"]) and table.loc["sft", "vs_base_verdict"] == ""
    text = write_tables(tmp_path, "exp3-same-task", REPORTS.get("exp3-same-task"))[1].read_text()
    assert (
        "| 62.00 | 2 |" in text and "| +55.00 % | +61.18 | — |" in text and "no per-example results" in text
    )


def test_bad_records_name_the_line(tmp_path):
    (tmp_path / "exp1-format-reward").mkdir()
    (tmp_path / "exp1-format-reward" / "records.jsonl").write_text('{"method": "base"}\n{oops\n')
    with pytest.raises(Mr1Error, match="line 2"):
        load_records(tmp_path, "exp1-format-reward")
    with pytest.raises(Mr1Error, match="not found"):
        load_records(tmp_path, "exp2-cross-task")


# ---------------------------------------------------------------- end to end on synthetic results


def write_fake_results(root: Path, seeds: tuple[int, ...] = (0, 1), steps: int = 40) -> None:
    """Records (with per-example results; a held-out set in exp3) and curves shaped like the experiment
    runner's, for all three experiments."""
    level = {"base": 30.0, "sft": 55.0, "grpo": 50.0, "grpo-d": 62.0}

    def runs(experiment):
        if experiment == "exp1-format-reward":
            for grid, key, values in (
                ("alpha", "reward.weights.format", (0.0, 0.25, 0.5, 0.75, 1.0)),
                ("beta", "rl.kl.beta", (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)),
            ):
                yield grid, "base", None, "geometry", {}
                for i, value in enumerate(values):
                    yield grid, "grpo", "geometry", "geometry", {key: value, "_shift": i}
            return
        cross = experiment == "exp2-cross-task"
        for task in ("counting", "geometry"):
            other = "geometry" if task == "counting" else "counting"
            yield ("cross-task" if cross else "same-task"), "base", None, task, {}
            for method in ("sft", "grpo", "grpo-d"):
                yield ("cross-task" if cross else "same-task"), method, other if cross else task, task, {}

    for experiment in ("exp1-format-reward", "exp2-cross-task", "exp3-same-task"):
        folder = root / experiment
        (folder / "curves").mkdir(parents=True)
        records, index = [], []
        for grid, method, train, evaluate, setting in runs(experiment):
            shift = setting.pop("_shift", 0)
            for seed in (0,) if method == "base" else seeds:
                name = "base" if method == "base" else f"{method}-{train}-{grid}-{shift}-s{seed}"
                accuracy = (
                    level[method] + 2 * shift + 3 * seed - (20 if experiment == "exp2-cross-task" else 0)
                )
                held_out = accuracy + 10 if experiment == "exp3-same-task" else None
                records.append(
                    {
                        **record(method, evaluate, accuracy, heldout_accuracy=held_out),
                        **(
                            {
                                "heldout_hash": f"{evaluate}-heldout",
                                "heldout_correct": first_correct(held_out),
                            }
                            if held_out
                            else {}
                        ),
                        "experiment": experiment,
                        "grid": grid,
                        "method": method,
                        "train_task": train,
                        "eval_task": evaluate,
                        "seed": seed,
                        "setting": setting,
                        "accuracy": accuracy,
                        "accuracy_r1v": accuracy,
                        "accuracy_strict": accuracy - 1,
                        "format_rate": 90 + shift,
                        "scoring": "r1v",
                        "run": name,
                        "profile": "tiny",
                    }
                )
                if method == "base" or any(row["run"] == name for row in index):
                    continue
                index.append(
                    {
                        "run": name,
                        "method": method,
                        "train_task": train,
                        "setting": setting,
                        "seed": seed,
                        "grid": grid,
                    }
                )
                curve = []
                for step in range(1, steps + 1):
                    row = {
                        "step": step,
                        "reward/format": 1 - 0.9 * math.exp(-step / 4),
                        "kl/beta": 0.01,
                        "reward/accuracy": 0.2 + 0.01 * step * (1 + shift / 4),
                        "loss/total": 1 / step,
                    }
                    row["reward/mean"] = row["reward/accuracy"] + row["reward/format"]
                    if step % 10 == 0:
                        row["eval/accuracy"] = level["base"] + (step / steps) * (accuracy - level["base"])
                    curve.append(row)
                (folder / "curves" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curve))
        (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (folder / "curves" / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in index))


def test_make_all_end_to_end(tmp_path):
    write_fake_results(tmp_path)
    written = make_all(tmp_path)
    expected = set()
    for experiment in ("exp1-format-reward", "exp2-cross-task", "exp3-same-task"):
        figures = REPORTS.get(experiment).figures
        expected |= {tmp_path / experiment / name for name in ("table.csv", "table.md")}
        expected |= {
            tmp_path / experiment / "figures" / f"{stem}.{fmt}" for stem in figures for fmt in ("png", "svg")
        }
    assert set(written) == expected | {tmp_path / "summary.md"}
    for path in written:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cross = pd.read_csv(tmp_path / "exp2-cross-task" / "table.csv")
    assert set(cross["method"]) == {"base", "sft", "grpo", "grpo-d"} and cross["n_seeds"].max() == 2
    assert "ours held-out acc. %" in (tmp_path / "exp3-same-task" / "table.md").read_text()
    summary = (tmp_path / "summary.md").read_text()
    assert (
        "| GRPO-D > GRPO, same task: geometry |" in summary
        and "| GRPO > base: counting, held-out set |" in summary
    )


def test_figures_skip_missing_inputs(tmp_path):
    assert make_figures(tmp_path, "exp1-format-reward") == []
    names = sorted(path.name for path in make_figures(tmp_path, "exp3-same-task"))
    assert names == ["beta_schedules.png", "beta_schedules.svg"]  # needs no results
    with pytest.raises(Mr1Error):
        make_figures(tmp_path, "exp9")


def test_fig4_format_rate_has_seed_intervals_on_a_90_to_100_axis():
    """Format rates 98, 99 and 100 % over three seeds: mean 99 ± t(0.975, 2)·1/√3 = ±2.484, clipped at 100."""
    rows = [record("base", "geometry", 20.0) | {"grid": "alpha"}]
    for seed, rate in enumerate((98.0, 99.0, 100.0)):
        setting = {"reward.weights.format": 0.0}
        rows.append(
            record("grpo", "geometry", 25.0, seed)
            | {"grid": "alpha", "setting": setting, "format_rate": rate}
        )
    records = normalize_records(pd.DataFrame(rows))
    report = REPORTS.get("exp1-format-reward")
    table = build_table(report, records, PAPER)
    figure = report.figures["fig4_format_weight"](Inputs(table, None, "ours", records))
    rate = figure.axes[1]
    assert rate.get_ylim() == (90.0, 100.0) and "95 % CI over seeds" in rate.get_title()
    [bars] = [c for c in rate.containers if getattr(c, "has_yerr", False)]
    [[(_, low), (_, high)]] = bars.lines[2][0].get_segments()
    assert (low, high) == (pytest.approx(99.0 - 4.302653 / 3**0.5, abs=1e-4), 100.0)


def test_fig1_is_named_for_what_it_draws_and_says_when(tmp_path):
    write_fake_results(tmp_path)
    names = sorted(p.name for p in make_figures(tmp_path, "exp3-same-task") if p.suffix == ".svg")
    assert "fig1_accuracy_during_training.svg" in names
    fig1 = (tmp_path / "exp3-same-task" / "figures" / "fig1_accuracy_during_training.svg").read_text()
    assert "test accuracy during training (at steps 10, 20, 30, 40)" in fig1
