"""Training: `run_training(config)` runs the method's recipe in its run directory.

`mr1cli.training.run_training` is loaded on first use, so that importing a light module of this
package (progress, run_dir) does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_training"]


def __getattr__(name: str) -> Any:
    if name == "run_training":
        from mr1cli.training.train import run_training

        return run_training
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
