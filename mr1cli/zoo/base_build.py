"""Build the tiny base bit for bit the same on every machine, whatever its threads or CPU.

Three things change the weights of one and the same build (measured; docs/data-and-models.md, "Models"):
- **threads**: torch splits reductions and matrix products over its threads, so 1 and 2 threads
  round differently;
- **CPU kernels**: torch picks AVX2 or AVX-512 kernels at start-up (ATEN_CPU_CAPABILITY), MKL its
  own code path (MKL_CBWR), oneDNN its instruction set (ONEDNN_MAX_CPU_ISA);
- how a step's batch is cut into micro-batches.

So the build runs in its own processes (the kernel pins must be set before torch loads), each on
one thread, with every step cut the same way: `train.micro_batch` is half of
`train.prompts_per_step`, and the two halves run in two processes whose gradients are summed
(torch.distributed, gloo), or one after the other in one process on a one-CPU machine. Both give
the same sum, a + b, so the same bits: the second process only halves the time.

`launch_build` starts `python -m torch.distributed.run --standalone --nproc_per_node P -m
mr1cli.zoo.base_build PLAN` with `PINNED_ENV`; `main` is that command: each process generates its
share of the warm-up sets, then all train (SFT) through the same loop as any run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from mr1cli.core.errors import Mr1Error

logger = logging.getLogger(__name__)

# Read by torch, MKL and oneDNN when they load: set in the build's environment, never changed later.
PINNED_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own kernels: AVX2 on every x86-64 CPU since 2013
    "MKL_CBWR": "AVX2,STRICT",  # MKL's matrix products: AVX2 code path, the same bits on any thread count
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's kernels (the vision tower's patch convolution)
    "CUDA_VISIBLE_DEVICES": "",  # the CPU build on a GPU machine too
    "ACCELERATE_USE_CPU": "true",  # accelerate: two CPU processes are one run (gloo), not two runs
    "TOKENIZERS_PARALLELISM": "false",
}
BUILD_PROCESSES = 2  # the fixed split of every step: two halves of train.prompts_per_step


class BaseBuildFailed(Mr1Error):
    exit_code = 1


def build_processes() -> int:
    """Two processes where two CPUs are free to this process, else one (the same weights, slower)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    return BUILD_PROCESSES if cpus >= BUILD_PROCESSES else 1


def build_command(plan: Path, processes: int) -> list[str]:
    """The command `launch_build` runs (printed in the log, and recorded beside the expected hash).

    >>> build_command(Path("p.json"), 2)[1:7]
    ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m']
    """
    module = ["-m", "mr1cli.zoo.base_build", str(plan)]
    if processes == 1:
        return [sys.executable, *module]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        *module,
    ]


def launch_build(run_dir: Path, configs: dict, base_model: str, *, processes: int | None = None) -> Path:
    """Build the base described by `configs` (task → RunConfig of the tiny-base warm-up), starting from
    the model folder `base_model`, into `run_dir` in pinned subprocesses; return its final/ folder.
    The child's output is this process's."""
    plan = run_dir.parent / f".{run_dir.name}.plan.json"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "base_model": base_model,
                "configs": {t: c.to_dict() for t, c in configs.items()},
            }
        )
    )
    first = next(iter(configs.values())).train
    halves = first.micro_batch * BUILD_PROCESSES == first.prompts_per_step
    processes = processes or (build_processes() if halves else 1)  # another split would change the sum
    command = build_command(plan, processes)
    logger.info(
        "the tiny base is built in %d pinned single-thread processes: %s", processes, " ".join(command)
    )
    try:
        finished = subprocess.run(command, env={**os.environ, **PINNED_ENV}, check=False)
    finally:
        plan.unlink(missing_ok=True)
    if finished.returncode != 0:
        raise BaseBuildFailed(
            f"building the tiny base failed (exit {finished.returncode}; its output is above); "
            f"rerun to continue from its last checkpoint in {run_dir}"
        )
    return run_dir / "final"


def _check_pins() -> None:
    """Refuse to build with threads or kernels other than the pinned ones (a caller that set them)."""
    import torch

    torch.set_num_threads(1)
    capability = torch.backends.cpu.get_cpu_capability()
    if os.uname().machine in ("x86_64", "AMD64") and capability not in ("AVX2", "DEFAULT"):
        raise BaseBuildFailed(f"the tiny base build needs ATEN_CPU_CAPABILITY=avx2, torch runs {capability}")


def main(argv: list[str]) -> None:
    """The build itself, inside the pinned processes: warm-up data (each process makes its share),
    then one SFT run over both tasks' warm-up sets."""
    from accelerate import PartialState
    from rich.console import Console

    from mr1cli.config_loading import config_from_dict
    from mr1cli.data.for_config import load_examples
    from mr1cli.training import run_training
    from mr1cli.training.progress import log_to_console

    _check_pins()
    plan = json.loads(Path(argv[0]).read_text())
    state = PartialState(cpu=True)
    if state.is_main_process:
        log_to_console(Console(stderr=True))
    configs = {task: config_from_dict(values) for task, values in plan["configs"].items()}
    tasks = list(configs)
    logger.info(
        "generating the warm-up sets (%s) on %d process(es), then training; the first process logs its progress",
        ", ".join(configs[t].data.warmup.replace("{task}", t) for t in tasks),
        state.num_processes,
    )
    for task in tasks[state.process_index :: state.num_processes]:  # the warm-up sets, in parallel
        load_examples(configs[task], "warmup", task)
    state.wait_for_everyone()
    examples = [ex for task, cfg in configs.items() for ex in load_examples(cfg, "warmup", task)]
    run_training(
        configs[tasks[0]],
        base_model=plan["base_model"],
        output_dir=Path(plan["run_dir"]),
        resume=True,
        train_examples=examples,
        describe=f"tiny-base warm-up (sft on {'+'.join(tasks)})",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
