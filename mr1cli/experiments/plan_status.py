"""What `mr1 reproduce --dry-run` shows: each planned row's state (base rows included) and an estimate
of the time the work left takes, from times measured on earlier runs, never a guess.

A training run's time is the sum of the `perf/step_seconds` its metrics log recorded: from the run's
own copy saved with the results (`results/<experiment>/curves/<run>.jsonl`, as the machine that
wrote them measured it), else the median of the saved runs of the same method and task. An
evaluation's time is the `timing.json` that `mr1 reproduce` writes beside each evaluation, median
per task and set. A tiny base not built yet counts the build time recorded with its hash
(`experiments/profiles/<base>.expected.json`). Work with no measured time is counted and named, not
estimated.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mr1cli.experiments.specs import PlannedRun
from mr1cli.experiments.units import base_home, eval_config, eval_dir, eval_splits
from mr1cli.training.progress import clock
from mr1cli.training.run_dir import RunDir, default_run_dir
from mr1cli.zoo.builds import recorded_build_seconds


def _logged(path: Path) -> tuple[int, float]:
    """The last step a metrics log reached and the seconds its steps took (perf/step_seconds)."""
    steps, seconds = 0, 0.0
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        steps = max(steps, int(row.get("step") or 0))
        seconds += float(row.get("perf/step_seconds") or 0.0)
    return steps, seconds


@dataclass
class Measured:
    """Training times of saved runs (by run name, and by method and task) and evaluation times."""

    runs: dict[str, tuple[int, float]] = field(default_factory=dict)
    by_kind: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    evaluations: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    @staticmethod
    def read(results_root: Path, homes: Iterable[Path]) -> Measured:
        measured = Measured()
        for index in sorted(Path(results_root).glob("*/curves/index.jsonl")):
            for line in index.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line) if line.strip() else {}
                steps, seconds = _logged(index.parent / f"{entry.get('run')}.jsonl")
                if seconds > 0 and entry["run"] not in measured.runs:
                    measured.runs[entry["run"]] = (steps, seconds)
                    measured.by_kind[(entry.get("method"), entry.get("train_task"))].append(seconds)
        for home in homes:
            for timing in sorted(Path(home).glob("eval/*/timing.json")):
                task, split, _ = timing.parent.name.rsplit("-", 2)  # <task>-<split>-<key>
                measured.evaluations[(task, split)].append(float(json.loads(timing.read_text())["seconds"]))
        return measured

    def training(self, run: PlannedRun, done_steps: int) -> float | None:
        """Seconds left to train `run` (None: nothing comparable was measured)."""
        if run.name in self.runs:
            steps, seconds = self.runs[run.name]
            return seconds * max(0.0, 1.0 - done_steps / steps) if steps else seconds
        kind = self.by_kind.get((run.method, run.train_task))
        return statistics.median(kind) if kind and not done_steps else None

    def evaluation(self, task: str, split: str) -> float | None:
        times = self.evaluations.get((task, split))
        return statistics.median(times) if times else None


@dataclass
class Work:
    """The planned rows' states and the work left, with its measured seconds."""

    states: list[str] = field(default_factory=list)
    seconds: float = 0.0
    untimed: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, seconds: float | None, what: str) -> None:
        if seconds is None:
            self.untimed[what] += 1
        else:
            self.seconds += seconds

    def summary(self) -> str:
        """One line: the measured total, and what has no measured time yet."""
        missing = ", ".join(f"{n} {what}" for what, n in self.untimed.items())
        if not self.seconds and not missing:
            return "nothing left to do: every run is trained and evaluated"
        total = (
            f"about {clock(self.seconds)} (h:mm:ss) of work, measured on earlier runs" if self.seconds else ""
        )
        untimed = f"not counted, no time measured yet: {missing}" if missing else ""
        return "estimate: " + "; ".join(part for part in (total, untimed) if part)


def _pending_evaluations(home: Path | None, profile: str, tasks: tuple[str, ...], trained_on: str | None):
    """The (task, split) evaluations of the model in `home` not done yet."""
    return [
        (task, split)
        for task in tasks
        for split in eval_splits(profile, task, trained_on)
        if home is None or not (eval_dir(home, profile, task, split) / "metrics.json").is_file()
    ]


def plan_work(planned: list[PlannedRun], profile: str, results_root: Path) -> Work:
    """Each planned row's state (done, to evaluate, partial at step k, to train; base rows: done or
    to evaluate, or "to build + eval" while the base model is not built) and the time of what is left."""
    homes = {run.name: default_run_dir(run.config) for run in planned if run.config is not None}
    bases = {
        task: base_home(profile, task) for run in planned if run.config is None for task in run.eval_tasks
    }
    measured = Measured.read(results_root, [*homes.values(), *(h for h, _ in bases.values() if h)])
    work, seen, builds = Work(), set(), set()
    for run in planned:
        if run.config is None:
            home, built = bases[run.eval_tasks[0]]
            pending = _pending_evaluations(home, profile, run.eval_tasks, None)
            state = ("to evaluate" if built else "to build + eval") if pending else "done"
            model = None if built else eval_config(profile, run.eval_tasks[0]).model.name_or_path
            if model is not None and model not in builds:
                work.add(recorded_build_seconds(model), "base model builds")
                builds.add(model)
        else:
            home = homes[run.name]
            done_steps = _logged(RunDir(home).metrics_file)[0]
            trained = RunDir(home).is_done()
            pending = _pending_evaluations(home, profile, run.eval_tasks, run.train_task)
            state = (
                ("to evaluate" if pending else "done")
                if trained
                else (f"partial (step {done_steps})" if done_steps else "to train")
            )
            if not trained and run.name not in seen:
                work.add(measured.training(run, done_steps), "training runs")
        work.states.append(state)
        for task, split in pending if (run.name, run.eval_tasks) not in seen else []:
            work.add(measured.evaluation(task, split), "evaluations")
        seen |= {run.name, (run.name, run.eval_tasks)}
    return work
