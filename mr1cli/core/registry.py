"""Name → object registries (tasks, rewards, KL schedules, methods…) with "did you mean" errors."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from mr1cli.core.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str], *, listing: str = "") -> str:
    """The one "did you mean" of every registry and config-key check: a suffix naming the closest
    valid names, else listing them (or saying `listing`, where the list is long).

    Dotted names are compared by their last segment, the part a typo is usually in; a name that
    the start of a choice spells (`h100` for `h100-80gb`) or the initials of one (`lr` for
    `learning_rate`) is matched before spelling distance.

    >>> did_you_mean("grpo_d", ["grpo", "grpo-d", "sft"])
    " (did you mean 'grpo-d'?)"
    >>> did_you_mean("rl.betta", ["rl.top_p", "rl.sampler", "rl.kl.beta"])
    " (did you mean 'rl.kl.beta'?)"
    >>> did_you_mean("h100", ["h200", "h100-80gb", "h100-pcie"])
    " (did you mean 'h100-80gb' or 'h100-pcie'?)"
    >>> did_you_mean("train.lr", ["train.learning_rate", "train.lr_scheduler", "train.seed"])
    " (did you mean 'train.learning_rate' or 'train.lr_scheduler'?)"
    >>> did_you_mean("rl.gamma", ["rl.top_p", "rl.sampler"])
    ' (choose from: rl.sampler, rl.top_p)'
    """
    options = list(dict.fromkeys(choices))
    close = closest_names(name, options)
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    if listing and len(options) > MAX_LISTED:
        return f" ({listing})"
    return f" (choose from: {', '.join(sorted(options))})"


MAX_LISTED = 12


def _plain(name: str) -> str:
    """Lower case without separators.

    >>> _plain("H100_80GB")
    'h10080gb'
    """
    return re.sub(r"[-_ ]", "", name.lower())


def _initials(name: str) -> str:
    return "".join(word[:1] for word in re.split(r"[-_]", name.lower()))


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def closest_names(name: str, choices: list[str], most: int = 3) -> list[str]:
    """The choices `name` most likely meant, best first (empty when none is close)."""
    typed, last = _plain(name), _plain(_last(name))
    tiers = (
        [c for c in choices if _plain(c) == typed],
        [c for c in choices if "." in name and _plain(_last(c)) == last],
        [c for c in choices if len(last) >= 2 and _initials(_last(c)) == last]
        + [c for c in choices if len(last) >= 2 and _plain(_last(c)).startswith(last)],
    )
    for tier in tiers:
        if tier:
            return list(dict.fromkeys(tier))[:most]
    scored = [(difflib.SequenceMatcher(None, last, _plain(_last(c))).ratio(), c) for c in choices]
    best = max((score for score, _ in scored), default=0.0)
    return [c for score, c in scored if score == best][:most] if best >= 0.7 else []


class Registry(Generic[T]):
    """A named collection that plugins add to with `@registry.register("name")`.

    A registry is filled by the module that defines it or by the modules that import it (its
    built-in entries are registered where the registry is imported from, never behind a hidden
    import), so the static import graph is the true one.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = obj
            return obj

        return add

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def remove(self, name: str) -> None:
        """Take an entry out again (tests that register a toy plugin clean up with this)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} '{name}'{did_you_mean(name, self.names())}") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
