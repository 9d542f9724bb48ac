"""What an evaluation was run on: the checkpoint, the test set and its hash, the scoring settings.

Recorded in metrics.json (`provenance`) and on every row of predictions.jsonl, and used to name
the output folder, so that an evaluation on another test set never overwrites an earlier one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.core.sampled_stats import Sampling
from mr1cli.data.example import Example


def sampling_settings(cfg: RunConfig, sampling: Sampling) -> dict[str, Any]:
    """What the sampled completions depend on (recorded in the provenance and the folder name)."""
    rl = cfg.rl
    return {
        "samples": sampling.k,
        "temperature": rl.temperature,
        "top_p": rl.top_p,
        "top_k": rl.top_k,
        "sampler": rl.sampler,
        "seed": sampling.seed,
    }


def examples_hash(examples: Sequence[Example]) -> str:
    """A hash of the examples' ids, questions, answers and image contents: the test set's identity,
    the same wherever the files live (a synthetic set in another $MR1_CACHE hashes alike).

    >>> len(examples_hash([]))
    16
    """
    digest = hashlib.sha256()
    for ex in examples:
        if ex.image.path is None:
            image = hashlib.sha256(ex.image.data or b"").hexdigest()
        elif ex.image.path.is_file():
            image = file_hash(ex.image.path)
        else:  # a missing image fails later, where it is loaded, with the row named
            image = str(ex.image.path)
        digest.update(json.dumps([ex.id, ex.question, ex.truth, image], ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def eval_provenance(
    cfg: RunConfig,
    *,
    checkpoint: str,
    model_folder: str,
    split: str,
    examples: Sequence[Example],
    run_config: Path | None,
    sampling: Sampling = Sampling(),
) -> dict[str, Any]:
    """The record of what was evaluated how; `settings` (what changes the scores) names the folder.
    A sampled evaluation (`--samples K`) adds its sampling settings; a greedy one is named as before."""
    d, m, e = cfg.data, cfg.model, cfg.eval
    sampled = {"sampling": sampling_settings(cfg, sampling)} if sampling.k else {}
    source = getattr(d, split)
    local = Path(model_folder)
    return {
        "checkpoint": checkpoint,
        "checkpoint_path": str(local.resolve()) if local.is_dir() else model_folder,
        "run_config": str(run_config) if run_config is not None else None,
        "profile": cfg.profile,
        "task": cfg.task,
        "split": split,
        "test_source": source,
        "test_hash": examples_hash(examples),
        "test_examples": len(examples),
        "test_limit": {"test": d.test_limit, "train": d.train_limit}.get(split, 0),
        "synthetic": {"seed": d.synthetic_seed, "image_size": d.synthetic_image_size}
        if source.startswith("synthetic:")
        else None,
        "settings": {
            "scoring": e.scoring,
            "max_new_tokens": e.max_new_tokens,
            "batch_size": e.batch_size,
            "min_pixels": m.min_pixels,
            "max_pixels": m.max_pixels,
            "decoding": "greedy",
            **sampled,
        },
    }


def output_folder_name(provenance: dict[str, Any]) -> str:
    """`<task>-<split>-<8 hex>`: the hex names the test set and the settings that change the scores."""
    key = json.dumps([provenance["test_hash"], provenance["settings"]], sort_keys=True)
    return f"{provenance['task']}-{provenance['split']}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def row_fields(provenance: dict[str, Any]) -> dict[str, Any]:
    """The few provenance fields repeated on every predictions.jsonl row."""
    keys = ("checkpoint", "test_source", "test_hash", "rescored_file", "rescored_sha256")
    return {key: provenance[key] for key in keys if key in provenance}


def find_run_config(checkpoint: str) -> Path | None:
    """The run's config.json for a run directory, its final/ or one of its checkpoints/step-N."""
    path = Path(checkpoint)
    folders = [path]
    folders += [path.parent] if path.name == "final" else []
    folders += [path.parent.parent] if path.parent.name == "checkpoints" else []
    for folder in folders:
        candidate = folder / "config.json"
        if candidate.is_file() and (folder / "env.json").is_file():
            return candidate
    return None
