"""Loading a run configuration: YAML layering, key=value overrides, type checks, and the one
explicit step that resolves registry names (method, task, rewards, scoring, sampler, KL schedule).

Layering, later wins: dataclass defaults → profile YAML (experiments/profiles/<name>.yaml) `base`
→ the task's own defaults (its "*" layer, then its layer for the profile) → the profile's
`by_task.<task>` → `by_method.<method>` → a `--config` YAML file → `key=value` overrides such as
`rl.kl.beta=0.02` or `reward.weights.format=0`. A profile value may name the task as `{task}`.
A profile may `extends: <parent>`: its sections are merged over the parent's, key by key, and the
task defaults for the parent apply before its own.
Unknown keys and values of the wrong type raise ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from mr1cli.config import PROFILES_DIR, RunConfig, describe_fields
from mr1cli.core.engines import ENGINES, check_engine
from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import (
    KL_SCHEDULES,
    build_schedule,
    schedule_from_settings,
    schedule_parameters,
    schedule_settings,
)
from mr1cli.core.methods import METHODS
from mr1cli.core.registry import did_you_mean
from mr1cli.core.task import SCORING_MODES
from mr1cli.models.samplers import SAMPLERS
from mr1cli.tasks import get_task
from mr1cli.tasks.rewards import REWARDS

# Keys of earlier versions, and where their meaning lives now.
MOVED_KEYS = {
    "rl.beta": "rl.kl.beta",
    "rl.beta_min": "rl.kl.beta_min",
    "rl.beta_max": "rl.kl.beta_max",
    "rl.explore_frac": "rl.kl.explore_frac",
    "rl.kl_schedule": "rl.kl.name",
    "train.tensorboard": "train.report_to=[tensorboard]",
}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a field's annotation (ints accepted for floats); ConfigError if wrong."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(key, value, option)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if annotation is Any:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a single value, got {value!r}")
        return value
    if origin is list:  # a YAML list, or a comma-separated string from the command line
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ConfigError(f"{key}: expected a list like [a, b] or a,b, got {value!r}")
        (item_type,) = typing.get_args(annotation)
        return [_coerce(f"{key}[{i}]", v, item_type) for i, v in enumerate(items)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping like {{name: number}}, got {value!r}")
        _, value_type = typing.get_args(annotation)
        return {str(k): _coerce(f"{key}.{k}", v, value_type) for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {annotation!r}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    types_by_name = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in types_by_name:
            if key in MOVED_KEYS:
                raise ConfigError(f"config key '{key}' is now '{MOVED_KEYS[key]}'")
            hint = did_you_mean(key, known_keys(), listing="`mr1 config` lists every key")
            raise ConfigError(f"unknown config key '{key}'{hint}")
        annotation = types_by_name[name]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a section of keys, got {value!r}")
            kwargs[name] = _build(annotation, value, prefix=f"{key}.")
        else:
            kwargs[name] = _coerce(key, value, annotation)
    return cls(**kwargs)


def known_keys() -> list[str]:
    """Every config key a user can set, the KL schedules' and the rewards' included."""
    keys = [key for key, _, _ in describe_fields()]
    keys += [f"rl.kl.{p}" for name in KL_SCHEDULES.names() for p in ("name", *schedule_parameters(name))]
    return keys + [f"reward.weights.{name}" for name in REWARDS.names()]


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; a mapping-valued field such as reward.weights is replaced key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """`a.b=value` → {"a": {"b": value}} with value read as YAML (numbers, true/false, strings).

    >>> parse_override("rl.kl.beta=0.02")
    {'rl': {'kl': {'beta': 0.02}}}
    """
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value (e.g. rl.kl.beta=0.02)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    nested: dict[str, Any] = value
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return content


def profiles_dir() -> Path:
    """experiments/profiles, or $MR1_PROFILES_DIR to use your own profiles."""
    return Path(os.environ.get("MR1_PROFILES_DIR") or PROFILES_DIR)


def profile_path(profile: str) -> Path:
    root = profiles_dir()
    path = root / f"{profile}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in root.glob("*.yaml"))
        raise ConfigError(f"unknown profile '{profile}'{did_you_mean(profile, names)}")
    return path


def _with_task(value: Any, task: str) -> Any:
    """Profile values may name the task as `{task}` (e.g. `synthetic:{task}-train-400`)."""
    if isinstance(value, dict):
        return {k: _with_task(v, task) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("{task}", task)
    return value


PROFILE_SECTIONS = ("base", "by_task", "by_method", "launch")


def _profile_file(profile: str) -> dict[str, Any]:
    path = profile_path(profile)
    content = _read_yaml(path, "profile")
    unknown = set(content) - {*PROFILE_SECTIONS, "description", "extends"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level section(s) {sorted(unknown)} "
            "(use base, by_task, by_method, launch, extends)"
        )
    parent = content.get("extends")
    if parent is not None and (not isinstance(parent, str) or not parent):
        raise ConfigError(f"{path}: extends: expected the name of another profile, got {parent!r}")
    return content


def _profile_files(profile: str) -> list[tuple[str, dict[str, Any]]]:
    """The profile and the ones it extends, root first, each with its file's content (read once)."""
    files = [(profile, _profile_file(profile))]
    while (parent := files[-1][1].get("extends")) is not None:
        chain = [name for name, _ in files]
        if parent in chain:
            raise ConfigError(
                f"{profile_path(chain[-1])}: extends '{parent}', which extends it back "
                f"({' → '.join([*chain, parent])})"
            )
        files.append((parent, _profile_file(parent)))
    return files[::-1]


def profile_chain(profile: str) -> list[str]:
    """The profile and the ones it extends, the root first.

    >>> profile_chain("tiny")
    ['tiny']
    """
    return [name for name, _ in _profile_files(profile)]


def _merged_sections(files: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, content in files:
        for section in PROFILE_SECTIONS:
            if content.get(section):
                merged[section] = _merge(merged.get(section) or {}, content[section])
    return merged


def profile_content(profile: str) -> dict[str, Any]:
    """The profile's sections (base, by_task, by_method, launch), merged over those of the profiles
    it extends."""
    return _merged_sections(_profile_files(profile))


def profile_layers(profile: str, task: str, method: str) -> list[dict[str, Any]]:
    """The profile's `base`, the task's "*" defaults, the task's defaults for the profile (and the
    profiles it extends), the profile's `by_task.<task>` and `by_method.<method>` sections, in order."""
    files = _profile_files(profile)
    content = _merged_sections(files)
    defaults = get_task(task).config_defaults
    for_profile: dict[str, Any] = {}
    for name, _ in files:
        for_profile = _merge(for_profile, dict(defaults.get(name, {})))
    return [
        _with_task(content.get("base") or {}, task),
        dict(defaults.get("*", {})),
        for_profile,
        (content.get("by_task") or {}).get(task) or {},
        (content.get("by_method") or {}).get(method) or {},
    ]


def _resolve_kl(values: dict[str, Any], method: str, task: str) -> None:
    """Fill `rl.kl` with the schedule's name and every parameter it takes, checked by the schedule:
    the method's schedule unless `rl.kl.name` says otherwise, the task's values unless overridden."""
    rl = values.setdefault("rl", {})
    if not isinstance(rl, dict) or not isinstance(rl.get("kl", {}), dict):
        raise ConfigError("rl.kl: expected a section of keys such as {name: dynamic, beta_min: 0.04}")
    given = dict(rl.get("kl") or {})
    name = given.pop("name", "") or METHODS.get(method).kl_schedule
    if not name:
        if given:
            raise ConfigError(f"rl.kl.{next(iter(given))} is not used by method '{method}' (no KL term)")
        rl["kl"] = {}
        return
    params = {**get_task(task).kl_defaults.get(name, {}), **given}
    rl["kl"] = {"name": name, **schedule_settings(build_schedule(name, params))}


def check_names(cfg: RunConfig) -> RunConfig:
    """The one step that checks every registry name a config holds; returns the config."""
    METHODS.get(cfg.method)
    get_task(cfg.task)
    for name in cfg.reward.weights:
        REWARDS.get(name)
    for key, mode in (("reward.scoring", cfg.reward.scoring), ("eval.scoring", cfg.eval.scoring)):
        if mode not in SCORING_MODES:
            raise ConfigError(f"{key} must be one of {', '.join(sorted(SCORING_MODES))}, got '{mode}'")
    SAMPLERS.get(cfg.rl.sampler)
    if cfg.rl.kl:
        schedule_from_settings(cfg.rl.kl)
    check_engine(cfg.train.engine, cfg.method, METHODS.get(cfg.method).recipe, cfg.rl.rollout_engine)
    refusal = ENGINES.get(cfg.train.engine).refusals(cfg)
    if refusal:
        raise ConfigError(refusal)
    return cfg


def load_config(
    *,
    method: str,
    task: str,
    profile: str = "tiny",
    config_file: Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    extra_layers: list[dict[str, Any]] | None = None,
) -> RunConfig:
    """Resolve a run's configuration through every layer (see the module docstring)."""
    METHODS.get(method)
    layers = profile_layers(profile, task, method)
    layers += extra_layers or []
    if config_file is not None:
        layers.append(_read_yaml(config_file, "config"))
    layers += [parse_override(text) for text in overrides]
    values: dict[str, Any] = {}
    for layer in layers:
        values = _merge(values, layer)
    for fixed in ("method", "task", "profile"):
        values.pop(fixed, None)
    _resolve_kl(values, method, task)
    return check_names(_build(RunConfig, {**values, "method": method, "task": task, "profile": profile}))


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig saved with `to_dict` (a run directory's config.json), earlier versions'
    included (see `upgrade_saved_config`)."""
    return check_names(_build(RunConfig, upgrade_saved_config(values)))


def upgrade_saved_config(values: dict[str, Any]) -> dict[str, Any]:
    """A saved config in today's shape: the flat KL keys of earlier versions become `rl.kl` (only the
    parameters the method's schedule takes) and `train.tensorboard` becomes `train.report_to`.

    >>> old = {"method": "grpo", "rl": {"beta": 0.04, "beta_min": 0.04, "beta_max": 0.1, "kl_schedule": ""},
    ...        "train": {"tensorboard": False}}
    >>> upgrade_saved_config(old)
    {'method': 'grpo', 'rl': {'kl': {'name': 'constant', 'beta': 0.04}}, 'train': {'report_to': []}}
    """
    rl, train = dict(values.get("rl") or {}), dict(values.get("train") or {})
    legacy = {
        key: rl.pop(key)
        for key in ("beta", "beta_min", "beta_max", "explore_frac", "kl_schedule")
        if key in rl
    }
    if legacy and "kl" not in rl:
        name = legacy.pop("kl_schedule", "") or METHODS.get(str(values.get("method", ""))).kl_schedule
        taken = schedule_parameters(name) if name else ()
        rl["kl"] = {"name": name, **{k: v for k, v in legacy.items() if k in taken}} if name else {}
    if "tensorboard" in train:
        train.setdefault("report_to", ["tensorboard"] if train.pop("tensorboard") else [])
    upgraded = dict(values)
    for section, content in (("rl", rl), ("train", train)):
        if section in values:
            upgraded[section] = content
    return upgraded
