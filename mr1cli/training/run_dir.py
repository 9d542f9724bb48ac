"""A run directory: resolved config, environment, metrics log, checkpoints, a lock.

results/runs/<method>-<task>-<config hash>/
    config.json        the resolved RunConfig (a different config is never written over it)
    env.json           versions, device, processes, git revision
    metrics.jsonl      one JSON object per logged step
    checkpoints/       step-NNNNNN/ (see checkpoint.py)
    final/             the finished model, a loadable checkpoint
    done.json          written last: the run finished
    run.lock           held while a process writes here
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from mr1cli.config import RunConfig
from mr1cli.config_loading import config_from_dict
from mr1cli.core.errors import ConfigError, Mr1Error
from mr1cli.files import atomic_write_text

RUNS_ROOT = Path("results") / "runs"


class RunLocked(Mr1Error):
    """Another mr1 process is writing the same run directory."""


class NothingToResume(Mr1Error):
    """`--resume` was asked for a run directory that holds no run."""


def default_run_dir(cfg: RunConfig) -> Path:
    return Path(os.environ.get("MR1_RUNS", RUNS_ROOT)) / cfg.run_name()


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_handle: Any = None

    config_file = property(lambda self: self.path / "config.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    final = property(lambda self: self.path / "final")
    done_file = property(lambda self: self.path / "done.json")

    def is_done(self) -> bool:
        return self.done_file.is_file()

    # ------------------------------------------------------------ lifecycle

    def acquire(self) -> None:
        """Take the run's lock; refuse with a clear message if another process holds it. In a
        distributed run (torchrun's RANK > 0) only the main process locks: the others join its run."""
        self.path.mkdir(parents=True, exist_ok=True)
        if os.environ.get("RANK", "0") != "0":
            return
        lock = self.path / "run.lock"
        while True:
            handle = lock.open("a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise RunLocked(
                    f"another mr1 process (pid {holder}) is writing {self.path}; wait for it or pick another --output"
                ) from None
            try:
                same = os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()  # the holder removed the file as we opened it: lock the new one
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle

    def release(self) -> None:
        """Remove run.lock (while still holding it) and unlock: a finished run leaves no lock file."""
        if self._lock_handle is not None:
            (self.path / "run.lock").unlink(missing_ok=True)
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def has_progress(self) -> bool:
        return self.metrics_file.exists() or self.checkpoints.exists() or self.is_done()

    def discard_stub(self) -> None:
        """After a failed start (nothing trained yet): remove what bind_config wrote, so a corrected
        rerun with the same --output is not refused as 'a different config'."""
        if self.has_progress():
            return
        for name in ("config.json", "env.json"):
            (self.path / name).unlink(missing_ok=True)

    def __enter__(self) -> RunDir:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def bind_config(self, cfg: RunConfig, *, resume: bool) -> None:
        """Record the config, or check it matches the one already recorded."""
        if self.config_file.exists():
            recorded = config_from_dict(json.loads(self.config_file.read_text()))
            if recorded.fingerprint() != cfg.fingerprint() and self.has_progress():
                raise ConfigError(
                    f"{self.path} holds a run with a different config ({recorded.run_name()}); "
                    "choose another --output (nothing was overwritten)"
                )
            has_progress = self.metrics_file.exists() or self.checkpoints.exists()
            if has_progress and not resume and not self.is_done():
                raise ConfigError(
                    f"{self.path} holds an unfinished run; pass --resume to continue it or choose another --output"
                )
            if recorded.fingerprint() == cfg.fingerprint():
                return
            # a folder left by a start that failed before its first step: take it over
        atomic_write_text(self.config_file, json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
        atomic_write_text(self.path / "env.json", json.dumps(environment(), indent=1, sort_keys=True))

    # ------------------------------------------------------------ metrics

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.exists():
            return []
        rows = []
        for line in self.metrics_file.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                break  # a line cut by a kill: everything after it is gone too
        return rows

    def truncate_metrics(self, last_step: int) -> None:
        """Keep only rows up to `last_step` (the checkpoint a resumed run restarts from); the step-0 row
        (evaluations of the model before training) is kept with them."""
        kept = [row for row in self.read_metrics() if row.get("step", 0) <= last_step]
        atomic_write_text(self.metrics_file, "".join(json.dumps(row, sort_keys=True) + "\n" for row in kept))

    def clear_metrics(self) -> None:
        """Drop the log of an attempt that left no checkpoint: the run starts again from step 0."""
        self.metrics_file.unlink(missing_ok=True)

    def log_metrics(self, row: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        try:
            with self.metrics_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(clean, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise Mr1Error(f"could not write {self.metrics_file}: {error.strerror or error}") from None

    def mark_done(self, info: dict[str, Any]) -> None:
        atomic_write_text(self.done_file, json.dumps(info, indent=1, sort_keys=True))


def require_resumable(path: Path) -> None:
    """`--resume` needs a run to continue; say so instead of silently starting a fresh one."""
    if not (path / "config.json").is_file():
        raise NothingToResume(
            f"--resume: there is no run in {path} to resume; run the same command without --resume to start it"
        )


def environment() -> dict[str, Any]:
    import torch
    import transformers

    try:
        revision = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = ""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "processes": int(os.environ.get("WORLD_SIZE", "1")),  # under accelerate launch / torchrun
        "platform": platform.platform(),
        "git_revision": revision or None,
    }
