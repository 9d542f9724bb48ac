"""Extending mr1 without touching it: a third task defined only here (scorer, synthetic generator,
per-task β), and an experiment that is only a YAML file, run end to end through `mr1 reproduce`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from PIL import Image
from support import write_mini_experiment

from mr1cli.config_loading import load_config
from mr1cli.core.answer_format import answer_span
from mr1cli.core.task import SyntheticGenerator, Task
from mr1cli.experiments import reproduce as experiments
from mr1cli.experiments.specs import list_experiments
from mr1cli.tasks import TASKS

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


@dataclass(frozen=True)
class Swatch:
    question: str
    answer: str
    thinking: str


def sample_swatch(rng, split: str) -> Swatch:
    colour = rng.choice(sorted(COLOURS))
    return Swatch("What colour is the image?", colour, f"the pixels are {colour}")


def render_swatch(spec: Swatch, image_size: int) -> Image.Image:
    return Image.new("RGB", (image_size, image_size), COLOURS[spec.answer])


class Colour(Task):
    """Name the colour of a plain image: the whole plugin is this class and its registration."""

    name = "colour"
    train_template = "{question} Answer in <answer> </answer> tags."
    eval_template = train_template
    eval_max_new_tokens = 8
    synthetic = SyntheticGenerator(sample_swatch, render_swatch, str)
    kl_defaults = {"constant": {"beta": 0.02}, "dynamic": {"beta_min": 0.01, "beta_max": 0.03}}  # noqa: RUF012
    config_defaults = {"*": {"data": {"train_limit": 0}}}  # noqa: RUF012

    def parse_truth(self, raw: object) -> str:
        """A colour name, bare (test files) or as `<answer> red </answer>` (training solutions)."""
        raw = answer_span(raw) if isinstance(raw, str) and "<answer>" in raw else raw
        if raw not in COLOURS:
            raise ValueError(f"expected one of {sorted(COLOURS)}, got {raw!r}")
        return str(raw)

    def extract_answer(self, completion: str, mode: str) -> str | None:
        return answer_span(completion)

    def is_correct(self, completion: str, truth: str, mode: str) -> bool:
        return self.extract_answer(completion, mode) == truth


@pytest.fixture
def colour_task():
    TASKS.add("colour", Colour())
    yield "colour"
    TASKS.remove("colour")


def test_a_third_task_gets_its_defaults_from_its_own_file(colour_task):
    grpo_d = load_config(method="grpo-d", task="colour")
    assert grpo_d.rl.kl == {"name": "dynamic", "beta_min": 0.01, "beta_max": 0.03, "explore_frac": 0.3}
    assert grpo_d.data.train == "synthetic:colour-train-1280" and grpo_d.data.train_limit == 0
    assert load_config(method="grpo", task="colour").rl.kl == {"name": "constant", "beta": 0.02}


COLOUR_EXPERIMENT = """
name: exp9-colour
description: GRPO-D against SFT on the colour task, defined only in a test.
report: exp3-same-task
figures: [table1_same_task]
seeds: {mini: 1}
grids:
  - name: same-task
    methods: [sft, grpo-d]
    tasks: [colour]
    evaluate_on: same
"""


@pytest.mark.slow
def test_a_third_task_and_a_yaml_only_experiment_run_end_to_end(
    colour_task, tiny_model_dir, tmp_path, monkeypatch
):
    specs = write_mini_experiment(
        tmp_path, tiny_model_dir, train="max_steps: 2, prompts_per_step: 4, micro_batch: 4"
    )
    (specs / "profiles" / "mini.yaml").write_text(
        (specs / "profiles" / "mini.yaml").read_text().split("by_task:")[0]
        + "  data: {train: 'synthetic:{task}-warmup-8', test: 'synthetic:{task}-test-8'}\n"
    )
    (specs / "exp9-colour.yaml").write_text(COLOUR_EXPERIMENT)
    monkeypatch.setenv("MR1_EXPERIMENTS_DIR", str(specs))
    monkeypatch.setenv("MR1_PROFILES_DIR", str(specs / "profiles"))
    monkeypatch.setenv("MR1_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MR1_RUNS", str(tmp_path / "runs"))
    assert "exp9-colour" in list_experiments()

    [out] = experiments.reproduce(
        "exp9-colour", profile="mini", seeds=0, dry_run=False, results_root=tmp_path / "results"
    )

    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["eval_task"]) for r in records) == [
        ("base", "colour"),
        ("grpo-d", "colour"),
        ("sft", "colour"),
    ]
    assert "| colour | colour | grpo-d |" in (out / "table.md").read_text()
    assert (out / "figures" / "table1_same_task.png").is_file()
