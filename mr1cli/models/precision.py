"""Mixed precision: float32 master weights, compute in `model.dtype` through autocast.

- A weight the optimizer updates is stored in float32, and so are its gradient and AdamW moments. In
  bf16 (8 significant bits) an update of lr 1e-6 on a weight of 0.02 is below half a unit in the last
  place and rounds away: one AdamW step at lr 1e-6 on the tiny model's weights held in bf16 changed
  2.3 % of them, in float32 100 % (tests/integration/test_precision.py).
- `model.dtype` names the COMPUTE dtype. Every forward (rollout sampling, reference and old-policy
  log-probs, the update, evaluation) runs inside `Precision.autocast()`: matrix products cast their
  float32 weights to bf16 (once per autocast region: autocast caches the copies of weights that
  require grad), the token embeddings are cast to bf16 (`activations_in_compute_dtype`), so the
  activations and the KV cache are bf16 as in a bf16 model, norms and softmaxes compute in float32,
  and the loss maths runs on float32 log-probs outside autocast. The backward pass follows the
  forward's dtypes.
- Weights nothing updates (the reference model, LoRA's frozen base, a frozen vision tower) are stored
  in the compute dtype where autocast would round them anyway (linear and convolution weights), which
  halves their memory without changing any result: the reference computes bit for bit as the policy
  does with the same weights. Frozen embeddings and norms stay float32.
- float16 is refused: without loss scaling its 5-bit exponent underflows small gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from mr1cli.core.errors import ConfigError
from mr1cli.core.registry import did_you_mean

MASTER_DTYPE = torch.float32
CAST_BY_AUTOCAST = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
COMPUTE_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


@dataclass(frozen=True)
class Precision:
    """Where the model runs and in which dtype it computes; trained weights are always float32."""

    compute: torch.dtype
    device_type: str  # "cuda", "cpu": autocast's device type

    @property
    def mixed(self) -> bool:
        """True when compute runs below float32 (bf16 autocast over float32 master weights)."""
        return self.compute != MASTER_DTYPE

    def autocast(self) -> contextlib.AbstractContextManager:
        """The compute context: bf16 autocast, or nothing for float32.

        >>> with Precision(torch.bfloat16, "cpu").autocast():
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
        """
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.compute)


def resolve_precision(dtype: str, device: torch.device) -> Precision:
    """`model.dtype` on `device`; `auto` is bfloat16 on CUDA and float32 elsewhere.

    >>> resolve_precision("auto", torch.device("cpu")).compute, resolve_precision("bfloat16", torch.device("cpu")).mixed
    (torch.float32, True)
    """
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    if dtype not in COMPUTE_DTYPES:
        raise ConfigError(f"unknown compute dtype '{dtype}'{did_you_mean(dtype, ['auto', *COMPUTE_DTYPES])}")
    return Precision(COMPUTE_DTYPES[dtype], device.type)


def model_precision(dtype: str, model: torch.nn.Module) -> Precision:
    """`model.dtype` for a model already placed on its device."""
    return resolve_precision(dtype, next(model.parameters()).device)


def store_frozen_weights(model: torch.nn.Module, precision: Precision) -> torch.nn.Module:
    """Trained weights in float32; frozen weights in the compute dtype where autocast would round them
    to it anyway (those held only by linear and convolution layers), else float32 (embeddings, norms).
    So a frozen model computes bit for bit as a trained one with the same weights: the reference's
    log-probs equal the policy's before the first update, and storage never changes a result."""
    cast_only = rounded_by_autocast(model)
    for parameter in model.parameters():
        frozen = not parameter.requires_grad and id(parameter) in cast_only
        wanted = precision.compute if frozen else MASTER_DTYPE
        if parameter.is_floating_point() and parameter.dtype != wanted:
            parameter.data = parameter.data.to(wanted)
    return model


def rounded_by_autocast(model: torch.nn.Module) -> set[int]:
    """ids of the parameters every use of which autocast casts to the compute dtype: those held only by
    linear or convolution layers (a tied embedding is also read by its lookup, which autocast leaves)."""
    held_by: dict[int, list[bool]] = {}
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            held_by.setdefault(id(parameter), []).append(isinstance(module, CAST_BY_AUTOCAST))
    return {key for key, casts in held_by.items() if all(casts)}


def activations_in_compute_dtype(model: torch.nn.Module) -> torch.nn.Module:
    """Under autocast, cast the token embeddings to the compute dtype, so that the residual stream,
    the activations kept for the backward and the KV cache are bf16 as in a bf16 model. (Autocast
    alone casts only the inputs of matrix products; the embedding lookup would start a float32
    residual stream, and the rotary keys in the KV cache would be float32 too.) Norms still compute
    in float32 internally, as Qwen2's RMSNorm does."""
    model.get_input_embeddings().register_forward_hook(_to_autocast_dtype)
    return model


def _to_autocast_dtype(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
    device_type = output.device.type
    if torch.is_autocast_enabled(device_type) and output.is_floating_point():
        return output.to(torch.get_autocast_dtype(device_type))
    return None


def check_master_weights(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Refuse to build an optimizer over a weight that is not float32 (its updates would round away)."""
    for parameter in parameters:
        if parameter.requires_grad and parameter.dtype != MASTER_DTYPE:
            raise ConfigError(
                f"a trained weight is {parameter.dtype}, not float32: updates of lr 1e-6 round away in 16 bits"
            )


def check_launcher_precision(mixed_precision: str, precision: Precision) -> None:
    """accelerate's `mixed_precision` (launch flag or config) must not contradict `model.dtype`:
    mr1 applies autocast itself, so `no` is the setting; `bf16` with bf16 compute is the same thing.

    >>> check_launcher_precision("no", Precision(torch.bfloat16, "cuda"))
    """
    wanted = {torch.float32: "no", torch.bfloat16: "bf16"}[precision.compute]
    if mixed_precision not in ("no", wanted):
        raise ConfigError(
            f"accelerate mixed_precision={mixed_precision} contradicts model.dtype (compute in "
            f"{str(precision.compute).removeprefix('torch.')}): launch with --mixed_precision no; "
            "model.dtype sets the compute dtype and master weights stay float32"
        )
