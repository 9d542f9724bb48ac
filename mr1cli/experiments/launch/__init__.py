"""Dispatch the grid's units to the hardware: `local` worker processes (one per CPU-thread share or
GPU slice) or `slurm` jobs through submitit. Launchers are registered by name in LAUNCHERS."""
