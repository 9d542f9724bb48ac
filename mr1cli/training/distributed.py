"""More than one process: the accelerator, the sharded path (FSDP2 through accelerate), and what the
loop needs from it — a gathered checkpoint, a sharded reference model, decisions every process shares.

`accelerate launch --config_file experiments/accelerate/fsdp2.yaml` starts one process per GPU and
tells each, through its environment, to shard with FSDP2. accelerate 1.15 runs FSDP only on GPUs: on
a machine without one, its processes come up unaware of each other (`--multi_gpu`, or a config with
`distributed_type: FSDP`) or as one process (`--cpu`). `make_accelerator` closes that gap the smallest
way: with several processes and no GPU it asks accelerate for CPU processes (gloo), and when the
launch asked for FSDP it installs the FSDP plugin that accelerate built from the same environment.
From there the code path is accelerate's own (`prepare`, `get_state_dict`, `clip_grad_norm_`), so the
CPU tests (tests/integration/test_sharded.py) run what a GPU launch runs, with gloo for NCCL.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def launched_rank() -> int:
    """This process's rank as the launcher set it (0 when not launched as several processes); known
    before the accelerator exists, so only rank 0 takes the run directory's lock and writes there."""
    return int(os.environ.get("RANK", "0"))


def make_accelerator(**kwargs: Any) -> Any:
    """`accelerate.Accelerator(**kwargs)`, with the CPU route described above."""
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    on_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(**kwargs, cpu=True) if on_cpu else Accelerator(**kwargs)
    wants_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if on_cpu and wants_fsdp and accelerator.distributed_type == DistributedType.MULTI_CPU:
        plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables accelerate launch set
        if accelerator.state.mixed_precision != "no":
            plugin.set_mixed_precision(accelerator.state.mixed_precision)
        accelerator.state.fsdp_plugin = plugin
        accelerator.state.distributed_type = DistributedType.FSDP
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP  # as AcceleratorState does
    return accelerator


def is_sharded(accelerator: Any) -> bool:
    """True when the model's parameters are split over the processes (FSDP)."""
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.FSDP


def prepare_frozen(accelerator: Any, model: torch.nn.Module) -> torch.nn.Module:
    """A model that is only evaluated (π_ref): sharded like the policy under FSDP (each process holds
    1/N of it, and `mr1 plan` counts it so), as loaded otherwise.

    accelerate leaves the root and the embedding/head units gathered after a forward (the backward
    would reshard them); a model that has no backward reshards them after each forward instead."""
    if not is_sharded(accelerator):
        return model
    from accelerate.utils.fsdp_utils import fsdp2_prepare_model
    from torch.distributed.fsdp import FSDPModule

    model = fsdp2_prepare_model(accelerator, model).eval()
    units = [module for module in model.modules() if isinstance(module, FSDPModule)]

    def reshard(*_: Any) -> None:
        for unit in units:
            unit.reshard()

    model.register_forward_hook(reshard)
    return model


def as_float(value: Any) -> float:
    """A scalar tensor as a float; a sharded model's gradient norm is a replicated DTensor."""
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    return float(value)


def agree(accelerator: Any, *flags: bool) -> tuple[bool, ...]:
    """Each flag True on every process when it is True on any (one all-reduce): a decision that ends
    in collectives (stop, checkpoint) must be taken by all processes at the same step.

    >>> from types import SimpleNamespace
    >>> agree(SimpleNamespace(num_processes=1), True, False)
    (True, False)
    """
    if accelerator.num_processes == 1:
        return tuple(flags)
    values = torch.tensor([float(flag) for flag in flags], device=accelerator.device)
    return tuple(bool(value > 0) for value in accelerator.reduce(values, "sum").tolist())


def checkpoint_state(accelerator: Any, model: torch.nn.Module, optimizer: Any) -> tuple[Any, Any]:
    """(model weights, optimizer state) to write, complete on the main process. Every process calls
    it: under FSDP both are gathered from the shards (collectives). Elsewhere the weights are None
    (the model saves its own) and the optimizer state is its plain state dict."""
    if not is_sharded(accelerator):
        return None, optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    tied = _tied_duplicates(model)
    weights = {k: v for k, v in accelerator.get_state_dict(model).items() if k not in tied}
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return weights, get_optimizer_state_dict(model, _inner(optimizer), options=options)


def load_optimizer_state(accelerator: Any, model: torch.nn.Module, optimizer: Any, state: Any) -> None:
    """Restore what `checkpoint_state` saved (under FSDP each process keeps its shard of it)."""
    if not is_sharded(accelerator):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True)
    set_optimizer_state_dict(model, _inner(optimizer), optim_state_dict=state, options=options)


def _tied_duplicates(model: torch.nn.Module) -> set[str]:
    """Names of parameters that are another's (the LM head tied to the embedding): the gathered state
    dict holds them twice, while `save_pretrained` of an unsharded model writes them once."""
    seen: set[int] = set()
    duplicates = set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in seen:
            duplicates.add(name)
        seen.add(id(parameter))
    return duplicates


def _inner(optimizer: Any) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
