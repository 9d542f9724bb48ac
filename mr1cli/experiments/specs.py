"""Experiment specs (experiments/<name>.yaml, discovered by listing the folder) and their plan: every
(grid, method, task, setting, seed) with its resolved config and the tasks it is tested on.

A spec lists grids (methods × tasks × varied config keys × seeds), which tasks each trained model
is evaluated on (`same` or `other`), and the report that turns its results into a table, claims and
figures (`report:`, a name in reporting.reports.REPORTS; `figures:` may pick some of its figures).
A key a spec does not know is an error with a "did you mean", never silently ignored.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mr1cli.config import EXPERIMENTS_DIR, RunConfig
from mr1cli.config_loading import load_config, profile_chain
from mr1cli.core.engines import ENGINES
from mr1cli.core.errors import ConfigError
from mr1cli.core.methods import METHODS
from mr1cli.core.registry import did_you_mean
from mr1cli.reporting.reports import REPORTS
from mr1cli.tasks import TASKS

SPEC_KEYS = ("name", "description", "report", "figures", "seeds", "grids")
GRID_KEYS = ("name", "methods", "tasks", "evaluate_on", "vary", "overrides", "include_base")
EVALUATE_ON = ("same", "other")
# keys of earlier specs, and what says the same now
MOVED_SPEC_KEYS = {"table": "report (e.g. report: exp3-same-task)"}


@dataclass(frozen=True)
class PlannedRun:
    """One model to train (or the base model when method == 'base') and the tasks it is tested on."""

    grid: str
    method: str
    train_task: str | None
    seed: int
    setting: dict[str, Any]
    eval_tasks: tuple[str, ...]
    config: RunConfig | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.config.run_name() if self.config is not None else "base"


def specs_dir() -> Path:
    """experiments/, or $MR1_EXPERIMENTS_DIR to run your own specs under the same names."""
    return Path(os.environ.get("MR1_EXPERIMENTS_DIR") or EXPERIMENTS_DIR)


def list_experiments() -> list[str]:
    """Every experiment spec in the specs folder: each `*.yaml` there that has a `grids` list."""
    names = []
    for path in sorted(specs_dir().glob("*.yaml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(content, dict) and "grids" in content:
            names.append(path.stem)
    return names


def _check_keys(where: str, given: dict[str, Any], known: tuple[str, ...]) -> None:
    """ConfigError naming the first key of `given` that is not in `known`, with a "did you mean"."""
    for key in given:
        if key in MOVED_SPEC_KEYS and key not in known:
            raise ConfigError(f"{where}: '{key}' is now {MOVED_SPEC_KEYS[key]}")
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(str(key), list(known))}")


def check_spec(spec: Any, where: str) -> dict[str, Any]:
    """`spec` when every key, grid key and the report (and its figures) are known; else ConfigError."""
    if not isinstance(spec, dict) or not isinstance(spec.get("grids"), list) or not spec["grids"]:
        raise ConfigError(f"{where}: an experiment spec needs a non-empty 'grids' list")
    _check_keys(where, spec, SPEC_KEYS)
    for number, grid in enumerate(spec["grids"], start=1):
        if not isinstance(grid, dict):
            raise ConfigError(f"{where}: grid {number} is not a mapping of keys")
        _check_keys(f"{where}, grid {grid.get('name', number)}", grid, GRID_KEYS)
    if "report" not in spec:
        raise ConfigError(f"{where}: name its report, e.g. 'report: exp3-same-task' ({', '.join(REPORTS)})")
    report = REPORTS.get(spec["report"])
    for figure in spec.get("figures") or []:
        if figure not in report.figures:
            choices = list(report.figures)
            raise ConfigError(
                f"{where}: report '{report.name}' draws no figure '{figure}'{did_you_mean(figure, choices)}"
            )
    return spec


def load_spec(name: str) -> dict[str, Any]:
    """The spec `experiments/<name>.yaml`, checked (an experiment is one YAML file)."""
    known = list_experiments()
    if name not in known:
        raise ConfigError(f"unknown experiment '{name}'{did_you_mean(name, [*known, 'all'])}")
    path = specs_dir() / f"{name}.yaml"
    return check_spec(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def _eval_tasks(train_task: str, evaluate_on: str) -> tuple[str, ...]:
    """The tasks a model trained on `train_task` is tested on: its own, or every other registered one."""
    if evaluate_on not in EVALUATE_ON:
        raise ConfigError(f"evaluate_on must be 'same' or 'other', got '{evaluate_on}'")
    return (train_task,) if evaluate_on == "same" else tuple(t for t in TASKS.names() if t != train_task)


def _for_profile(values: dict[str, Any], chain: list[str], default: Any = None) -> Any:
    """The value a per-profile mapping (`{tiny: 3, "*": 1}`) gives a profile: its own entry, else that
    of the nearest profile it extends, else "*", else `default`. `chain`: root first (`profile_chain`).

    >>> _for_profile({"tiny": 3, "*": 1}, ["tiny", "tiny-long"]), _for_profile({"tiny": 3}, ["paper"], 1)
    (3, 1)
    """
    for name in (*reversed(chain), "*"):
        if name in values:
            return values[name]
    return default


def _profile_values(values: list[Any] | dict[str, list[Any]], chain: list[str], key: str) -> list[Any]:
    """A varied key's values: one list, or a list per profile (`{tiny: [...], "*": [...]}`, "*" for the
    others), so a small profile can cut grid points that a large one keeps. `chain`: the profile,
    root first (`profile_chain`).

    >>> _profile_values({"tiny": [0, 1], "*": [0, 0.5, 1]}, ["paper"], "x"), _profile_values([1, 2], ["tiny"], "x")
    ([0, 0.5, 1], [1, 2])
    """
    if not isinstance(values, dict):
        return list(values)
    chosen = _for_profile(values, chain)
    if chosen is None:
        raise ConfigError(
            f"vary.{key}: no values for profile '{chain[-1]}' (give a list for it or for \"*\")"
        )
    return list(chosen)


def plan(spec: dict[str, Any], profile: str, seeds: int, engine: str = "") -> list[PlannedRun]:
    """Every (grid, method, task, setting, seed) of the spec, with its resolved config. `engine` (e.g.
    `trl`) trains the methods it supports (`train.engine`); the others stay on the config's engine."""
    trains = ENGINES.get(engine).recipes if engine else ()
    chain = profile_chain(profile)
    seed_values = range(seeds or _for_profile(spec.get("seeds") or {}, chain, 1))
    runs: list[PlannedRun] = []
    for grid in spec["grids"]:
        vary = {key: _profile_values(values, chain, key) for key, values in (grid.get("vary") or {}).items()}
        fixed = [f"{k}={v}" for k, v in (grid.get("overrides") or {}).items()]
        for task in grid["tasks"]:
            eval_tasks = _eval_tasks(task, grid.get("evaluate_on", "same"))
            if grid.get("include_base", True):
                for eval_task in eval_tasks:
                    runs.append(PlannedRun(grid["name"], "base", None, 0, {}, (eval_task,)))
            for method, values, seed in itertools.product(
                grid["methods"], itertools.product(*vary.values()), seed_values
            ):
                setting = dict(zip(vary, values, strict=True))
                overrides = (*fixed, *(f"{k}={v}" for k, v in setting.items()), f"train.seed={seed}")
                if METHODS.get(method).recipe in trains:
                    overrides = (*overrides, f"train.engine={engine}")
                config = load_config(method=method, task=task, profile=profile, overrides=list(overrides))
                runs.append(
                    PlannedRun(grid["name"], method, task, seed, setting, eval_tasks, config, overrides)
                )
    return runs
