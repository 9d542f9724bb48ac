"""The launcher registry with the built-in launchers registered: import LAUNCHERS from here."""

from mr1cli.experiments.launch import local, slurm
from mr1cli.experiments.launch.base import LAUNCHERS

__all__ = ["LAUNCHERS", "local", "slurm"]
