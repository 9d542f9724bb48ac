"""`mr1 config`: every config key with its resolved value, default, help and the layer that set it.

The layers are those of `load_config` (later wins): the dataclass defaults, the profile's
`base`, the task's own defaults (its per-task β included), `by_task.<task>` and `by_method.<method>` sections, `--config FILE`, `key=value`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from mr1cli.config import describe_fields
from mr1cli.config_loading import load_config, parse_override, profile_layers


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as dotted keys.

    >>> _flatten({"rl": {"beta": 0.02}, "reward": {"weights": {"format": 0}}})
    {'rl.beta': 0.02, 'reward.weights.format': 0}
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _setter(key: str, layers: list[tuple[str, dict[str, Any]]]) -> str:
    """The last layer that sets `key` or one of its sub-keys (reward.weights.format sets reward.weights)."""
    source = "default"
    for name, flat in layers:
        if any(k == key or k.startswith(key + ".") for k in flat):
            source = name
    return source


def config_rows(
    *, method: str, task: str, profile: str, config_file: Path | None, overrides: list[str]
) -> list[tuple[str, str, str, str, str]]:
    """(key, value, default, layer, help) for every leaf key of the resolved config."""
    cfg = load_config(
        method=method, task=task, profile=profile, config_file=config_file, overrides=overrides
    )  # validates everything first
    base, task_all, task_profile, by_task, by_method = profile_layers(profile, task, method)
    layers = [
        (f"profile {profile}: base", _flatten(base)),
        (f"task {task}: defaults", _flatten(task_all) | ({"rl.kl": 1} if cfg.rl.kl else {})),
        (f"task {task}: defaults for profile {profile}", _flatten(task_profile)),
        (f"profile {profile}: by_task.{task}", _flatten(by_task)),
        (f"profile {profile}: by_method.{method}", _flatten(by_method)),
    ]
    if config_file is not None:
        layers.append((f"--config {config_file}", _flatten(yaml.safe_load(config_file.read_text()) or {})))
    layers += [("key=value", _flatten(parse_override(text))) for text in overrides]
    resolved = cfg.to_dict()
    rows = []
    for key, default, help_text in describe_fields():
        if key in ("method", "task", "profile"):
            continue
        value = _section_value(resolved, key)
        rows.append((key, repr(value), default, _setter(key, layers), help_text))
    return rows


def _section_value(values: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        values = values[part]
    return values


def config_listing(
    *, method: str, task: str, profile: str, config_file: Path | None, overrides: list[str]
) -> str:
    """Plain text, one key per entry, greppable and within 80 columns (only a `key = value` line
    with a long list may be wider, and it is never broken, so that it can be copied whole):

    train.seed = 3
        seed for initialisation, data order and sampling
        default 42; set by key=value
    """
    rows = config_rows(
        method=method, task=task, profile=profile, config_file=config_file, overrides=list(overrides)
    )
    lines = [f"# {method} on {task}, profile {profile}: every key: value, help, default, source"]
    section = ""
    for key, value, default, layer, help_text in rows:
        if key.split(".")[0] != section:
            section = key.split(".")[0]
            lines.append("")
        origin = "the default" if layer == "default" else f"default {default}; set by {layer}"
        lines += [f"{key} = {value}", *_indented(help_text), *_indented(origin)]
    return "\n".join(lines)


def _indented(text: str) -> list[str]:
    """`text` wrapped to 80 columns, indented by four.

    >>> _indented("a " * 45)[1]
    '    a a a a a a a'
    """
    return textwrap.wrap(
        text, width=80, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False
    )
