"""Experiment trackers through accelerate's tracker API (`train.report_to: [tensorboard, wandb, mlflow]`).

Each tracker logs the same metric names and values as `metrics.jsonl`, at the same steps, and the
resolved run config (flattened to `section.key` parameters). Files stay inside the run directory
unless the tracker's own settings say otherwise: TensorBoard under `<run>/trackers/mr1/`, wandb under
`<run>/wandb/` (set WANDB_MODE=offline to stay off the network), mlflow in a file store at
`<run>/mlruns` unless MLFLOW_TRACKING_URI points elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import Registry
from mr1cli.training.run_dir import RunDir

PROJECT = "mr1"


@dataclass(frozen=True)
class Tracker:
    package: str  # the module that must be importable
    init_kwargs: Callable[[RunDir], dict[str, Any]]
    prepare: Callable[[RunDir], None] = lambda run: None


def _mlflow_file_store(run: RunDir) -> None:
    """A file store inside the run (mlflow ≥ 3.7 asks for MLFLOW_ALLOW_FILE_STORE=true to use one)."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        import mlflow  # optional: checked by check_trackers

        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri((run.path / "mlruns").as_uri())


TRACKERS: Registry[Tracker] = Registry("tracker")
TRACKERS.add("tensorboard", Tracker("tensorboard", lambda run: {}))
TRACKERS.add("wandb", Tracker("wandb", lambda run: {"dir": str(run.path), "name": run.path.name}))
TRACKERS.add("mlflow", Tracker("mlflow", lambda run: {"run_name": run.path.name}, _mlflow_file_store))
for _name in ("comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio"):
    TRACKERS.add(_name, Tracker(_name, lambda run: {}))


def check_trackers(names: list[str]) -> None:
    """Unknown tracker names and missing packages fail before anything is loaded or written."""
    for name in names:
        tracker = TRACKERS.get(name)  # ConfigError with "did you mean" for an unknown name
        if importlib.util.find_spec(tracker.package) is None:
            raise ConfigError(
                f"train.report_to={name} needs the {tracker.package} package: pip install {tracker.package} "
                "(or pip install -e '.[trackers]' for tensorboard, wandb and mlflow)"
            )


def accelerator_kwargs(cfg: RunConfig, run: RunDir) -> dict[str, Any]:
    """`Accelerator(**...)` arguments that route `accelerator.log` to the configured trackers."""
    if not cfg.train.report_to:
        return {}
    from accelerate.utils import ProjectConfiguration

    config = ProjectConfiguration(project_dir=str(run.path), logging_dir=str(run.path / "trackers"))
    return {"log_with": list(cfg.train.report_to), "project_config": config}


def flat_config(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config → {"section.key": scalar}; lists and mappings become JSON text.

    >>> flat_config({"model": {"dtype": "auto", "lora": {"rank": 8}}, "rl": {"kl": {}}})
    {'model.dtype': 'auto', 'model.lora.rank': 8, 'rl.kl': '{}'}
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _scalar(value)
    return flat


def _scalar(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) or value is None else value


def start_trackers(accelerator: Any, cfg: RunConfig, run: RunDir) -> bool:
    """Open the configured trackers with the run config; False when none is configured."""
    if not cfg.train.report_to:
        return False
    for name in cfg.train.report_to:
        TRACKERS.get(name).prepare(run)
    init_kwargs = {name: TRACKERS.get(name).init_kwargs(run) for name in cfg.train.report_to}
    accelerator.init_trackers(PROJECT, config=flat_config(cfg.to_dict()), init_kwargs=init_kwargs)
    return True
