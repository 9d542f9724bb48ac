"""Where a profile's values come from: the paper profile marks every value it sets with its source
("paper", "inferred (R1-V)", "ours") in a comment on the key's line; `mr1 train --show-config` prints
the resolved config with those comments (and the meaning of a few keys it always spells out)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mr1cli.config import RunConfig
from mr1cli.config_loading import profile_chain, profile_path

_LINE = re.compile(r"^(?P<indent> *)(?P<key>[\w.-]+):(?P<value>[^#]*?)\s*(?:#\s*(?P<comment>.*))?$")
_FLOW_KEY = re.compile(r"([\w.-]+)\s*:")


def yaml_key_comments(text: str) -> dict[str, str]:
    """Dotted key → the comment on its line, for block-style YAML (a flow mapping's comment covers its keys).

    >>> yaml_key_comments("train:\\n  lr: 1.0e-6   # R1-V\\n  seed: 1\\nrl: {beta: 0.04}  # paper\\n")
    {'train.lr': 'R1-V', 'rl.beta': 'paper'}
    """
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        indent, key, value = len(match["indent"]), match["key"], match["value"].strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [name for _, name in stack] + [key]
        if not value:
            stack.append((indent, key))
        elif match["comment"] and value.startswith("{"):
            for inner in _FLOW_KEY.findall(value):
                comments[".".join([*path, inner])] = match["comment"].strip()
        elif match["comment"]:
            comments[".".join(path)] = match["comment"].strip()
    return comments


def profile_sources(profile_file: Path, task: str, method: str) -> dict[str, str]:
    """Config key → source comment from a profile's `base`, `by_task.<task>` and `by_method.<method>` (later wins)."""
    comments = yaml_key_comments(profile_file.read_text())
    sources: dict[str, str] = {}
    for prefix in ("base.", f"by_task.{task}.", f"by_method.{method}."):
        sources |= {key[len(prefix) :]: note for key, note in comments.items() if key.startswith(prefix)}
    return sources


def annotate_yaml(text: str, sources: dict[str, str]) -> str:
    """`text` (a YAML dump of a config) with `# source` after each key that has one.

    >>> print(annotate_yaml("train:\\n  lr: 1.0e-06\\n  seed: 42\\n", {"train.lr": "R1-V"}), end="")
    train:
      lr: 1.0e-06  # R1-V
      seed: 42
    """
    lines, stack = [], []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is not None:
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            key = ".".join([name for _, name in stack] + [match["key"]])
            if not match["value"].strip():
                stack.append((indent, match["key"]))
            elif key in sources:
                line = f"{line}  # {sources[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


# Keys whose meaning `--show-config` always spells out, after the profile's source if it has one.
SHOWN_MEANINGS = {
    "model.dtype": "the COMPUTE dtype (auto: bf16 on CUDA, float32 on CPU); trained weights, gradients "
    "and AdamW moments stay float32",
}


def annotated_config(cfg: RunConfig, profile: str, task: str, method: str) -> str:
    """The resolved config as YAML, each value a profile sets commented with its source (`--show-config`)."""
    sources: dict[str, str] = {}
    for name in profile_chain(profile):  # a profile's comments over those of the one it extends
        sources |= profile_sources(profile_path(name), task, method)
    for key, meaning in SHOWN_MEANINGS.items():
        sources[key] = f"{sources[key]}; {meaning}" if key in sources else meaning
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)
    return (
        f"# resolved config; a comment gives the source of a value set by profile '{profile}'\n"
        + annotate_yaml(text, sources)
    )
