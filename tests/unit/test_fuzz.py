"""Fuzzing the input surfaces: config overrides, dataset rows, saved completion logs, answer
parsers. Any input either works or raises mr1's own one-line error; never anything else.

HYPOTHESIS_PROFILE=long runs 50× more examples (used once for the hardening report)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mr1cli.config import describe_fields
from mr1cli.config_loading import load_config
from mr1cli.core.errors import Mr1Error
from mr1cli.data.adapters import RowOrigin, detect_schema, row_to_example
from mr1cli.tasks import get_task

settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("long", max_examples=15_000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

KEYS = [key for key, _, _ in describe_fields()] + ["rl.nope", "model", "reward.weights.style", "", "a..b"]
VALUES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(["3e-3", "[1, 2]", "{a: 1}", "null", "~", "-0.5", ".inf", "grpo"]),
)


@given(
    st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4), st.sampled_from(["grpo", "grpo-d", "sft"])
)
def test_config_overrides_load_or_raise_config_error(pairs, method):
    overrides = [f"{key}={value}" for key, value in pairs]
    with contextlib.suppress(Mr1Error):
        load_config(method=method, task="counting", overrides=overrides)


@given(st.text(max_size=40))
def test_free_text_overrides(text):
    with contextlib.suppress(Mr1Error):
        load_config(method="grpo", task="geometry", overrides=[text])


CELLS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(
        [
            "./images/x.png",
            "../../etc/passwd",
            "/home/u/images/x.png",
            "<answer> 3 </answer>",
            "140°",
            "<answer> </answer>",
        ]
    ),
)


@given(
    st.dictionaries(
        st.sampled_from(["image_path", "question", "ground_truth", "id", "thinking", "extra"]),
        CELLS,
        max_size=6,
    ),
    st.sampled_from(["counting", "geometry"]),
)
def test_dataset_rows_become_examples_or_one_line_errors(row, task_name):
    root = Path("/nonexistent-image-root")
    schema = detect_schema(["image_path", "question", "ground_truth"], "fuzz.jsonl")
    origin = RowOrigin("fuzz.jsonl", 1, "image_path")
    try:
        example = row_to_example(
            row, schema=schema, task=get_task(task_name), origin=origin, image_root=root, default_id="fuzz-1"
        )
    except Mr1Error as error:
        assert "\n" not in str(error) and "fuzz.jsonl: row 1" in str(error)
    else:
        assert example.question.strip() and example.truth


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["completion", "model_output", "ground_truth", "question"]), CELLS, max_size=4
        ),
        max_size=3,
    )
)
def test_saved_logs_rescore_or_raise(tmp_path_factory, rows):
    from mr1cli.evaluation.evaluate import read_saved_completions, score_rows

    path = tmp_path_factory.mktemp("fuzz") / "log.json"
    path.write_text(json.dumps(rows))
    try:
        parsed = read_saved_completions(path, "geometry")
    except Mr1Error:
        return
    summary = score_rows(parsed, "geometry", "strict").summary
    assert 0.0 <= summary["accuracy"] <= 100.0


MATHY = st.lists(
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "2",
            "0",
            "9",
            "^",
            "{",
            "}",
            "(",
            ")",
            "√",
            "π",
            "°",
            "cm",
            "\\frac",
            "/",
            "*",
            "!",
            " ",
            ".",
            "=",
            "+",
            "-",
            "x",
        ]
    ),
    max_size=30,
).map("".join)


@given(MATHY, st.sampled_from(["70°", "3cm", "2√3", "12"]))
def test_geometry_scoring_terminates_on_hostile_math(completion, truth):
    task = get_task("geometry")
    for mode in ("r1v", "strict"):
        assert task.is_correct(completion, truth, mode) in (True, False)
