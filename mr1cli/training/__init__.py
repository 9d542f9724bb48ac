"""Training: `run_training(config)` runs the method's recipe in its run directory."""

from mr1cli.training.train import run_training

__all__ = ["run_training"]
