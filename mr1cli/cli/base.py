"""`mr1 base`: build (once) and check the tiny base the tiny profile starts from."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mr1cli.config import TINY_BASE_NAMES
from mr1cli.training.progress import log_to_console

console = Console(stderr=True)
BASE_EPILOG = (
    "Examples:\n\n    mr1 base              # build once (10–17 min on 2 cores) or reuse, and check the hash\n\n"
    "    mr1 base --rebuild    # delete the cached base and build it again\n\n"
    "    mr1 base tiny-base-long   # the tiny-long profile's base: 8× the warm-up, about an hour on 2 cores\n\n"
    "    mr1 base tiny-base-longer   # 16× the warm-up, about two hours on 2 cores"
)


def base(
    name: Annotated[
        str,
        typer.Argument(
            help=f"which tiny base: {', '.join(TINY_BASE_NAMES)} (recipes: experiments/profiles/<name>.yaml)"
        ),
    ] = "tiny-base",
    rebuild: Annotated[bool, typer.Option(help="delete the cached tiny base and build it again")] = False,
    record: Annotated[
        bool,
        typer.Option(help="maintainers: write its hash as the expected one (after a change to its recipe)"),
    ] = False,
) -> None:
    """Build (once) a tiny base, the model a tiny profile starts from, and check its weights' sha256
    against the expected one (experiments/profiles/<name>.expected.json)."""
    import time

    from mr1cli.zoo import builds

    builds.TINY_BASES.get(name)  # an unknown name: one line, with the closest
    log_to_console(console)
    started = time.monotonic()
    final = builds.rebuild_tiny_base(name) if rebuild else builds.ensure_tiny_base(name)
    if record:
        console.print(
            f"wrote {builds.record_expected(final, time.monotonic() - started if rebuild else None)}"
        )
    found, expected = builds.weights_sha256(final), builds.expected_sha256(final.parent.name)
    verdict = (
        "no expected hash for this config"
        if expected is None
        else ("matches" if found == expected else "DIFFERS")
    )
    out = Console()
    out.print(f"tiny base  {final}", soft_wrap=True, highlight=False)
    out.print(f"sha256     {found}  ({verdict})", soft_wrap=True, highlight=False)
    if expected is not None and found != expected:
        out.print(f"expected   {expected}", soft_wrap=True, highlight=False)
