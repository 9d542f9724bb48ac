"""The grid's units of work, whichever process or machine runs them.

A unit is one model to train (then evaluate on its eval tasks) or one evaluation of the base
model. Planning and reading units imports no torch (`mr1 status`, `--dry-run`); running one does. Units are keyed by their run directory, so a model two experiments share (exp2 and exp3) or
a setting two grids share is trained once. `run_unit` is what a worker process executes; the
in-process `execute` of `mr1 reproduce` uses the same evaluate_cached and base_folder.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.config_loading import config_from_dict, load_config
from mr1cli.experiments.specs import PlannedRun
from mr1cli.files import atomic_write_text
from mr1cli.reporting.records import correctness_bits, read_jsonl
from mr1cli.training.run_dir import RunDir, default_run_dir
from mr1cli.zoo.builds import model_folder, resolve_model


def eval_config(profile: str, eval_task: str) -> RunConfig:
    return load_config(method="sft", task=eval_task, profile=profile)


def eval_splits(profile: str, eval_task: str, trained_on: str | None = None) -> tuple[str, ...]:
    """The sets a model is evaluated on: the (shifted) test set, and the held-out set from the
    training distribution where the profile names one (`data.heldout`), unless the model was trained
    on another task (cross-task results compare test sets only; this saves their held-out passes)."""
    heldout = eval_config(profile, eval_task).data.heldout and trained_on in (None, eval_task)
    return ("test", "heldout") if heldout else ("test",)


def eval_key(cfg: RunConfig, split: str = "test") -> str:
    content = {
        split: getattr(cfg.data, split),
        "limit": cfg.data.test_limit if split == "test" else 0,
        "eval": cfg.eval.__dict__,
        "pixels": [cfg.model.min_pixels, cfg.model.max_pixels],
        "image": cfg.data.synthetic_image_size,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]


def eval_dir(folder: Path, profile: str, eval_task: str, split: str = "test") -> Path:
    """Where the evaluation of the model in `folder` on `eval_task`'s `split` set is kept."""
    return folder / "eval" / f"{eval_task}-{split}-{eval_key(eval_config(profile, eval_task), split)}"


def evaluate_cached(
    model: str, folder: Path, profile: str, eval_task: str, trained_on: str | None = None
) -> None:
    """Evaluate `model` on the profile's test set of `eval_task` (and its held-out set), once each."""
    from mr1cli.runs.eval import evaluate_checkpoint  # torch: only when something is evaluated

    for split in eval_splits(profile, eval_task, trained_on):
        out_dir = eval_dir(folder, profile, eval_task, split)
        if not (out_dir / "metrics.json").is_file():
            started = time.monotonic()
            evaluate_checkpoint(eval_config(profile, eval_task), model, split=split, output=out_dir)
            seconds = {"seconds": round(time.monotonic() - started, 1)}  # for the dry run's estimate
            atomic_write_text(out_dir / "timing.json", json.dumps(seconds))


def evaluation_fields(
    folder: Path, profile: str, eval_task: str, trained_on: str | None = None
) -> dict[str, Any]:
    """A record's evaluation results, from the saved evaluations of the model in `folder`: the test
    set's accuracies, format rate and scoring, then for each evaluated set its examples hash and
    per-example correctness (`test_correct`: '1'/'0' per example in test-set order), and the held-out
    accuracy (None without a held-out set)."""
    fields: dict[str, Any] = {"heldout_accuracy": None}
    for split in eval_splits(profile, eval_task, trained_on):
        out_dir = eval_dir(folder, profile, eval_task, split)
        summary = json.loads((out_dir / "metrics.json").read_text())
        predictions = read_jsonl(out_dir / "predictions.jsonl")
        if split == "test":
            keys = ("accuracy", "accuracy_r1v", "accuracy_strict", "format_rate", "scoring")
            fields |= {key: summary[key] for key in keys}
        else:
            fields[f"{split}_accuracy"] = summary["accuracy"]
        fields[f"{split}_hash"] = summary["provenance"]["test_hash"]
        fields[f"{split}_correct"] = correctness_bits([bool(p["correct"]) for p in predictions])
    return fields


def _base_home(cfg: RunConfig, model: str) -> Path:
    """Where the evaluations of base model `model` (a hub id or a folder) are kept: keyed by the
    model's resolved folder, so every task whose profile names the same model shares one folder."""
    key = hashlib.sha256(str(Path(model).resolve() if Path(model).exists() else model).encode()).hexdigest()
    return default_run_dir(cfg).parent / f"base-{key[:10]}"


def base_home(profile: str, task: str) -> tuple[Path | None, bool]:
    """`base_folder`'s folder and whether the base model is built, building nothing (None where the
    folder is known only once the model is built)."""
    cfg = eval_config(profile, task)
    model, built = model_folder(cfg.model.name_or_path, cfg)
    if model is None or not built:
        return (None, False) if model is None else (_base_home(cfg, str(Path(model).resolve())), False)
    return _base_home(cfg, model), True


def base_folder(profile: str, task: str) -> tuple[str, Path]:
    """The profile's base model for `task` (built on first use) and where its evaluations are kept."""
    cfg = eval_config(profile, task)
    resolved = resolve_model(cfg.model.name_or_path, cfg)
    return resolved, _base_home(cfg, resolved)


@dataclass(frozen=True)
class Unit:
    """One job: train `config` (None: the base model) in `home`, then evaluate it on `eval_tasks`."""

    name: str  # the run's name, or base/<eval task>
    profile: str
    home: Path  # the run directory (or the base model's evaluation folder)
    eval_tasks: tuple[str, ...]
    config: RunConfig | None = None

    @property
    def tag(self) -> str:
        """The file stem of this unit's log and launch record inside home/launch/."""
        return "run" if self.config is not None else f"eval-{self.eval_tasks[0]}"

    @property
    def trained_on(self) -> str | None:
        return self.config.task if self.config is not None else None

    @property
    def log(self) -> Path:
        return self.home / "launch" / f"{self.tag}.log"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profile": self.profile,
            "home": str(self.home),
            "eval_tasks": list(self.eval_tasks),
            "config": self.config.to_dict() if self.config is not None else None,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Unit:
        config = config_from_dict(data["config"]) if data["config"] is not None else None
        return Unit(data["name"], data["profile"], Path(data["home"]), tuple(data["eval_tasks"]), config)


def grid_units(planned: list[PlannedRun], profile: str) -> list[Unit]:
    """The distinct units of one or more plans, in plan order (a shared run is listed once, with
    every eval task any plan asks of it). Nothing is built: a model is built when a unit runs."""
    units: dict[str, Unit] = {}
    for run in planned:
        if run.config is None:
            for task in run.eval_tasks:
                if f"base/{task}" not in units:  # its folder is known without building the base model
                    home = base_home(profile, task)[0] or base_folder(profile, task)[1]
                    units[f"base/{task}"] = Unit(f"base/{task}", profile, home, (task,))
            continue
        known = units.get(run.name)
        tasks = (
            (*known.eval_tasks, *(t for t in run.eval_tasks if t not in known.eval_tasks))
            if known
            else run.eval_tasks
        )
        units[run.name] = Unit(run.name, profile, default_run_dir(run.config), tasks, run.config)
    return list(units.values())


def unit_done(unit: Unit) -> bool:
    """Trained (when there is something to train) and evaluated on every eval task."""
    if unit.config is not None and not RunDir(unit.home).is_done():
        return False
    return all(
        (eval_dir(unit.home, unit.profile, task, split) / "metrics.json").is_file()
        for task in unit.eval_tasks
        for split in eval_splits(unit.profile, task, unit.trained_on)
    )


def run_unit(unit: Unit, *, evaluate: bool = True) -> None:
    """Train (resuming from the newest checkpoint) and evaluate; a finished part is reused."""
    from mr1cli.training.train import run_training  # torch: only in the process that trains

    if unit.config is None:
        model, folder = base_folder(unit.profile, unit.eval_tasks[0])
    else:
        base_model = resolve_model(unit.config.model.name_or_path, unit.config)
        final = run_training(unit.config, base_model=base_model, resume=True)
        model, folder = str(final), final.parent
    if evaluate:
        for eval_task in unit.eval_tasks:
            evaluate_cached(model, folder, unit.profile, eval_task, unit.trained_on)
