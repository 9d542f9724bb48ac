"""The task registry and the built-in tasks; importing any part of this package registers them.

Each built-in task owns a folder: `task.py` (prompt templates, truth parsing, scoring, per-task
defaults) and its synthetic generator. To add a task: write a `mr1cli.core.task.Task` subclass
in its own file (anywhere) and register it with `TASKS.add(name, MyTask())`; every list of tasks
(profiles, `evaluate_on: other`, tables, figures) is read from this registry.
"""

from mr1cli.core.registry import Registry
from mr1cli.core.task import Task
from mr1cli.tasks.counting.task import Counting
from mr1cli.tasks.geometry.task import Geometry

TASKS: Registry[Task] = Registry("task")
TASKS.add("counting", Counting())
TASKS.add("geometry", Geometry())


def get_task(name: str) -> Task:
    """The registered task `name`; an unknown name is a ConfigError with a "did you mean".

    >>> get_task("counting").parse_truth("<answer> 3 </answer>")
    '3'
    """
    return TASKS.get(name)
