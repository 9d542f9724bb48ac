"""`mr1 eval`: evaluate a checkpoint on a task's test set, or re-score saved completions."""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mr1cli.config import RunConfig
from mr1cli.config_loading import config_from_dict, load_config
from mr1cli.core.errors import CheckpointError, ConfigError, DataError, Interrupted
from mr1cli.core.registry import did_you_mean
from mr1cli.core.sampled_stats import Sampling
from mr1cli.data.cache import default_cache_dir
from mr1cli.evaluation.provenance import eval_provenance, file_hash, find_run_config, output_folder_name
from mr1cli.zoo.builds import resolve_model

if TYPE_CHECKING:
    from mr1cli.evaluation.evaluate import EvalResult
    from mr1cli.models.loading import LoadedModel
# The modules that load torch are imported in the functions that use them, so that a mistake on the
# command line is reported without loading it.

console = Console(stderr=True)
logger = logging.getLogger(__name__)
EVAL_SPLITS = ("test", "heldout", "validation", "train")


def summary_lines(summary: dict) -> list[str]:
    """The evaluation summary as short `key value` lines (readable at 80 columns); unknowns left out.

    >>> summary_lines({"n": 200, "scoring": "r1v", "correct": 96, "accuracy": 48.0, "accuracy_r1v": 48.0,
    ...                "accuracy_strict": 45.5, "format_rate": 80.0, "mean_length": None})
    ['accuracy         48.0 %  (96 of 200, r1v scoring)', 'accuracy r1v     48.0 %', 'accuracy strict  45.5 %', 'format rate      80.0 %']
    """
    n, correct = summary.get("n"), summary.get("correct")
    count = f"{correct} of {n}, " if correct is not None else f"{n} examples, "
    lines = [f"{'accuracy':<16} {summary['accuracy']:.1f} %  ({count}{summary['scoring']} scoring)"]
    for key in sorted(k for k in summary if k.startswith("accuracy_")):
        lines.append(f"{key.replace('_', ' '):<16} {summary[key]:.1f} %")
    if summary.get("format_rate") is not None:
        lines.append(f"{'format rate':<16} {summary['format_rate']:.1f} %")
    if summary.get("mean_length") is not None:
        lines.append(f"{'mean length':<16} {summary['mean_length']:.1f} tokens")
    return lines + sampled_lines(summary)


def sampled_lines(summary: dict) -> list[str]:
    """The `--samples K` statistics as `key value` lines (none for a greedy-only evaluation).

    >>> sampled_lines({"sampled/k": 4, "sampled/mean_accuracy": 40.0, "sampled/pass@1": 40.0,
    ...                "sampled/pass@4": 80.0, "sampled/majority@4": 45.0, "sampled/format_rate": 99.0})
    ['sampled (k = 4)  mean accuracy 40.0 %, format 99.0 %', '  pass@1         40.0 %', '  pass@4         80.0 %', '  majority@4     45.0 %']
    """
    k = summary.get("sampled/k")
    if not k:
        return []
    lines = [
        f"{f'sampled (k = {k})':<16} mean accuracy {summary['sampled/mean_accuracy']:.1f} %, "
        f"format {summary['sampled/format_rate']:.1f} %"
    ]
    for key in (key for key in summary if key.startswith(("sampled/pass@", "sampled/majority@"))):
        lines.append(f"  {key.removeprefix('sampled/'):<14} {summary[key]:.1f} %")
    return lines


def print_summary(summary: dict, title: str) -> None:
    out = Console()
    out.print(title, soft_wrap=True, markup=False, highlight=False)
    for line in summary_lines(summary):
        out.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)


def print_wrote(*paths: Path) -> None:
    """Each written path on its own line, never wrapped and quoted where the shell needs it (so it
    can be copied whole)."""
    for path in paths:
        console.print(f"wrote {shlex.quote(str(path))}", soft_wrap=True, markup=False, highlight=False)


def fresh_folder(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`, … : the first that does not exist yet or is empty.

    >>> fresh_folder(Path("surely/not/here"))
    PosixPath('surely/not/here')
    """
    candidate, number = path, 1
    while candidate.exists() and any(candidate.iterdir()):
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate


def rescore_file(path: Path, *, task: str, scoring: str, output: Path | None) -> EvalResult:
    """Re-score a saved log into `output`, by default a new ./results/eval/<stem>-rescored-<task>
    folder (never beside the input, which may be read-only; never over an earlier result)."""
    from mr1cli.evaluation.evaluate import read_saved_completions, score_rows, write_eval_outputs

    rows = read_saved_completions(path, task)
    if not rows:
        raise DataError(f"{path}: no completions to score (the file holds no rows)")
    result = score_rows(rows, task, scoring)
    if output is not None and (output / "metrics.json").exists():
        raise ConfigError(
            f"--output {output} already holds an evaluation (metrics.json); choose another folder or remove it"
        )
    out_dir = output or fresh_folder(Path("results") / "eval" / f"{path.stem}-rescored-{task}")
    provenance = {
        "rescored_file": str(path.resolve()),
        "rescored_sha256": file_hash(path),
        "scoring": scoring,
    }
    predictions, metrics = write_eval_outputs(result, out_dir, provenance)
    print_summary(result.summary, f"re-scored {path.name} ({task}, headline scoring: {scoring})")
    print_wrote(predictions, metrics)
    return result


def checkpoint_folder(checkpoint: str) -> str:
    """A finished run directory means its final model; a checkpoint folder or a hub id is used as is.

    An unfinished run is refused: its newest intermediate checkpoint must be named explicitly.
    """
    from mr1cli.training.checkpoints import latest_checkpoint

    path = Path(checkpoint)
    if (path / "final").is_dir():
        return str(path / "final")
    if (path / "config.json").is_file() and (path / "env.json").is_file():  # a run directory
        latest = latest_checkpoint(path / "checkpoints") if (path / "checkpoints").is_dir() else None
        if latest is None:
            raise CheckpointError(f"{path}: the run has not finished and holds no checkpoint to evaluate yet")
        raise CheckpointError(
            f"{path}: the run has not finished; finish it with `mr1 train … --output {shlex.quote(str(path))} "
            f"--resume`, or evaluate its intermediate checkpoint explicitly: --checkpoint {shlex.quote(str(latest))}"
        )
    return checkpoint


def evaluate_checkpoint(
    cfg: RunConfig,
    checkpoint: str,
    *,
    split: str,
    output: Path | None,
    run_config: Path | None = None,
    sampling: Sampling = Sampling(),
) -> EvalResult:
    from mr1cli.data.for_config import load_examples
    from mr1cli.evaluation.evaluate import write_eval_outputs
    from mr1cli.models.loading import load_for_config
    from mr1cli.training.checkpoints import MANIFEST, check_checkpoint

    if split not in EVAL_SPLITS:
        raise ConfigError(f"unknown --split '{split}'{did_you_mean(split, EVAL_SPLITS)}")
    examples = load_examples(cfg, split)
    if not examples:
        raise DataError(f"data.{split} ({getattr(cfg.data, split)}) holds no examples to evaluate")
    folder = resolve_model(checkpoint_folder(checkpoint), cfg)
    if (Path(folder) / MANIFEST).is_file():  # an mr1 checkpoint: every file's sha256, as --resume checks
        check_checkpoint(
            Path(folder),
            lambda older: f"the previous checkpoint verifies: --checkpoint {shlex.quote(str(older))}",
        )
    loaded = load_for_config(folder, cfg.model, trainable=False)
    loaded.model.eval()
    result = _evaluate(loaded, examples, cfg, f"evaluating {checkpoint} on {cfg.task} {split}", sampling)
    provenance = eval_provenance(
        cfg,
        checkpoint=checkpoint,
        model_folder=folder,
        split=split,
        examples=examples,
        run_config=run_config,
        sampling=sampling,
    )
    out_dir = output or default_output(folder, provenance)
    predictions, metrics = write_eval_outputs(result, out_dir, provenance)
    print_summary(
        result.summary, f"{checkpoint} on {cfg.task} {split} (headline scoring: {cfg.eval.scoring})"
    )
    print_wrote(predictions, metrics)
    return result


def _evaluate(
    loaded: LoadedModel, examples: list, cfg: RunConfig, describe: str, sampling: Sampling = Sampling()
) -> EvalResult:
    """Evaluate with a progress bar; Ctrl-C stops at once and says that nothing was written."""
    from rich.progress import Progress

    from mr1cli.evaluation.evaluate import evaluate_model

    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress.advance(bar, n)

    try:
        logger.info("%s: %d examples", describe, len(examples))
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task(f"eval {cfg.task}", total=len(examples))
            return evaluate_model(
                loaded.model, loaded.processor, examples, cfg, progress=advance, sampling=sampling
            )
    except KeyboardInterrupt:
        raise Interrupted(
            f"stopped after {done} of {len(examples)} examples; nothing was written (run the command again)"
        ) from None


def default_output(folder: str, provenance: dict) -> Path:
    """Beside a local checkpoint (`<checkpoint>/eval/…`), except one in the shared model cache (tiny,
    tiny-base) or on the hub: then ./results/eval/<name>/…, as `--rescore` writes."""
    local, cache = Path(folder).resolve(), default_cache_dir().resolve()
    if Path(folder).is_dir() and not local.is_relative_to(cache):
        return Path(folder) / "eval" / output_folder_name(provenance)
    name = str(provenance["checkpoint"])
    if Path(folder).is_dir() and "/" in name:  # a path into the cache: name it from the cache down
        name = str(local.relative_to(cache))
    return Path("results") / "eval" / name.replace("/", "--") / output_folder_name(provenance)


def run_eval_command(
    *,
    task: str,
    checkpoint: str | None,
    profile: str | None,
    split: str,
    limit: int,
    output: Path | None,
    rescore: Path | None,
    scoring: str | None,
    overrides: list[str],
    sampling: Sampling = Sampling(),
) -> EvalResult:
    extra = [f"eval.scoring={scoring}"] if scoring else []
    if sampling.k and rescore is not None:
        raise ConfigError("--samples draws new completions from a model; it does not combine with --rescore")
    if limit and split in ("heldout", "validation"):
        raise ConfigError(f"--limit works with --split test or train; the {split} set is evaluated whole")
    if limit:
        extra.append(f"data.{'test' if split == 'test' else 'train'}_limit={limit}")
    run_config = find_run_config(checkpoint) if checkpoint and rescore is None else None
    if run_config is not None:
        checkpoint_folder(checkpoint)  # an unfinished run is refused before anything else is said
        if Path(checkpoint).parent.name == "checkpoints":
            console.print(f"evaluating the intermediate checkpoint {checkpoint}", soft_wrap=True)
    layers: list[dict] = []
    if run_config is not None and profile is None:
        run_cfg = config_from_dict(json.loads(run_config.read_text()))
        profile = run_cfg.profile or "tiny"
        layers = [{"model": asdict(run_cfg.model)}]
        if run_cfg.task == task:
            layers.append({"data": asdict(run_cfg.data), "eval": asdict(run_cfg.eval)})
        console.print(
            f"using the run's own config {run_config} (profile {profile}; --profile to choose another)",
            soft_wrap=True,
        )
    cfg = load_config(
        method="sft",
        task=task,
        profile=profile or "tiny",
        overrides=[*extra, *overrides],
        extra_layers=layers,
    )
    if rescore is not None:
        return rescore_file(rescore, task=task, scoring=cfg.eval.scoring, output=output)
    if checkpoint is None:
        raise ConfigError("pass --checkpoint DIR_OR_HUB_ID (or --rescore FILE to re-score saved completions)")
    return evaluate_checkpoint(
        cfg, checkpoint, split=split, output=output, run_config=run_config, sampling=sampling
    )
