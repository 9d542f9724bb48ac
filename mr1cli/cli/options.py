"""Pieces every command shares: the stderr console, option types, typer's help display fix, checks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mr1cli.core.errors import ConfigError

ClickException = typer.BadParameter.__mro__[2]  # typer vendors click; this is its ClickException
_display_type = typer.core.TyperOption.display_type_rich


def _no_type_for_flags(option: typer.core.TyperOption, ctx: object) -> str | None:
    """typer 0.29 shows `<bool>` beside flags such as --help and --resume, which take no value."""
    return None if option.is_flag else _display_type(option, ctx)


typer.core.TyperOption.display_type_rich = _no_type_for_flags


def _examples_never_wrapped(format_help):
    """typer's rich help wraps the epilog at the terminal's width, breaking example commands in
    two; this prints the epilog after the rest, each line whole (a terminal soft-wraps a long one,
    and copying it still gives one line)."""

    def formatted(command, ctx, formatter) -> None:
        epilog = command.epilog
        if not epilog or command.rich_markup_mode is None:
            return format_help(command, ctx, formatter)
        command.epilog = None
        try:
            format_help(command, ctx, formatter)
        finally:
            command.epilog = epilog
        out = Console()
        for line in ["", *epilog.strip("\n").splitlines(), ""]:
            out.print(f" {line}".rstrip(), soft_wrap=True, markup=False, highlight=False)

    return formatted


for _command in (typer.core.TyperCommand, typer.core.TyperGroup):
    _command.format_help = _examples_never_wrapped(_command.format_help)


def at_least(value: int, minimum: int, option: str, note: str = "") -> None:
    if value < minimum:
        raise ConfigError(f"{option} must be >= {minimum}{' ' + note if note else ''}, got {value}")


console = Console(stderr=True)
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="config overrides as key=value, e.g. rl.kl.beta=0.02 reward.weights.format=0"),
]
EvalOverrides = Annotated[
    list[str] | None,
    typer.Argument(help="config overrides as key=value, e.g. eval.batch_size=8 eval.max_new_tokens=128"),
]
PLACEHOLDERS = "\n\nWords in <ANGLE_BRACKETS> are placeholders for your own paths."
PROFILE_HELP = (
    "tiny (embedded, CPU, offline), tiny-long or tiny-longer (tiny from a longer-trained base, built once"
    " with mr1 base), paper (Qwen2-VL-2B, real data), or your own <name>.yaml in $MR1_PROFILES_DIR"
)
Profile = Annotated[str, typer.Option(help=PROFILE_HELP)]
TASK_HELP = "a registered task, e.g. counting or geometry"  # the CLI starts without loading the tasks
Task = Annotated[str, typer.Option(help=TASK_HELP)]
