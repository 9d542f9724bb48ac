"""`mr1 eval`: evaluate a checkpoint on a task's test set, or re-score saved completions."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from mr1cli.config import RunConfig
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.evaluation.evaluate import (
    EvalResult,
    evaluate_model,
    read_saved_completions,
    score_rows,
    write_eval_outputs,
)

console = Console(stderr=True)


def print_summary(summary: dict, title: str) -> None:
    keys = ("n", "scoring", "accuracy", "accuracy_r1v", "accuracy_strict", "format_rate", "mean_length")
    table = Table(title=title)
    for key in keys:
        table.add_column(key, justify="right")
    table.add_row(*(str(summary.get(key)) for key in keys))
    Console().print(table)


def rescore_file(path: Path, *, task: str, scoring: str, output: Path | None) -> EvalResult:
    rows = read_saved_completions(path, task)
    result = score_rows(rows, task, scoring)
    out_dir = output or path.with_name(f"{path.stem}.rescored-{task}")
    predictions, metrics = write_eval_outputs(result, out_dir)
    print_summary(result.summary, f"re-scored {path.name} ({task}, headline scoring: {scoring})")
    console.print(f"wrote {predictions} and {metrics}")
    return result


def checkpoint_folder(checkpoint: str) -> str:
    """A run directory means its final model; a checkpoint folder or a hub id is used as is."""
    path = Path(checkpoint)
    if (path / "final").is_dir():
        return str(path / "final")
    if (path / "checkpoints").is_dir():
        from mr1cli.training.checkpoints import latest_checkpoint

        latest = latest_checkpoint(path / "checkpoints")
        if latest is not None:
            console.print(f"{path} has not finished; evaluating its latest checkpoint {latest.name}")
            return str(latest)
    return checkpoint


def evaluate_checkpoint(cfg: RunConfig, checkpoint: str, *, split: str, output: Path | None) -> EvalResult:
    from rich.progress import Progress

    from mr1cli.data.for_config import load_examples
    from mr1cli.models.loading import load_for_config
    from mr1cli.zoo.builds import resolve_model

    if split not in ("test", "train"):
        raise ConfigError(f"--split must be test or train, got '{split}'")
    examples = load_examples(cfg, split)
    folder = resolve_model(checkpoint_folder(checkpoint), cfg)
    loaded = load_for_config(folder, cfg.model, trainable=False)
    loaded.model.eval()
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"eval {cfg.task}", total=len(examples))
        result = evaluate_model(
            loaded.model, loaded.processor, examples, cfg, progress=lambda n: progress.advance(bar, n)
        )
    local = Path(folder)
    out_dir = output or (
        (local if local.is_dir() else Path("results") / "eval" / folder.replace("/", "--"))
        / "eval"
        / f"{cfg.task}-{split}"
    )
    predictions, metrics = write_eval_outputs(result, out_dir)
    print_summary(
        result.summary, f"{checkpoint} on {cfg.task} {split} (headline scoring: {cfg.eval.scoring})"
    )
    console.print(f"wrote {predictions} and {metrics}")
    return result


def run_eval_command(
    *,
    task: str,
    checkpoint: str | None,
    profile: str,
    split: str,
    limit: int,
    output: Path | None,
    rescore: Path | None,
    scoring: str | None,
    overrides: list[str],
) -> EvalResult:
    extra = [f"eval.scoring={scoring}"] if scoring else []
    if limit:
        extra.append(f"data.{'test' if split == 'test' else 'train'}_limit={limit}")
    cfg = load_config(method="sft", task=task, profile=profile, overrides=[*extra, *overrides])
    if rescore is not None:
        return rescore_file(rescore, task=task, scoring=cfg.eval.scoring, output=output)
    if checkpoint is None:
        raise ConfigError("pass --checkpoint DIR_OR_HUB_ID (or --rescore FILE to re-score saved completions)")
    return evaluate_checkpoint(cfg, checkpoint, split=split, output=output)
