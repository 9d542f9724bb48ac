"""Time of one optimizer step, from FLOPs, memory bandwidth and a per-token decoding overhead.

Rollouts are decoding-bound: each new token reads the decoder weights and the KV cache once
(the bandwidth roofline), plus a fixed per-layer kernel-launch cost that dominates small models on
big GPUs; both are paid once per sampling call of `rl.rollout_batch` prompts, so batching the step's
prompts into one call divides them. The reference forward and the update are compute-bound at an assumed model-FLOPs
utilisation. Under FSDP2 every forward all-gathers each unit's float32 weights (so does each decoded
token) and the backward gathers them again and reduce-scatters the gradients; the update's and the
reference's traffic overlaps their compute (FSDP2 prefetches the next unit), decoding's adds to its
memory reads. These are planning numbers (±50 %); `scripts/gpu-check.sh` measures the real ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mr1cli.planning.gpus import GpuKind
from mr1cli.planning.shapes import image_patches
from mr1cli.planning.weights import fsdp_unit_bytes, policy_bytes, reference_bytes, trainable_params
from mr1cli.planning.workload import MASTER_BYTES, Workload

MFU = 0.35  # achieved / peak dense bf16 FLOP/s for the forward and backward passes
DECODE_LAUNCH_S_PER_LAYER = 0.4e-3  # eager PyTorch: ~20 kernels per decoder layer per new token
FSDP_GATHER_GBPS = 150.0  # FSDP2's all-gather / reduce-scatter rate per process (NVLink, GB/s)


@dataclass(frozen=True)
class StepTime:
    generation_s: float
    reference_s: float
    update_s: float

    @property
    def total_s(self) -> float:
        return self.generation_s + self.reference_s + self.update_s


def step_time(w: Workload, gpu: GpuKind, prompts_per_step: int) -> StepTime:
    """Seconds per optimizer step on one of `w.gpus` GPUs of kind `gpu`.

    >>> from mr1cli.planning.gpus import gpu_kind
    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> t = step_time(Workload(shape=QWEN2_VL_2B, gpus=8), gpu_kind("h100-80gb"), prompts_per_step=16)
    >>> round(t.generation_s, 1), round(t.update_s, 2)
    (12.5, 0.86)
    >>> round(step_time(Workload(shape=QWEN2_VL_2B, gpus=8, rollout_batch=2), gpu_kind("h100-80gb"), 16).generation_s, 1)
    6.3
    >>> t = step_time(Workload(shape=QWEN2_VL_2B, gpus=8, fsdp=True), gpu_kind("h100-80gb"), prompts_per_step=16)
    >>> round(t.generation_s, 1), round(t.update_s, 2)
    (43.8, 0.86)
    """
    s = w.shape
    flops = gpu.bf16_tflops * 1e12 * MFU
    per_gpu = prompts_per_step / w.gpus
    chunks = math.ceil(per_gpu / w.micro_batch)  # forward/backward micro-batches
    calls = math.ceil(per_gpu / w.rollout_batch)  # sampling calls
    text, vision = s.text_params(), s.vision_params()
    patches = w.micro_batch * image_patches(w.max_pixels)
    seq_tokens = w.sequences * (w.prompt_tokens + (w.completion_tokens if w.rollouts else 0))
    generation = 0.0
    if w.rollouts:
        weights = text * w.dtype_bytes  # bf16 compute reads autocast's bf16 copies
        kv_per_token = 2 * s.layers * s.kv_dim * w.dtype_bytes
        mean_kv = kv_per_token * w.rollout_sequences * (w.prompt_tokens + w.completion_tokens / 2)
        read_s = (weights + mean_kv) / (gpu.bandwidth_gbps * 1e9)
        read_s += s.layers * fsdp_unit_bytes(w)[1] * _gathered_share(w) / (FSDP_GATHER_GBPS * 1e9)
        compute_s = 2 * text * w.rollout_sequences / flops
        decode = w.completion_tokens * (max(read_s, compute_s) + s.layers * DECODE_LAUNCH_S_PER_LAYER)
        prefill = (
            w.rollout_batch * (2 * text * w.prompt_tokens + 2 * vision * image_patches(w.max_pixels)) / flops
        )
        generation = calls * (decode + prefill)
    copies = w.generations if w.rollouts and not w.shares_prompt_in_update else 1
    forward = 2 * text * seq_tokens + 2 * vision * patches * copies
    gather_s = _gathered_share(w) / (FSDP_GATHER_GBPS * 1e9)
    reference = chunks * max(forward / flops, reference_bytes(w) * gather_s) if w.reference else 0.0
    backward = 2 if w.lora is not None else 4  # LoRA: input gradients only
    passes = 1 + backward / 2 + (1 if w.gradient_checkpointing else 0)
    traffic = 2 * policy_bytes(w) + MASTER_BYTES * trainable_params(w)  # gather twice, reduce-scatter
    update = chunks * max(passes * forward / flops, traffic * gather_s)
    return StepTime(generation, reference, update)


def _gathered_share(w: Workload) -> float:
    """The part of a sharded tensor each process receives in an all-gather: (N - 1) / N; 0 unsharded."""
    return (w.shards - 1) / w.shards
