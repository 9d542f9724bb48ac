"""Tasks register themselves on import; `get_task(name)` is the lookup everyone uses."""

from mr1cli.core.task import SCORING_MODES, TASKS, Task
from mr1cli.tasks import counting, geometry  # noqa: F401  (registration)


def get_task(name: str) -> Task:
    return TASKS.get(name)


__all__ = ["SCORING_MODES", "TASKS", "Task", "get_task"]
