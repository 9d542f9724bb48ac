"""`--launcher local` (the default): N worker processes on this machine, each with its slot's
CUDA_VISIBLE_DEVICES slice and CPU threads, taking the next unit of the grid (in plan order)
whenever it is free. A failed run is reported with its log and the others go on; Ctrl-C (or
SIGTERM) is passed to every worker, which writes a checkpoint and stops."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console

from mr1cli.core.errors import TrainingInterrupted
from mr1cli.experiments.launch.accelerate_cmd import worker_command
from mr1cli.experiments.launch.base import LAUNCHERS, LaunchOptions, Outcome, last_step, write_record
from mr1cli.experiments.launch.devices import Slot, cpu_budget, make_slots, visible_gpus
from mr1cli.experiments.launch.display import Board, status_table
from mr1cli.experiments.launch.worker import write_job
from mr1cli.experiments.units import Unit, unit_done
from mr1cli.training.progress import clock

INTERRUPTED = (130, 143)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when mr1 dies (even by SIGKILL), so no worker is orphaned."""
    with contextlib.suppress(OSError):  # not Linux: workers outlive a killed parent
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Running:
    unit: Unit
    process: subprocess.Popen[bytes]
    log: IO[Any]
    started: float


@LAUNCHERS.register("local")
class LocalLauncher:
    def __init__(self, options: LaunchOptions) -> None:
        gpus = visible_gpus()
        self.gpus_per_run = options.gpus_per_run if options.gpus_per_run is not None else (1 if gpus else 0)
        self.slots = make_slots(options.jobs, self.gpus_per_run, gpus, cpu_budget())
        self.distributed = options.distributed
        self._stop = 0

    def where(self, units: list[Unit]) -> dict[str, str]:
        """The first units go to workers 1…N; each later one to whichever worker is free first."""
        todo = [unit for unit in units if not unit_done(unit)]
        first = {
            unit.name: f"w{slot.index} {slot.device}" for unit, slot in zip(todo, self.slots, strict=False)
        }
        return {unit.name: first.get(unit.name, "next free worker") for unit in todo}

    def dry_run(self, units: list[Unit], console: Console) -> None:
        rows = [(f"w{s.index}", s.device, str(s.threads), self._how(s)) for s in self.slots]
        console.print(status_table("local workers", ("worker", "device", "threads", "runs as"), rows))

    def _how(self, slot: Slot) -> str:
        return (
            f"accelerate launch ({self.distributed}, {len(slot.gpus)} GPUs)"
            if len(slot.gpus) > 1
            else "python"
        )

    def run(self, units: list[Unit], console: Console) -> Outcome:
        queue = [unit for unit in units if not unit_done(unit)]
        free, running, outcome = list(self.slots), {}, Outcome()
        previous = {
            sig: signal.signal(sig, self._forward(running)) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        columns = ("worker", "device", "run", "step", "time", "log")
        try:
            with Board(console, f"{len(self.slots)} workers, {len(queue)} runs to do", columns) as board:
                while queue or running:
                    while queue and free and not self._stop:
                        slot = free.pop(0)
                        running[slot.index] = self._start(queue.pop(0), slot, board)
                    for index, job in list(running.items()):
                        if job.process.poll() is not None:
                            del running[index]
                            free.append(self._slot(index))
                            self._finished(job, index, board, outcome)
                    if self._stop and not running:
                        break
                    board.show([self._row(i, job) for i, job in sorted(running.items())])
                    time.sleep(0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._stop:
            raise TrainingInterrupted(
                "every worker stopped and wrote a checkpoint; run the same command again to continue",
                signal_number=self._stop,
            )
        return outcome

    def _forward(self, running: dict[int, _Running]) -> Any:
        def handle(signum: int, frame: Any) -> None:
            self._stop = signum
            for job in running.values():
                job.process.send_signal(signum)

        return handle

    def _slot(self, index: int) -> Slot:
        return self.slots[index - 1]

    def _start(self, unit: Unit, slot: Slot, board: Board) -> _Running:
        job_file = write_job(
            unit, threads=slot.threads, gpus_per_run=len(slot.gpus), distributed=self.distributed
        )
        log = unit.log.open("ab")
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} worker {slot.index} ({slot.device})\n".encode())
        log.flush()
        process = subprocess.Popen(
            worker_command(job_file),
            env={**os.environ, **slot.env()},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        where = f"local worker {slot.index} ({slot.device})"
        write_record(unit, launcher="local", where=where, pid=process.pid, log=str(unit.log), state="running")
        board.event(f"w{slot.index} {slot.device}: {unit.name} starts (log {unit.log})")
        return _Running(unit, process, log, time.monotonic())

    def _finished(self, job: _Running, index: int, board: Board, outcome: Outcome) -> None:
        job.log.close()
        code, took = job.process.returncode, clock(time.monotonic() - job.started)
        if code == 0:
            write_record(job.unit, state="done", exit_code=0)
            board.event(f"w{index}: {job.unit.name} done in {took}")
        elif code in INTERRUPTED:
            write_record(job.unit, state="interrupted", exit_code=code)
            board.event(f"w{index}: {job.unit.name} stopped after {took}, checkpoint written")
        else:
            write_record(job.unit, state="failed", exit_code=code)
            outcome.failed[job.unit.name] = job.unit.log
            board.event(f"w{index}: {job.unit.name} FAILED (exit {code}) after {took}; log {job.unit.log}")

    def _row(self, index: int, job: _Running) -> tuple[str, ...]:
        step, _ = last_step(job.unit)
        slot = self._slot(index)
        took = clock(time.monotonic() - job.started)
        return (
            f"w{index}",
            slot.device,
            job.unit.name,
            "—" if step is None else str(step),
            took,
            str(job.unit.log),
        )
