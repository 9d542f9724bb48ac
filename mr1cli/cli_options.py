"""Small pieces of the command line kept out of cli.py: typer's help display fix and option checks."""

from __future__ import annotations

import typer

from mr1cli.core.errors import ConfigError

ClickException = typer.BadParameter.__mro__[2]  # typer vendors click; this is its ClickException
_display_type = typer.core.TyperOption.display_type_rich


def _no_type_for_flags(option: typer.core.TyperOption, ctx: object) -> str | None:
    """typer 0.29 shows `<bool>` beside flags such as --help and --resume, which take no value."""
    return None if option.is_flag else _display_type(option, ctx)


typer.core.TyperOption.display_type_rich = _no_type_for_flags


def at_least(value: int, minimum: int, option: str, note: str = "") -> None:
    if value < minimum:
        raise ConfigError(f"{option} must be >= {minimum}{' ' + note if note else ''}, got {value}")
