"""Evaluation: batched greedy generation (and, with `Sampling(k=K)`, K sampled completions per
example: `mr1 eval --samples K`) → per-example scoring in both modes → summary.

Also re-scores saved completions without a model (`mr1 eval --rescore`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.core.errors import DataError
from mr1cli.core.task import SCORING_MODES
from mr1cli.data.example import Example
from mr1cli.evaluation.provenance import row_fields
from mr1cli.evaluation.sampled import Sampling, draw_samples, score_samples
from mr1cli.files import atomic_write_text
from mr1cli.models.batching import Decoding, chat_prompt, encode_prompts, generate
from mr1cli.models.precision import model_precision
from mr1cli.tasks import get_task


@dataclass(frozen=True)
class EvalResult:
    predictions: list[dict[str, Any]]
    summary: dict[str, Any]


def score_rows(rows: Sequence[dict[str, Any]], task_name: str, scoring: str) -> EvalResult:
    """Score rows holding `completion` and `truth`; adds both modes' correctness and format.

    Correctness follows each mode's evaluation scorer (r1v: R1-V's evaluation scripts); the format
    check is the mode's format reward (r1v: R1-V's fullmatch). `correct`/`format`: the headline mode's.
    """
    task = get_task(task_name)
    predictions = []
    for row in rows:
        completion, truth = row["completion"], row["truth"]
        scored = {
            **row,
            "extracted_answer": task.extract_answer(completion, scoring),
            **{f"correct_{mode}": task.is_correct(completion, truth, mode) for mode in SCORING_MODES},
            **{f"format_{mode}": bool(SCORING_MODES.get(mode).format(completion)) for mode in SCORING_MODES},
        }
        scored["correct"] = scored[f"correct_{scoring}"]
        scored["format"] = scored[f"format_{scoring}"]
        predictions.append(scored)
    sampled = score_samples(predictions, task_name, scoring)
    return EvalResult(predictions, {**summarize(predictions, task_name, scoring), **sampled})


def summarize(predictions: Sequence[dict[str, Any]], task_name: str, scoring: str) -> dict[str, Any]:
    """Accuracy (headline mode and both modes), format rate, mean completion length.

    >>> summarize([{"correct_r1v": True, "correct_strict": False, "format": True, "length": 4}], "counting", "r1v")["accuracy"]
    100.0
    """
    n = len(predictions)

    def percent(key: str) -> float:
        return round(100.0 * sum(bool(p[key]) for p in predictions) / n, 4) if n else 0.0

    lengths = [p["length"] for p in predictions if p.get("length") is not None]
    return {
        "task": task_name,
        "n": n,
        "scoring": scoring,
        "correct": sum(bool(p[f"correct_{scoring}"]) for p in predictions),
        "accuracy": percent(f"correct_{scoring}"),
        **{f"accuracy_{mode}": percent(f"correct_{mode}") for mode in SCORING_MODES},
        "format_rate": percent("format"),
        "mean_length": round(sum(lengths) / len(lengths), 2) if lengths else None,
    }


def evaluate_model(
    model: Any,
    processor: Any,
    examples: Sequence[Example],
    cfg: RunConfig,
    *,
    task_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    sampling: Sampling = Sampling(),
) -> EvalResult:
    """Greedy answers for every example (and `sampling.k` sampled ones), scored as the config's
    `eval` section says, on `cfg.task` or on `task_name` (cross-task evaluation); the model computes
    in `model.dtype` (autocast)."""
    task_name = task_name or cfg.task
    task = get_task(task_name)
    max_new_tokens = cfg.eval.max_new_tokens or task.eval_max_new_tokens
    batch_size = cfg.eval.batch_size
    pixels = {"max_pixels": cfg.model.max_pixels, "min_pixels": cfg.model.min_pixels}
    precision = model_precision(
        cfg.model.dtype, model
    )  # the training policy's float32 weights run in bf16 too
    rows: list[dict[str, Any]] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        prompts = [chat_prompt(processor, task.eval_prompt(ex.question)) for ex in chunk]
        images = [ex.load_image(**pixels) for ex in chunk]
        batch = encode_prompts(processor, prompts, images)
        with precision.autocast():
            completions = generate(
                model, processor, batch, Decoding(max_new_tokens=max_new_tokens, do_sample=False)
            )
            k = sampling.k
            sampled = (
                draw_samples(
                    model, processor, batch, cfg, sampling, max_new_tokens=max_new_tokens, first_example=start
                )
                if k
                else []
            )
        for i, (example, tokens) in enumerate(zip(chunk, completions, strict=True)):
            row = {
                "id": example.id,
                "question": example.question,
                "completion": processor.tokenizer.decode(tokens, skip_special_tokens=True),
                "truth": example.truth,
                "length": len(tokens),
            }
            if k:
                mine = sampled[i * k : (i + 1) * k]
                row["samples"] = [processor.tokenizer.decode(t, skip_special_tokens=True) for t in mine]
            rows.append(row)
        if progress is not None:
            progress(len(chunk))
    return score_rows(rows, task_name, cfg.eval.scoring)


def read_saved_completions(path: Path, task_name: str) -> list[dict[str, Any]]:
    """Rows of a saved evaluation log (jsonl, or a json list, or R1-V's {"results": [...]})."""
    task = get_task(task_name)
    try:
        text = path.read_text()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        if path.suffix == ".jsonl":
            raw = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            loaded = json.loads(text)
            raw = loaded.get("results", loaded) if isinstance(loaded, dict) else loaded
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a list of rows")
    rows = []
    for number, row in enumerate(raw, start=1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {number}: expected an object")
        completion = row.get("completion", row.get("model_output"))
        if not isinstance(completion, str):
            raise DataError(
                f"{path}: row {number}: field 'completion' (or 'model_output'): missing or not text"
            )
        truth_raw = row.get("ground_truth", row.get("truth"))
        try:
            truth = task.parse_truth(truth_raw)
        except ValueError as error:
            raise DataError(f"{path}: row {number}: field 'ground_truth': {error}") from None
        question = row.get("question", "")
        if isinstance(question, dict):  # R1-V's logs keep the whole test row under "question"
            question = question.get("question", "")
        rows.append(
            {
                "id": str(row.get("id", number)),
                "question": question,
                "completion": completion,
                "truth": truth,
            }
        )
    return rows


def write_eval_outputs(
    result: EvalResult, out_dir: Path, provenance: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """predictions.jsonl and metrics.json; `provenance` goes into metrics.json, its key fields on every row."""
    predictions = out_dir / "predictions.jsonl"
    metrics = out_dir / "metrics.json"
    extra = row_fields(provenance) if provenance else {}
    summary = {**result.summary, "provenance": provenance} if provenance else result.summary
    metrics.unlink(missing_ok=True)  # metrics.json marks a finished evaluation: it goes first, comes last
    try:
        atomic_write_text(
            predictions,
            "".join(json.dumps({**p, **extra}, ensure_ascii=False) + "\n" for p in result.predictions),
        )
        atomic_write_text(metrics, json.dumps(summary, indent=1))
    except BaseException:  # a full disk or Ctrl-C: leave nothing that looks like a result
        predictions.unlink(missing_ok=True)
        raise
    return predictions, metrics
