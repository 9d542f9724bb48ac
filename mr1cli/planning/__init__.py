"""`mr1 plan`: will a config fit on these GPUs, and how long will a step take? Pure estimates
(shapes.py, gpus.py, workload.py, weights.py, memory.py, timing.py) first, then the knobs that make
a config fit (advice.py) and a config-to-inputs bridge (for_config.py). Nothing here allocates a
model."""
