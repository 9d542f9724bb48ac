"""`mr1 data make|check|show`."""

from __future__ import annotations

from mr1cli.errors import NotAvailableYet


def make_dataset(**kwargs) -> None:
    raise NotAvailableYet("`mr1 data make` is not available yet: the data work (issue 3) is in progress")


def check_dataset(source: str, **kwargs) -> None:
    raise NotAvailableYet("`mr1 data check` is not available yet: the data work (issue 3) is in progress")


def show_dataset(source: str, **kwargs) -> None:
    raise NotAvailableYet("`mr1 data show` is not available yet: the data work (issue 3) is in progress")
