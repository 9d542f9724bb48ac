"""The `mr1` command line: parse, build the config, call one function. Nothing else lives here.

Every command imports what it needs inside its function, so `mr1 --help`, `--version`, `config`,
`status`, `figures` and every mistake on the command line start without torch
(tests/unit/test_startup.py checks it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from mr1cli import __version__
from mr1cli.cli import launch as grid
from mr1cli.cli.base import BASE_EPILOG, base
from mr1cli.cli.bench import bench_app
from mr1cli.cli.data import data_app
from mr1cli.cli.options import (
    PLACEHOLDERS,
    TASK_HELP,
    ClickException,
    EvalOverrides,
    Overrides,
    Profile,
    Task,
    console,
)
from mr1cli.cli.options import at_least as _at_least
from mr1cli.cli.paths import input_dir, input_file, output_dir
from mr1cli.config import TINY_BASE_NAMES
from mr1cli.core.errors import ConfigError, Mr1Error
from mr1cli.training.progress import log_to_console

app = typer.Typer(
    name="mr1",
    help="Reproduce and extend OThink-MR1: GRPO / GRPO-D reinforcement learning for vision-language models.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mr1 {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    pass


app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")


@app.command(
    epilog="Examples:\n\n"
    "    mr1 train --method grpo-d --task counting\n\n"
    "    mr1 train --method grpo --task geometry rl.kl.beta=0.02 reward.weights.format=0\n\n"
    "    mr1 train --method grpo-d --task counting --engine trl   # TRL's GRPOTrainer (needs the trl extra)\n\n"
    "    accelerate launch --config_file experiments/accelerate/8gpu.yaml -m mr1cli train "
    "--method grpo-d --task geometry --profile paper\n\n"
    "    mr1 train --method sft --task counting --output results/runs/my-sft\n\n"
    "    mr1 train --method sft --task counting --output results/runs/my-sft --resume   # after Ctrl-C or a kill"
)
def train(
    method: Annotated[str, typer.Option(help="sft, grpo (constant β) or grpo-d (the paper's dynamic β)")],
    task: Task,
    profile: Profile = "tiny",
    model: Annotated[
        str | None, typer.Option(help="hub id or local checkpoint folder (overrides model.name_or_path)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file of config keys layered over the profile")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="run directory (default: results/runs/<method>-<task>-<config hash>)")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="continue the run in the output directory from its last checkpoint")
    ] = False,
    show_config: Annotated[
        bool,
        typer.Option(
            help="print the resolved config, with each profile value's source (and with --engine trl the TRL "
            "GRPOConfig it builds), and exit"
        ),
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(help="training engine, mr1 or trl (the same as train.engine=...)", show_default=False),
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Fine-tune a model with SFT, GRPO or GRPO-D on one task."""
    from mr1cli.config_loading import load_config

    if config is not None:
        input_file(config, "--config")
    if output is not None:
        output_dir(output, "--output")
    extra = [f"model.name_or_path={model}"] if model else []
    extra += [f"train.engine={engine}"] if engine else []
    cfg = load_config(
        method=method, task=task, profile=profile, config_file=config, overrides=[*extra, *(overrides or [])]
    )
    if show_config:
        from mr1cli.config_sources import annotated_config
        from mr1cli.training.engines import engine_config_text

        return typer.echo(annotated_config(cfg, profile, task, method) + engine_config_text(cfg))
    from mr1cli.runs.train import train_one

    log_to_console(console)
    rerun = ["mr1", "train", "--method", method, "--task", task, "--profile", profile]
    rerun += ["--model", model] if model else []
    rerun += ["--config", str(config)] if config else []
    rerun += ["--engine", engine] if engine else []
    final = train_one(cfg, output=output, resume=resume, rerun=rerun, overrides=list(overrides or []))
    from shlex import quote

    for line in (
        f"final model: {quote(str(final))}  (metrics: {quote(str(final.parent / 'metrics.jsonl'))})",
        f"next: mr1 eval --checkpoint {quote(str(final.parent))} --task {task}",
    ):  # whole lines (a terminal soft-wraps them), so that a path or the command copies whole
        console.print(line, soft_wrap=True, markup=False, highlight=False)


@app.command(
    name="eval",
    epilog="Examples:\n\n"
    "    mr1 eval --checkpoint tiny-base --task counting --limit 50\n\n"
    "    mr1 eval --checkpoint tiny-base --task counting --split heldout --samples 8   # + pass@k, majority@8\n\n"
    "    mr1 eval --checkpoint <RUN_DIR> --task counting --split validation   # the set settings are chosen on\n\n"
    "    mr1 eval --checkpoint <RUN_DIR> --task geometry   # a run from `mr1 train`, scored with its own config\n\n"
    "    mr1 eval --checkpoint Qwen/Qwen2-VL-2B-Instruct --task geometry --profile paper --limit 100\n\n"
    "    mr1 eval --rescore <SAVED_COMPLETIONS.json> --task geometry --scoring strict" + PLACEHOLDERS,
)
def evaluate(
    task: Task,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help=f"checkpoint folder, finished run directory, hub id, tiny, or a tiny base: {', '.join(TINY_BASE_NAMES)}"
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            help="a profile, as for mr1 train (default: a run directory's own profile, else tiny)",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            help="which data set of the profile to evaluate on: test, heldout, validation (for choosing settings) or train"
        ),
    ] = "test",
    limit: Annotated[int, typer.Option(help="evaluate on the first N examples (0 = all)")] = 0,
    output: Annotated[
        Path | None,
        typer.Option(
            help="folder for predictions.jsonl and metrics.json (--rescore default: a new "
            "./results/eval/<log>-rescored-<task> folder; an existing result is never overwritten)"
        ),
    ] = None,
    rescore: Annotated[
        Path | None, typer.Option(help="re-score saved completions (jsonl or json list) without a model")
    ] = None,
    scoring: Annotated[
        str | None, typer.Option(help="headline scoring mode: r1v or strict (both are always saved)")
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            help="also sample K completions per example at the RL settings (rl.temperature, rl.top_p, "
            "rl.top_k): mean sampled accuracy, pass@k (unbiased estimator, k = 1, 2, 4, … K) and majority@K"
        ),
    ] = 0,
    sample_seed: Annotated[int, typer.Option(help="seed of the --samples draws")] = 0,
    overrides: EvalOverrides = None,
) -> None:
    """Evaluate a checkpoint on a test set, or re-score saved completions."""
    from mr1cli.core.sampled_stats import Sampling
    from mr1cli.runs.eval import run_eval_command

    _at_least(limit, 0, "--limit", "(0 = all examples)")
    _at_least(samples, 0, "--samples", "(0 = greedy only)")
    if rescore is not None:
        input_file(rescore, "--rescore")
    if output is not None:
        output_dir(output, "--output")

    log_to_console(console)
    run_eval_command(
        task=task,
        checkpoint=checkpoint,
        profile=profile,
        split=split,
        limit=limit,
        output=output,
        rescore=rescore,
        scoring=scoring,
        overrides=list(overrides or []),
        sampling=Sampling(k=samples, seed=sample_seed),
    )


@app.command(
    epilog="Examples:\n\n"
    "    mr1 reproduce all                       # the embedded tiny profile, CPU, offline\n\n"
    "    mr1 reproduce exp1-format-reward --seeds 3\n\n"
    "    mr1 reproduce exp3-same-task --profile paper --jobs 4 --gpus-per-run 2\n\n"
    "    mr1 reproduce exp3-same-task --profile paper --engine trl --gpus-per-run 8   # TRL's GRPOTrainer\n\n"
    "    mr1 reproduce all --profile paper --launcher slurm --slurm partition=gpu --slurm time=4:00:00\n\n"
    "    mr1 reproduce all --profile tiny-long --results results/tiny-long   # from the long tiny base"
)
def reproduce(
    experiment: Annotated[
        str, typer.Argument(help="exp1-format-reward, exp2-cross-task, exp3-same-task or all")
    ],
    profile: Profile = "tiny",
    seeds: Annotated[
        int | None,
        typer.Option(help="seeds per configuration, at least 1 (default: the profile's)", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="show the planned grid and what is already done, run nothing")
    ] = False,
    jobs: grid.Jobs = 1,
    gpus_per_run: grid.GpusPerRun = None,
    distributed: grid.Distributed = "fsdp2",
    launcher: grid.Launcher = "local",
    slurm: grid.Slurm = None,
    detach: grid.Detach = False,
    engine: grid.Engine = "",
    results: Annotated[
        Path,
        typer.Option(help="folder for the tables, figures and summary.md (one profile's results per folder)"),
    ] = Path("results"),
) -> None:
    """Run one of the paper's experiments (or all): train the grid, evaluate, write tables and figures."""
    from mr1cli.experiments.reproduce import reproduce as run_reproduce

    if seeds is not None:
        _at_least(seeds, 1, "--seeds", "(omit it for the profile's default)")
    log_to_console(console)
    options = grid.launch_options(jobs, gpus_per_run, distributed, detach, slurm)
    run_reproduce(
        experiment,
        profile=profile,
        seeds=seeds or 0,
        dry_run=dry_run,
        results_root=results,
        launcher=launcher,
        options=options,
        engine=engine,
    )


app.command(epilog="Example:\n\n    mr1 status exp3-same-task --profile tiny")(grid.status)


@app.command(epilog="Example:\n\n    mr1 figures --results results")
def figures(
    results: Annotated[Path, typer.Option(help="results folder written by `mr1 reproduce`")] = Path(
        "results"
    ),
) -> None:
    """Redraw every table and figure from saved results only (no training)."""
    from mr1cli.reporting.figures import make_all

    written = make_all(input_dir(results, "--results"))
    console.print(f"wrote {len(written)} tables and figures under {results}")


@app.command(
    name="config",
    epilog="Examples:\n\n"
    "    mr1 config                                      # grpo-d on counting, tiny profile\n\n"
    "    mr1 config --method sft --task geometry --profile paper\n\n"
    "    mr1 config --method grpo --task counting rl.kl.beta=0.02   # see what an override changes",
)
def config_keys(
    method: Annotated[str, typer.Option(help="sft, grpo or grpo-d")] = "grpo-d",
    task: Annotated[str, typer.Option(help=TASK_HELP)] = "counting",
    profile: Profile = "tiny",
    config: Annotated[Path | None, typer.Option(help="YAML file layered over the profile")] = None,
    overrides: Overrides = None,
) -> None:
    """List every config key: resolved value, default, the layer that set it, and its help."""
    from mr1cli.cli.config_keys import config_listing

    if config is not None:
        input_file(config, "--config")
    typer.echo(
        config_listing(
            method=method, task=task, profile=profile, config_file=config, overrides=overrides or []
        )
    )


@app.command(
    epilog="Examples:\n\n    mr1 plan --method grpo-d --task counting --profile paper --gpu h100-80gb --gpus 8\n\n"
    "    mr1 plan --method grpo-d --task counting --gpu a100-40gb --gpus 8 --fsdp\n\n"
    "    mr1 plan --method grpo-d --task geometry --gpu rtx4090 model.lora.enabled=true"
)
def plan(
    method: Annotated[str, typer.Option(help="sft, grpo or grpo-d")],
    task: Task,
    profile: Profile = "paper",
    gpu: Annotated[
        str | None, typer.Option(help="h100-80gb, a100-80gb, rtx4090… (default: detected)")
    ] = None,
    gpus: Annotated[int, typer.Option(help="GPUs the run uses (0 = the detected count, else 1)")] = 0,
    fsdp: Annotated[
        bool,
        typer.Option(
            "--fsdp",
            help="the run is sharded with FSDP2 over its GPUs (--distributed fsdp2, "
            "experiments/accelerate/fsdp2.yaml); without it: one GPU or DDP",
        ),
    ] = False,
    zero: Annotated[str | None, typer.Option(hidden=True)] = None,
    overrides: Overrides = None,
) -> None:
    """Estimate peak GPU memory and time per step, term by term; say whether it fits and what would."""
    from mr1cli.planning.command import plan_command

    if zero is not None:
        raise ConfigError("--zero: ZeRO was removed: use --fsdp (FSDP2)")
    Console().print(plan_command(method, task, profile, gpu, gpus, fsdp, list(overrides or [])))


@app.command(
    epilog="Example:\n\n    mr1 export --checkpoint <RUN_DIR>/final --out <FOLDER> --merge" + PLACEHOLDERS
)
def export(
    checkpoint: Annotated[str, typer.Option(help="checkpoint folder (LoRA adapters or full weights)")],
    out: Annotated[Path, typer.Option(help="new folder for the standalone checkpoint")],
    merge: Annotated[bool, typer.Option(help="fold LoRA adapters into the weights")] = False,
) -> None:
    """Write a checkpoint that loads without mr1 or peft (LoRA adapters merged into the weights)."""
    from mr1cli.models.export import export_checkpoint

    console.print(f"wrote {export_checkpoint(checkpoint, output_dir(out, '--out'), merge=merge)}")


app.command(name="base", epilog=BASE_EPILOG)(base)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user mistakes become one line on stderr and a non-zero exit."""
    try:
        code = app(args=argv, standalone_mode=False)
    except Mr1Error as error:
        console.print(f"[bold red]{error.label}:[/] " + escape(str(error)), highlight=False, soft_wrap=True)
        return error.exit_code
    except OSError as error:  # a path that cannot be read or written, whichever option named it
        if error.filename is None:
            raise
        console.print(
            f"[bold red]error:[/] {escape(str(error.filename))}: {escape(error.strerror or str(error))}",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        return 130
    except ClickException as error:  # usage errors: unknown option, missing argument
        error.show()
        return error.exit_code
    if code == 130:  # typer turns a Ctrl-C that no command handled into exit code 130, silently
        console.print("interrupted: stopped by Ctrl-C", highlight=False)
    return code if isinstance(code, int) else 0
