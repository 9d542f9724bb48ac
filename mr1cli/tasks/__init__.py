"""The built-in task plugins, one file each; importing this package registers them in `TASKS`.

To add a task: write a `Task` subclass (prompts, truth parsing, scoring, synthetic generator,
per-task defaults) in its own file and register it with `TASKS.add(name, MyTask())`.
"""

from mr1cli.tasks.counting import task as counting  # noqa: F401  (registration)
from mr1cli.tasks.geometry import task as geometry  # noqa: F401  (registration)
