"""`mr1 bench grpo|eval`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mr1cli.cli.options import at_least as _at_least
from mr1cli.cli.options import console
from mr1cli.training.progress import log_to_console

bench_app = typer.Typer(
    help="Measure speed against a reference trainer (TRL's GRPOTrainer).", no_args_is_help=True
)


@bench_app.command(
    "grpo",
    epilog="Examples:\n\n    mr1 bench grpo --profile tiny\n\n    mr1 bench grpo --profile paper-shaped --steps 10",
)
def bench_grpo(
    profile: Annotated[
        str, typer.Option(help="tiny (CPU) or paper-shaped (Qwen2-VL-2B architecture, GPU)")
    ] = "tiny",
    steps: Annotated[int, typer.Option(help="measured steps per trainer (after warm-up)")] = 5,
) -> None:
    """Time one GRPO-D step of mr1 against TRL's GRPOTrainer on identical work."""
    from mr1cli.bench.report import grpo_table
    from mr1cli.bench.runner import bench_grpo as run_bench

    _at_least(steps, 1, "--steps")
    log_to_console(console)
    result = run_bench(profile=profile, steps=steps)
    Console().print(grpo_table(result))
    console.print(f"wrote {', '.join(result['written'])}")


@bench_app.command("eval", epilog="Example:\n\n    mr1 bench eval --profile tiny")
def bench_eval(
    profile: Annotated[str, typer.Option(help="tiny or paper-shaped")] = "tiny",
) -> None:
    """Measure evaluation throughput (examples per second)."""
    from mr1cli.bench.report import eval_table
    from mr1cli.bench.runner import bench_eval as run_bench

    log_to_console(console)
    report = run_bench(profile=profile)
    Console().print(eval_table(report))
    console.print(f"wrote {', '.join(report['written'])}")
