"""Reporting: statistics against hand values, the paper's relative changes, tables from hand-made
records, and tables + figures end to end on synthetic results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from mr1cli.core.errors import Mr1Error
from mr1cli.experiments.figures import make_all, make_figures
from mr1cli.experiments.records import load_paper_numbers, load_records
from mr1cli.experiments.specs import list_experiments, load_spec
from mr1cli.experiments.statistics import mean_ci, noise_verdict, relative_change, t_quantile
from mr1cli.experiments.tables import build_table, write_tables

PAPER = load_paper_numbers()
T975_DF1 = 12.7062047  # t(0.975, 1)


# ---------------------------------------------------------------- statistics


def test_mean_ci_hand_values():
    mean, half = mean_ci([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.3027
    assert mean == 2.0
    assert half == pytest.approx(4.302653 / math.sqrt(3), abs=1e-5)  # 2.484
    assert mean_ci([37.5]) == (37.5, 0.0)
    mean, half = mean_ci([60.0, 64.0])  # s = 2√2, n = 2
    assert (mean, half) == pytest.approx((62.0, T975_DF1 * 2 * math.sqrt(2) / math.sqrt(2)))
    with pytest.raises(ValueError):
        mean_ci([])


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 5, 2.571),
        (0.975, 30, 2.042),
        (0.995, 4, 4.604),
        (0.95, 10, 1.812),
        (0.975, 100000, 1.960),
    ],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-3)


def test_relative_change_reproduces_the_paper():
    # Abstract: GRPO-D beats SFT by 5.72 % and GRPO by 13.59 % (Table 1, 2B geometry).
    assert round(relative_change(34.35, 32.49), 2) == 5.72
    assert round(relative_change(34.35, 30.24), 2) == 13.59
    # Figure 7 back-calculations in paper.md reproduce the printed relative changes.
    assert round(relative_change(69.5, 42.5), 2) == 63.53
    assert round(relative_change(3.45, 15.52), 2) == -77.77
    assert math.isnan(relative_change(1.0, 0.0))


def test_noise_verdict():
    assert noise_verdict((60.0, 5.0, 2), (52.0, 4.0, 2)) == "within noise"
    assert noise_verdict((60.0, 1.0, 2), (52.0, 1.0, 2)) == "beyond noise"
    assert noise_verdict((60.0, 0.0, 1), (52.0, 0.0, 1)) == "no CI (1 seed)"


# ---------------------------------------------------------------- tables


def record(method, task, accuracy, seed=0, train=None, **extra):
    train = None if method == "base" else (train or task)
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
        **extra,
    }


@pytest.fixture
def same_task_records():
    rows = [record("base", "counting", 40.0)]
    for seed, (sft, grpo, grpo_d) in enumerate([(60.0, 50.0, 70.0), (64.0, 54.0, 70.2)]):
        rows += [record("sft", "counting", sft, seed), record("grpo", "counting", grpo, seed)]
        rows.append(record("grpo-d", "counting", grpo_d, seed))
    return pd.DataFrame(rows)


def test_build_table_same_task(same_task_records):
    table = build_table("same-task", same_task_records, PAPER).set_index("method")
    sft = table.loc["sft"]
    assert (sft["accuracy"], sft["n_seeds"]) == (62.0, 2)
    assert sft["accuracy_ci"] == pytest.approx(T975_DF1 * 2.0)
    assert sft["paper_accuracy"] == 68.5
    assert sft["vs_base_ours_pct"] == pytest.approx((62 - 40) / 40 * 100)
    assert sft["vs_base_paper_pct"] == pytest.approx((68.5 - 42.5) / 42.5 * 100)
    assert sft["grpo_d_vs_this_ours_pct"] == pytest.approx((70.1 - 62) / 62 * 100)
    assert sft["grpo_d_vs_this_paper_pct"] == pytest.approx((76.5 - 68.5) / 68.5 * 100)
    assert table.loc["grpo", "grpo_d_vs_this_paper_pct"] == pytest.approx(18.60, abs=0.01)
    assert math.isnan(table.loc["base", "accuracy_ci"]) and table.loc["base", "n_seeds"] == 1
    # base (one seed) is a point: inside SFT's wide interval, outside GRPO-D's narrow one
    assert sft["vs_base_noise"] == "within noise"
    assert table.loc["grpo-d", "vs_base_noise"] == "beyond noise"
    assert table.loc["grpo", "grpo_d_vs_this_noise"] == "within noise"
    assert table.loc["base", "vs_base_noise"] == "" and math.isnan(
        table.loc["grpo-d", "grpo_d_vs_this_ours_pct"]
    )


def test_build_table_cross_task_uses_printed_relative_changes():
    rows = [record("base", "counting", 40.0), record("sft", "counting", 30.0, train="geometry")]
    rows += [record("grpo-d", "counting", 50.0, train="geometry"), record("base", "geometry", 20.0)]
    rows.append(record("sft", "geometry", 10.0, train="counting"))
    table = build_table("cross-task", pd.DataFrame(rows), PAPER)
    sft_geo = table[(table["method"] == "sft") & (table["eval_task"] == "geometry")].iloc[0]
    assert sft_geo["vs_base_paper_pct"] == -77.77 and sft_geo["vs_base_ours_pct"] == -50.0
    assert sft_geo["paper_accuracy"] == 3.45 and sft_geo["vs_base_noise"] == "no CI (1 seed)"
    sft_count = table[(table["method"] == "sft") & (table["eval_task"] == "counting")].iloc[0]
    assert sft_count["grpo_d_vs_this_paper_pct"] == 61.63
    assert sft_count["grpo_d_vs_this_ours_pct"] == pytest.approx(200 / 3)


def test_build_table_format_reward():
    rows = [record("base", "geometry", 10.0, grid="alpha")]
    for alpha, accuracy in [(0.0, 20.0), (1.0, 30.0)]:
        rows.append(
            record("grpo", "geometry", accuracy, grid="alpha", setting={"reward.weights.format": alpha})
        )
    table = build_table("format-reward", pd.DataFrame(rows), PAPER).set_index("setting_label")
    assert table.loc["α=1.0", "paper_accuracy"] == 30.24
    alpha1 = table.loc["α=1.0"]
    assert (alpha1["vs_zero_ours_pct"], alpha1["vs_zero_paper_pct"]) == (50.0, 20.02)  # (30 − 20)/20; paper
    assert table.loc["α=0.0", "paper_format_rate"] == 99.70
    assert table.loc["", "paper_accuracy"] == 15.52  # the base row: Table 1's base


def test_write_tables_markdown(tmp_path, same_task_records):
    folder = tmp_path / "exp3-same-task"
    folder.mkdir()
    folder.joinpath("records.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in same_task_records.to_dict("records"))
    )
    csv_path, md_path = write_tables(tmp_path, "exp3-same-task", "same-task")
    assert pd.read_csv(csv_path)["accuracy"].tolist() == [40.0, 62.0, 52.0, 70.1]
    text = md_path.read_text()
    assert text.startswith("# Exp3 — same-task accuracy (paper Table 1)")
    assert "profile **tiny**, scoring **r1v**" in text
    sft_row = "| counting | counting | sft | 62.00 ± 25.41 | 2 | 90.00 ± 0.00 | 68.50 | +55.00 | +61.18 |"
    assert sft_row + " within noise |" in text
    assert "beyond noise" in text and "(34.35 − 32.49) / 32.49 × 100 = +5.72 %" in text
    assert not list(folder.glob(".*"))  # no temp files left behind


def test_single_seed_tables_say_no_ci(tmp_path):
    folder = tmp_path / "exp3-same-task"
    folder.mkdir()
    rows = [record("base", "counting", 40.0), record("sft", "counting", 60.0)]
    folder.joinpath("records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_tables(tmp_path, "exp3-same-task", "same-task")[1].read_text()
    assert "no CI (1 seed)" in text and "no confidence interval is available" in text


def test_bad_records_name_the_line(tmp_path):
    (tmp_path / "exp1-format-reward").mkdir()
    (tmp_path / "exp1-format-reward" / "records.jsonl").write_text('{"method": "base"}\n{oops\n')
    with pytest.raises(Mr1Error, match="line 2"):
        load_records(tmp_path, "exp1-format-reward")
    with pytest.raises(Mr1Error, match="not found"):
        load_records(tmp_path, "exp2-cross-task")


# ---------------------------------------------------------------- end to end on synthetic results


def write_fake_results(root: Path, seeds: tuple[int, ...] = (0, 1), steps: int = 40) -> None:
    """Records and curves shaped like the experiment runner's, for all three experiments."""
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
                records.append(
                    {
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
    for experiment in list_experiments():
        figures = load_spec(experiment)["figures"]
        expected |= {tmp_path / experiment / name for name in ("table.csv", "table.md")}
        expected |= {
            tmp_path / experiment / "figures" / f"{stem}.{fmt}" for stem in figures for fmt in ("png", "svg")
        }
    assert set(written) == expected
    for path in written:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cross = pd.read_csv(tmp_path / "exp2-cross-task" / "table.csv")
    assert set(cross["method"]) == {"base", "sft", "grpo", "grpo-d"} and cross["n_seeds"].max() == 2


def test_figures_skip_missing_inputs(tmp_path):
    assert make_figures(tmp_path, "exp1-format-reward") == []
    names = sorted(path.name for path in make_figures(tmp_path, "exp3-same-task"))
    assert names == ["beta_schedules.png", "beta_schedules.svg"]  # needs no results
    with pytest.raises(Mr1Error):
        make_figures(tmp_path, "exp9")
