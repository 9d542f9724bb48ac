"""`load_split`: a local file or folder, a Hugging Face dataset id, or a synthetic set → Examples.

Sources:
- a local path: a `.parquet` file or a folder of them (searched recursively), a `.jsonl` file, a
  `.json` file holding a list of rows, a `datasets.save_to_disk` folder, an `imagefolder`
  (`metadata.jsonl` whose `file_name` names each image), or a folder holding one `.jsonl`/`.json`;
  `path:split` picks a split of a saved DatasetDict, the `split/` subfolder or the shards of that
  split (`data/split-00000-of-00002.parquet`); a folder of shards of several splits defaults to `train`;
- a Hugging Face dataset id such as `leonardPKU/clevr_cogen_a_train`, optionally `id:split`
  (default `train`), read from the local Hugging Face cache;
- `synthetic:<task>-<split>[-<n>]`, e.g. `synthetic:counting-test-200`, generated once into the cache.

Any source may end in a row range, `[start:stop]` (0-based, stop excluded, as in Python):
`synthetic:counting-heldout-2000[1000:2000]` keeps the examples 1,001-2,000 (`data/row_range.py`).

Rows are numbered from 1 in every error message (a jsonl row number is its line number).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mr1cli.core.errors import ConfigError, DataError
from mr1cli.data.adapters import WHOLE_ROW, RowError, RowOrigin, detect_schema, image_column, row_to_example
from mr1cli.data.cache import default_cache_dir
from mr1cli.data.example import Example
from mr1cli.data.json_rows import Row, json_rows
from mr1cli.data.row_range import rows_to_read, split_row_range
from mr1cli.hub import hub_host, hub_usable, probe_failed
from mr1cli.tasks import get_task

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

MAX_REASONS = 5
SYNTHETIC_DEFAULT_N = {"train": 2000, "warmup": 2000, "heldout": 1000, "test": 1000}
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?::[\w.-]+)?$")
_DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".arrow", ".csv")
KNOWN_SPLITS = ("train", "test", "validation", "valid", "val", "dev", "eval")
_SYNTHETIC = re.compile(r"^(?P<task>[a-z]+)-(?P<split>[a-z]+)(?:-(?P<n>\d+))?$")


@dataclass(frozen=True)
class LoadedSplit:
    """The examples of one source, with what was skipped (only when loaded with `skip_bad`)."""

    examples: list[Example]
    skipped: int
    skipped_reasons: list[str]  # the first few DataError messages of the skipped rows
    source: str
    path: Path | None  # the local file or folder read; None for a Hugging Face id
    origins: list[RowOrigin] = field(default_factory=list)  # file and row of each example, in order
    truth_kinds: dict[str, int] = field(default_factory=dict)  # Task.truth_kind → examples


@dataclass(frozen=True)
class Table:
    """One readable unit of rows: a file, a saved dataset or a Hub split."""

    name: str  # for messages: the file path or `id:split`
    stem: str  # for default ids: `<stem>-<row>`
    columns: list[str]
    rows: Iterator[Row]
    image_root: Path


def load_split(
    source: str,
    *,
    task: str,
    image_root: Path | None = None,
    skip_bad: bool = False,
    limit: int | None = None,
    cache_dir: Path | None = None,
    synthetic_seed: int = 0,
    synthetic_image_size: int = 112,
) -> LoadedSplit:
    """Load and validate every row of `source` as an Example of `task` (see the module docstring).

    A bad row raises DataError naming file, row and field; with `skip_bad` it is skipped and counted.
    A missing column is a schema error and raises even with `skip_bad`. `limit` keeps the first
    `limit` good examples. Image paths are resolved by `adapters.resolve_image_path` under
    `image_root` (default: the folder of the data file).
    """
    task_obj = get_task(task)
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    named, (source, rows) = source, split_row_range(source)
    limit = rows_to_read(rows, limit)
    if source.startswith("synthetic:"):
        path = _synthetic_file(
            source, task, cache_dir or default_cache_dir(), synthetic_seed, synthetic_image_size
        )
        tables, local = _local_tables(path, None, image_root), path
    else:
        local, split = _split_local(source)
        tables = (
            _local_tables(local, split, image_root) if local is not None else _hub_tables(source, image_root)
        )

    examples: list[Example] = []
    origins: list[RowOrigin] = []
    reasons: list[str] = []
    skipped = 0
    for table in tables:
        schema = detect_schema(table.columns, table.name)
        image_field = image_column(schema, table.columns) or schema.image[0]
        for row_no, row in table.rows:
            origin = RowOrigin(table.name, row_no, image_field)
            try:
                if isinstance(row, RowError):
                    raise origin.error(row.field, row.what)
                example = row_to_example(
                    row,
                    schema=schema,
                    task=task_obj,
                    origin=origin,
                    image_root=table.image_root,
                    default_id=f"{table.stem}-{row_no}",
                )
            except DataError as exc:
                if not skip_bad:
                    raise
                skipped += 1
                if len(reasons) < MAX_REASONS:
                    reasons.append(str(exc))
                continue
            examples.append(example)
            origins.append(origin)
            if limit is not None and len(examples) >= limit:
                break
        if limit is not None and len(examples) >= limit:
            break
    if rows is not None:
        if len(examples) <= rows.start:
            raise DataError(f"{named}: the range starts past the source's {len(examples)} usable examples")
        examples, origins = examples[rows.start :], origins[rows.start :]
    if not examples:
        first = f"; first: {reasons[0]}" if reasons else ""
        raise DataError(f"{source}: no usable rows ({skipped} skipped{first})")
    kinds = Counter(task_obj.truth_kind(example.truth) for example in examples)
    if kinds["text"]:  # truths no math parser reads: loaded anyway, scored by exact match
        texts = list(dict.fromkeys(ex.truth for ex in examples if task_obj.truth_kind(ex.truth) == "text"))
        logger.warning(
            "%s: %d ground truth(s) are not mathematical values (e.g. %s); kept as text, scored by exact match",
            *(source, kinds["text"], ", ".join(map(repr, texts[:3]))),
        )
    return LoadedSplit(examples, skipped, reasons, named, local, origins, dict(kinds.most_common()))


def _split_local(source: str) -> tuple[Path | None, str | None]:
    """A local path and optional `:split`, or (None, None) for a Hub id; DataError for a missing path."""
    path = Path(source).expanduser()
    if path.exists():
        return path, None
    head, sep, split = source.rpartition(":")
    if sep and Path(head).expanduser().exists() and "/" not in split:
        return Path(head).expanduser(), split
    looks_local = source.startswith((".", "/", "~")) or source.lower().endswith(_DATA_SUFFIXES)
    if looks_local or not _HF_ID.match(source):
        raise DataError(f"{source}: no such file or folder (nor a Hugging Face dataset id like owner/name)")
    return None, None


def _local_tables(path: Path, split: str | None, image_root: Path | None) -> list[Table]:
    if path.is_file():
        return [_file_table(path, image_root or path.parent)]
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return [_saved_dataset_table(path, split, image_root)]
    if split is not None and (path / split).is_dir():
        return _local_tables(path / split, None, image_root)
    if (path / "metadata.jsonl").is_file():
        return [_file_table(path / "metadata.jsonl", image_root or path)]
    shards = pick_shards(sorted(p.relative_to(path) for p in path.rglob("*.parquet")), split, path)
    if shards:
        shards = [path / shard for shard in shards]
        return [_file_table(shard, image_root or shard.parent) for shard in shards]
    rows_files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".json") and p.is_file())
    if len(rows_files) == 1:
        return [_file_table(rows_files[0], image_root or path)]
    raise DataError(
        f"{path}: no dataset found (expected parquet files, one .jsonl/.json file, a metadata.jsonl "
        "image folder or a datasets.save_to_disk folder)"
    )


def shard_split(shard: Path) -> str | None:
    """The split a parquet shard belongs to, read from its name or folders as the Hub lays them out.

    >>> shard_split(Path("data/train-00000-of-00002.parquet")), shard_split(Path("test/0000.parquet"))
    ('train', 'test')
    >>> shard_split(Path("clevr.parquet")) is None
    True
    """
    words = [re.split(r"[-_.]", shard.name, maxsplit=1)[0], *shard.parent.parts]
    return next((word for word in words if word in KNOWN_SPLITS), None)


def pick_shards(shards: list[Path], split: str | None, folder: Path) -> list[Path]:
    """The shards of `split`; with no split asked, all of them, or only `train` if several splits are there.

    >>> [str(p) for p in pick_shards([Path("data/test-0.parquet"), Path("data/train-0.parquet")], None, Path("."))]
    ['data/train-0.parquet']
    """
    splits = {shard_split(shard) for shard in shards}
    if split is not None:
        return [shard for shard in shards if shard_split(shard) == split or shard.name.startswith(split)]
    if len(splits) <= 1:
        return shards
    if "train" in splits:
        return [shard for shard in shards if shard_split(shard) == "train"]
    named = ", ".join(sorted(str(name) for name in splits))
    raise DataError(f"{folder}: holds the splits {named}; pick one with {folder}:SPLIT")


def _file_table(path: Path, image_root: Path) -> Table:
    if path.suffix == ".parquet":
        return _parquet_table(path, image_root)
    if path.suffix in (".jsonl", ".json"):
        rows = json_rows(path)
        columns: dict[str, None] = {}
        for _, row in rows:
            if isinstance(row, dict):
                columns.update(dict.fromkeys(row))
        if not rows:
            raise DataError(f"{path}: no rows")
        if not columns:  # not one usable row: report the first problem rather than "no columns"
            line_no, problem = rows[0]
            assert isinstance(problem, RowError)
            raise RowOrigin(str(path), line_no).error(problem.field, problem.what)
        return Table(str(path), path.stem, list(columns), iter(rows), image_root)
    raise DataError(
        f"{path}: unsupported file type '{path.suffix}' (expected .parquet, .jsonl, .json or a folder)"
    )


def _parquet_table(path: Path, image_root: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: cannot read as parquet ({type(exc).__name__}: {exc})") from None
    columns = parquet.schema_arrow.names

    def rows() -> Iterator[Row]:
        row_no = 0
        try:
            for batch in parquet.iter_batches(batch_size=256, columns=_wanted(columns, str(path))):
                for row in batch.to_pylist():
                    row_no += 1
                    yield row_no, row
        except OSError as exc:
            raise DataError(f"{path}: row {row_no + 1}: field '{WHOLE_ROW}': cannot read ({exc})") from None

    return Table(str(path), path.stem, columns, rows(), image_root)


def _wanted(columns: list[str], name: str) -> list[str]:
    """The columns an adapter reads (so wide files are not read whole)."""
    schema = detect_schema(columns, name)
    wanted = {schema.question, schema.truth, image_column(schema, columns), "id", "thinking"}
    return [name for name in columns if name in wanted]


def _dataset_table(dataset: Dataset, name: str, stem: str, image_root: Path) -> Table:
    """A `datasets.Dataset` as a Table, with images kept encoded (decoded later, lazily)."""
    import datasets

    columns = list(dataset.column_names)
    dataset = dataset.select_columns(_wanted(columns, name))
    for column, feature in dataset.features.items():
        if isinstance(feature, datasets.Image) and feature.decode:
            dataset = dataset.cast_column(column, datasets.Image(decode=False))

    def rows() -> Iterator[Row]:
        row_no = 0
        for batch in dataset.iter(batch_size=256):
            keys = list(batch)
            for values in zip(*(batch[key] for key in keys), strict=True):
                row_no += 1
                yield row_no, dict(zip(keys, values, strict=True))

    return Table(name, stem, columns, rows(), image_root)


def _saved_dataset_table(path: Path, split: str | None, image_root: Path | None) -> Table:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a damaged folder
        raise DataError(f"{path}: cannot load the saved dataset ({type(exc).__name__}: {exc})") from None
    name = str(path)
    if isinstance(loaded, datasets.DatasetDict):
        split = split or ("train" if "train" in loaded or len(loaded) != 1 else next(iter(loaded)))
        if split not in loaded:
            raise DataError(f"{path}: no split '{split}' (splits: {', '.join(loaded)}); pass {path}:SPLIT")
        loaded, name = loaded[split], f"{path}:{split}"
    return _dataset_table(loaded, name, path.name, image_root or Path.cwd())


def _hub_tables(source: str, image_root: Path | None) -> list[Table]:
    import datasets

    dataset_id, _, split = source.partition(":")
    split = split or "train"
    hub_usable()  # one probe; an unreachable hub turns this process offline (cached copies only)
    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except (ConnectionError, FileNotFoundError) as exc:
        if probe_failed():
            raise DataError(
                f"dataset {dataset_id} is not in the local Hugging Face cache, and the hub ({hub_host()[0]}) "
                "cannot be reached from here; download it on a machine with network or pass a local path"
            ) from None
        raise DataError(
            f"dataset {dataset_id} is not in the local Hugging Face cache; download it on a machine with "
            f"network or pass a local path ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    except Exception as exc:  # datasets raises many types (unknown split, bad config, damaged cache)
        raise DataError(
            f"dataset {dataset_id}: cannot load split '{split}' ({type(exc).__name__}: {exc})"
        ) from None
    stem = dataset_id.rsplit("/", 1)[-1]
    return [_dataset_table(dataset, f"{dataset_id}:{split}", stem, image_root or Path.cwd())]


def _synthetic_file(source: str, task: str, cache_dir: Path, seed: int, image_size: int) -> Path:
    """Generate `synthetic:<task>-<split>[-<n>]` once into the cache (atomically) and return its data file."""
    spec = source.removeprefix("synthetic:")
    match = _SYNTHETIC.match(spec)
    if match is None or match["split"] not in SYNTHETIC_DEFAULT_N:
        raise ConfigError(
            f"bad synthetic source '{source}': expected synthetic:<task>-<split>[-<n>] with split "
            f"one of {', '.join(SYNTHETIC_DEFAULT_N)}, e.g. synthetic:counting-test-200"
        )
    data_task, split = match["task"], match["split"]
    get_task(data_task)
    if data_task != task:
        raise ConfigError(f"synthetic source '{source}' holds {data_task} data, but the task is {task}")
    n = int(match["n"]) if match["n"] else SYNTHETIC_DEFAULT_N[split]
    if n < 1:
        raise ConfigError(f"bad synthetic source '{source}': the size must be at least 1")
    synthetic = importlib.import_module("mr1cli.data.synthetic")
    version = synthetic.GENERATOR_VERSION
    name = f"{data_task}-{split}-{n}-s{seed}-v{version}" + ("" if image_size == 112 else f"-px{image_size}")
    out_dir = cache_dir / "synthetic" / name
    marker = out_dir / ".mr1-data-file"
    if not marker.is_file():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = out_dir.with_name(f".{name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        written = synthetic.write_split(
            data_task,
            split,
            n=n,
            seed=seed,
            out_dir=tmp_dir,
            image_size=image_size,
            progress=synthetic.logged_progress(source, n),
        )
        (tmp_dir / ".mr1-data-file").write_text(str(Path(written).relative_to(tmp_dir)), encoding="utf-8")
        try:
            tmp_dir.rename(out_dir)
        except OSError:  # another process finished the same set first; use that one
            shutil.rmtree(tmp_dir, ignore_errors=True)
    if not marker.is_file():
        raise DataError(
            f"{out_dir}: not a finished synthetic set (no {marker.name}); delete the folder and retry"
        )
    return out_dir / marker.read_text(encoding="utf-8").strip()
