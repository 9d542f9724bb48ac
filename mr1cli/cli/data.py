"""`mr1 data make|check|show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mr1cli.cli.options import PLACEHOLDERS, Task, console
from mr1cli.cli.options import at_least as _at_least
from mr1cli.cli.paths import input_dir, output_dir, output_file
from mr1cli.training.progress import log_to_console

data_app = typer.Typer(
    help="Build synthetic datasets, validate real ones, look at examples.", no_args_is_help=True
)


@data_app.command(
    "make",
    epilog="Example:\n\n    mr1 data make --task counting --split test --n 200 --out data/synthetic/counting-test",
)
def data_make(
    task: Task,
    split: Annotated[
        str,
        typer.Option(
            help="train, warmup (the tiny base's warm-up set), heldout (more of the training "
            "distribution, never trained on) or test (shifted)"
        ),
    ],
    n: Annotated[int, typer.Option(help="number of examples")],
    out: Annotated[Path, typer.Option(help="output folder (refused if it holds a different dataset)")],
    seed: Annotated[int, typer.Option(help="generator seed; the same seed gives byte-identical files")] = 0,
    image_size: Annotated[int, typer.Option(help="image side in pixels")] = 112,
) -> None:
    """Generate a synthetic dataset in the public R1-V schema."""
    from mr1cli.data.dataset_commands import make_dataset

    output_dir(out, "--out")
    make_dataset(task=task, split=split, n=n, out=out, seed=seed, image_size=image_size)


@data_app.command(
    "check",
    epilog="Examples:\n\n"
    "    mr1 data check synthetic:counting-test-200 --task counting\n\n"
    "    mr1 data check <DATA_DIR>/superclevr_test200_counting_problems.jsonl --task counting "
    "--image-root <DATA_DIR>\n\n"
    "    mr1 data check leonardPKU/GEOQA_R1V_Train_8K --task geometry --skip-bad   # needs the hub or its cache"
    + PLACEHOLDERS,
)
def data_check(
    source: Annotated[str, typer.Argument(help="local path, HF dataset id, or synthetic:<task>-<split>-<n>")],
    task: Task,
    image_root: Annotated[
        Path | None, typer.Option(help="folder that image paths are resolved under")
    ] = None,
    skip_bad: Annotated[bool, typer.Option(help="count bad rows instead of stopping at the first")] = False,
) -> None:
    """Validate a dataset: every row, every image; print counts, answers and examples."""
    from mr1cli.data.dataset_commands import check_dataset

    if image_root is not None:
        input_dir(image_root, "--image-root")
    log_to_console(console)  # the loader's warnings (e.g. ground truths kept as text)
    check_dataset(source, task=task, image_root=image_root, skip_bad=skip_bad)


@data_app.command(
    "show",
    epilog="Example:\n\n    mr1 data show synthetic:geometry-test-200 --task geometry --out geometry.png",
)
def data_show(
    source: Annotated[str, typer.Argument(help="local path, HF dataset id, or synthetic:<task>-<split>-<n>")],
    task: Task,
    out: Annotated[
        Path, typer.Option(help="contact sheet to write: .png, .jpg/.jpeg or .webp (format by suffix)")
    ] = Path("contact_sheet.png"),
    n: Annotated[int, typer.Option(help="examples to show")] = 16,
    image_root: Annotated[
        Path | None, typer.Option(help="folder that image paths are resolved under")
    ] = None,
) -> None:
    """Write a contact sheet of examples with their questions and answers."""
    from mr1cli.data.contact_sheet import sheet_format
    from mr1cli.data.dataset_commands import show_dataset

    _at_least(n, 1, "--n")
    sheet_format(output_file(out, "--out"))
    if image_root is not None:
        input_dir(image_root, "--image-root")
    show_dataset(source, task=task, out=out, n=n, image_root=image_root)
