"""The live view of dispatched runs: every worker's (or job's) run, state and step at once in a rich
table on a terminal; off a terminal (a log file, CI) one plain line per event instead."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.live import Live
from rich.table import Table


def status_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


class Board:
    def __init__(self, console: Console, title: str, columns: Sequence[str]) -> None:
        self.console, self.title, self.columns = console, title, columns
        self._live: Live | None = None

    def __enter__(self) -> Board:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def event(self, text: str) -> None:
        """A line that matters on its own (a run starts, ends or fails), on every kind of output."""
        self.console.print(text, soft_wrap=True, markup=False, highlight=False)

    def show(self, rows: Sequence[Sequence[str]]) -> None:
        if self._live is not None:
            self._live.update(status_table(self.title, self.columns, rows))
