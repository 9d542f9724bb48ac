"""Tasks register themselves on import; `get_task(name)` is the lookup everyone uses."""

from mr1cli.tasks import counting, geometry  # noqa: F401  (registration)
from mr1cli.tasks.base import SCORING_MODES, TASKS, Task


def get_task(name: str) -> Task:
    return TASKS.get(name)


__all__ = ["SCORING_MODES", "TASKS", "Task", "get_task"]
