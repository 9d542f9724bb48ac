"""The built-in launchers, registered on import (see LAUNCHERS in launch/base.py)."""

from mr1cli.experiments.launch import local, slurm

__all__ = ["local", "slurm"]
