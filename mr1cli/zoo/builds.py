"""Model names the profiles use: `tiny` (freshly built) and the tiny bases (tiny, warmed up):
`tiny-base` (the tiny profile's), `tiny-base-long` (the tiny-long profile's, 8× the warm-up) and
`tiny-base-longer` (16× the warm-up).

Resolving a name that is already built imports no torch (`mr1 status` resolves the base model);
the builders import it when they build.

Anything else is passed through as a hub id or a local folder. Training never resolves names
itself: its callers (the CLI, `reproduce`, the bench) pass it the folder this module returns. Both
tiny models are built once into the per-user cache (MR1_CACHE, default ~/.cache/mr1, see
data/cache.py) and reused; a folder is only used once it is complete (each build writes
atomically), and concurrent jobs wait for one build under a lock.

A tiny base is built from its recipe, the SFT warm-up profile of the same name
(`experiments/profiles/<name>.yaml`), in pinned processes (`base_build.py`) so that every machine
gets the same weights; their sha256 is checked against `experiments/profiles/<name>.expected.json`
whenever the base is used, and a mismatch is said once, loudly. `mr1 base [NAME] --rebuild`
rebuilds one on request.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mr1cli.config import PROFILES_DIR, TINY_BASE_NAMES, UNSCORED_TRAIN_KEYS, RunConfig
from mr1cli.config_loading import load_config
from mr1cli.core.registry import Registry
from mr1cli.data.cache import build_lock, default_cache_dir
from mr1cli.data.sources import load_split
from mr1cli.tasks import TASKS, get_task
from mr1cli.training.run_dir import RunDir
from mr1cli.zoo.base_build import PINNED_ENV, launch_build

logger = logging.getLogger(__name__)

TINY_VERSION = "2"


@dataclass(frozen=True)
class NamedModel:
    """A model this module builds into the cache on first use: `build` builds it once and returns its
    folder; `folder` says where it is or will be without building (None: known only once built)."""

    build: Callable[[RunConfig | None], Path]
    folder: Callable[[RunConfig | None], Path | None] = lambda cfg: None


NAMED_MODELS: Registry[NamedModel] = Registry("built-in model")


def resolve_model(name: str, cfg: RunConfig | None = None) -> str:
    """The checkpoint folder a model name stands for (built on first use); other names pass through.
    Read-only commands (`mr1 status`, a dry run) use `model_folder`, which never builds or waits on
    another process's build lock."""
    if name in NAMED_MODELS:
        return str(NAMED_MODELS.get(name).build(cfg))
    return name


def model_folder(name: str, cfg: RunConfig | None = None) -> tuple[str | None, bool]:
    """Where a model name's checkpoint is or will be, and whether it is there, building nothing
    (a dry run, `mr1 status`): other names pass through as present; None where it is known only once
    built."""
    if name not in NAMED_MODELS:
        return name, True
    folder = NAMED_MODELS.get(name).folder(cfg)
    return (str(folder), (folder / "config.json").is_file()) if folder is not None else (None, False)


def tiny_tasks() -> list[str]:
    """The registered tasks the tiny tokenizer and the tiny base are built from."""
    return [name for name in TASKS.names() if get_task(name).in_tiny_base]


def _image_size(cfg: RunConfig | None) -> int:
    return cfg.data.synthetic_image_size if cfg is not None else 112


def _corpus(image_size: int) -> list[str]:
    """Text the tiny tokenizer is trained on: questions, traces and answers of every synthetic split."""
    texts: list[str] = []
    for task in tiny_tasks():
        for split, n in (("warmup", 300), ("test", 100)):
            loaded = load_split(f"synthetic:{task}-{split}-{n}", task=task, synthetic_image_size=image_size)
            for ex in loaded.examples:
                texts += [
                    ex.question,
                    ex.thinking,
                    f"<think> {ex.thinking} </think><answer> {ex.truth} </answer>",
                ]
    return texts


def tiny_model_dir(image_size: int = 112) -> Path:
    return default_cache_dir() / "models" / f"tiny-v{TINY_VERSION}-{image_size}px"


def ensure_tiny_model(image_size: int = 112) -> Path:
    from mr1cli.zoo.tiny import build_tiny_model  # torch: only when a model is built

    path = tiny_model_dir(image_size)
    if (path / "config.json").is_file():
        return path
    with build_lock(path.name):
        if not (path / "config.json").is_file():
            logger.info("building the tiny model once into %s (under a minute; later runs reuse it)", path)
            build_tiny_model(
                path, corpus=_corpus(image_size), seed=0, image_size=image_size, overwrite=path.exists()
            )
    return path


# The tiny bases, each with the SFT warm-up profile it is built from (experiments/profiles/<name>.yaml),
# and each registered below as a model name (`model.name_or_path: tiny-base-long`).
TINY_BASES: Registry[str] = Registry("tiny base")
for _base in TINY_BASE_NAMES:
    TINY_BASES.add(_base, _base)


def tiny_base_configs(overrides: tuple[str, ...] = (), base: str = "tiny-base") -> dict[str, RunConfig]:
    """A tiny base's warm-up config for every tiny task (`{task}` in an override names the task)."""
    return {
        task: load_config(
            method="sft",
            task=task,
            profile=TINY_BASES.get(base),
            overrides=[o.replace("{task}", task) for o in overrides],
        )
        for task in tiny_tasks()
    }


# Only what the SFT warm-up reads enters the base's cache key, so that a config key added for
# RL, evaluation or probing does not rebuild the base (5–22 min on 2 cores). The warm-up is SFT, which
# always runs on mr1's engine, so train.engine is left out too.
_WARMUP_DATA_KEYS = ("warmup", "synthetic_seed", "synthetic_image_size")
_WARMUP_TRAIN_SKIP = (*UNSCORED_TRAIN_KEYS, "eval_every", "probe_every", "engine")


def warmup_key(cfg: RunConfig) -> dict:
    """The fields of a tiny-base config that change the warmed-up weights."""
    content = cfg.to_dict()
    return {
        "model": content["model"],
        "data": {k: content["data"][k] for k in _WARMUP_DATA_KEYS},
        "train": {k: v for k, v in content["train"].items() if k not in _WARMUP_TRAIN_SKIP},
        "sft": content["sft"],
    }


def tiny_base_dir(base: str = "tiny-base") -> Path:
    """The cache folder of a tiny base: its name and a hash of what its warm-up reads."""
    configs = tiny_base_configs(base=base)
    key = json.dumps({t: warmup_key(c) for t, c in configs.items()} | {"v": TINY_VERSION}, sort_keys=True)
    return default_cache_dir() / "models" / f"{base}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def recorded_build_seconds(name: str) -> float | None:
    """How long the build of a tiny base took when its hash was recorded (None: not a tiny base, or
    no time recorded)."""
    return _expected_record(name).get("build_seconds") if name in TINY_BASES else None


def _build_time(base: str) -> str:
    """How long a build took when its hash was recorded, for the log line before a build."""
    seconds = recorded_build_seconds(base)
    return f"about {round(seconds / 60)} min on 2 cores when recorded" if seconds else "minutes to hours"


def ensure_tiny_base(base: str = "tiny-base") -> Path:
    """The tiny model warmed up on every tiny task's warm-up split (one SFT run), built once; final/."""
    run_dir = tiny_base_dir(base)
    if not RunDir(run_dir).is_done():
        with build_lock(run_dir.name):
            if not RunDir(run_dir).is_done():  # another job may have built it while we waited
                logger.info(
                    "building the tiny base %s once into %s (%s; progress and ETA below); later runs "
                    "reuse it",
                    base,
                    run_dir,
                    _build_time(base),
                )
                _launch_build(run_dir, base)
    check_tiny_base(run_dir / "final")
    return run_dir / "final"


def _launch_build(run_dir: Path, base: str) -> Path:
    configs = tiny_base_configs(base=base)
    first = next(iter(configs.values()))
    return launch_build(run_dir, configs, resolve_model(first.model.name_or_path, first))


def rebuild_tiny_base(base: str = "tiny-base") -> Path:
    """Delete the cached tiny base of today's config and build it again (`mr1 base --rebuild`)."""
    run_dir = tiny_base_dir(base)
    with build_lock(run_dir.name):
        shutil.rmtree(run_dir, ignore_errors=True)
        _launch_build(run_dir, base)
    check_tiny_base.cache_clear()
    check_tiny_base(run_dir / "final")
    return run_dir / "final"


EXPECTED_DIR = PROFILES_DIR
WEIGHTS = "model.safetensors"


def expected_file(base: str) -> Path:
    return EXPECTED_DIR / f"{base}.expected.json"


def _expected_record(base: str) -> dict:
    path = expected_file(base)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def base_of(cache_key: str) -> str:
    """The tiny base a cache folder holds.

    >>> base_of("tiny-base-7127f5f818f3"), base_of("tiny-base-long-0123456789ab")
    ('tiny-base', 'tiny-base-long')
    """
    return cache_key.rsplit("-", 1)[0]


def weights_sha256(final: Path) -> str:
    digest = hashlib.sha256()
    with (final / WEIGHTS).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_sha256(cache_key: str) -> str | None:
    """The recorded sha256 of the base in the cache folder `cache_key` (None: none recorded for
    today's config of that base)."""
    record = _expected_record(base_of(cache_key))
    return record["sha256"] if record.get("cache_key") == cache_key else None


@functools.cache
def check_tiny_base(final: Path) -> bool | None:
    """Whether the built base's weights are the recorded ones (None: no hash recorded for this config).
    A mismatch is one warning per process, naming both hashes and what it means."""
    expected = expected_sha256(final.parent.name)
    if expected is None:
        logger.info("no expected hash is recorded for %s (a changed tiny-base config); not checked", final)
        return None
    found = weights_sha256(final)
    if found != expected:
        base = base_of(final.parent.name)
        logger.warning(
            "the tiny base in %s is not the recorded one: its weights' sha256 is %s, expected %s (%s). "
            "It was built with other library versions or on a CPU without AVX2, or changed since, so "
            "results from it will not match the committed results/; `mr1 base %s --rebuild` builds it "
            "again",
            final,
            found,
            expected,
            expected_file(base).name,
            base,
        )
    return found == expected


def record_expected(final: Path, build_seconds: float | None = None) -> Path:
    """Write the expected-hash file of the base in `final` (maintainers, after changing its recipe)."""
    import torch
    import transformers

    record = {
        "cache_key": final.parent.name,
        "sha256": weights_sha256(final),
        "file": WEIGHTS,
        "command": f"mr1 base {base_of(final.parent.name)} --rebuild --record",
        "built_with": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "env": PINNED_ENV,
        },
        "build_seconds": build_seconds,
    }
    path = expected_file(base_of(final.parent.name))
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    check_tiny_base.cache_clear()
    return path


NAMED_MODELS.add(
    "tiny",
    NamedModel(lambda cfg: ensure_tiny_model(_image_size(cfg)), lambda cfg: tiny_model_dir(_image_size(cfg))),
)
for _base in TINY_BASES:
    NAMED_MODELS.add(
        _base,
        NamedModel(
            lambda cfg, base=_base: ensure_tiny_base(base),
            lambda cfg, base=_base: tiny_base_dir(base) / "final",
        ),
    )


def _paper_shaped(cfg: RunConfig | None) -> Path:
    from mr1cli.zoo.paper_shaped import ensure_paper_shaped_model

    return ensure_paper_shaped_model(default_cache_dir() / "models", ensure_tiny_model())


NAMED_MODELS.add("paper-shaped", NamedModel(_paper_shaped))
