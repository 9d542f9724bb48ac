"""Numbers for `mr1 bench`: step-time statistics, the speed-up ratio, the decoding roofline, memory.

Pure functions except `MemoryMeter`, which watches the process (RSS on CPU) or the CUDA allocator.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Peak memory bandwidth (GB/s, 1 GB = 1e9 bytes) of accelerators by a substring of their name,
# most specific first (vendor data sheets).
GPU_BANDWIDTH_GBPS = (
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100 NVL", 3900.0),
    ("H100", 3350.0),  # SXM5
    ("GH200", 4000.0),
    ("B200", 8000.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),  # 40 GB
    ("L40S", 864.0),
    ("L4", 300.0),
    ("A10G", 600.0),
    ("RTX 4090", 1008.0),
)


def time_stats(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (inclusive method), min, max and mean of step times in seconds.

    >>> time_stats([1.0, 2.0, 3.0, 4.0, 5.0])
    {'n': 5, 'median': 3.0, 'q1': 2.0, 'q3': 4.0, 'iqr': 2.0, 'min': 1.0, 'max': 5.0, 'mean': 3.0}
    """
    if not values:
        raise ValueError("no measured steps")
    ordered = sorted(float(v) for v in values)
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "min": ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def speedup(mr1_step_s: Sequence[float], trl_step_s: Sequence[float]) -> float:
    """mr1's speed-up over TRL on the same work: median TRL step time / median mr1 step time
    (above 1: mr1 is faster).

    >>> speedup([1.0, 1.2, 0.8], [2.0, 2.5, 1.5])
    2.0
    """
    return statistics.median(trl_step_s) / statistics.median(mr1_step_s)


@dataclass(frozen=True)
class Roofline:
    """Upper bound on decoding throughput when every decode step must stream the decoder's weights
    (and the KV cache) from device memory once."""

    weight_bytes: float  # decoder weights read per decode step
    kv_bytes: float  # KV cache read per decode step, summed over the batch
    bandwidth_bytes_per_s: float
    batch: int

    @property
    def bytes_per_step(self) -> float:
        return self.weight_bytes + self.kv_bytes

    @property
    def steps_per_s(self) -> float:
        return self.bandwidth_bytes_per_s / self.bytes_per_step

    @property
    def tokens_per_s(self) -> float:
        return self.steps_per_s * self.batch


def decode_roofline(
    *,
    weight_bytes: float,
    bandwidth_bytes_per_s: float,
    batch: int,
    kv_bytes_per_token: float = 0.0,
    mean_context: float = 0.0,
) -> Roofline:
    """Bandwidth roofline of batched decoding: tokens/s ≤ batch · bandwidth / (weights + KV read per step).

    >>> r = decode_roofline(weight_bytes=3e9, bandwidth_bytes_per_s=3e12, batch=16)
    >>> r.steps_per_s, r.tokens_per_s
    (1000.0, 16000.0)
    >>> decode_roofline(weight_bytes=1e9, bandwidth_bytes_per_s=2e12, batch=2,
    ...                 kv_bytes_per_token=1e3, mean_context=5e5).tokens_per_s
    2000.0
    """
    kv = kv_bytes_per_token * mean_context * batch
    return Roofline(float(weight_bytes), float(kv), float(bandwidth_bytes_per_s), int(batch))


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    """Bytes of K and V cached per token across all decoder layers.

    >>> from types import SimpleNamespace as NS
    >>> kv_bytes_per_token(NS(num_hidden_layers=28, num_key_value_heads=2, hidden_size=1536,
    ...                       num_attention_heads=12), dtype_bytes=2)
    28672
    """
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * dtype_bytes


def decoder_weight_bytes(model: torch.nn.Module, bytes_per_weight: int | None = None) -> int:
    """Bytes of the weights a decode step reads: every parameter outside the vision tower (the tied
    embedding counted once, as the LM head that reads all of it), at `bytes_per_weight` (the compute
    dtype's: autocast reads its cached bf16 copies of float32 master weights) or as stored."""
    return sum(
        p.numel() * (bytes_per_weight or p.element_size())
        for name, p in model.named_parameters()
        if "visual" not in name
    )


def device_bandwidth_gbps(device_name: str) -> float | None:
    """Peak memory bandwidth of a known accelerator, by name; None when unknown (e.g. a CPU).

    >>> device_bandwidth_gbps("NVIDIA H100 80GB HBM3"), device_bandwidth_gbps("NVIDIA H100 PCIe")
    (3350.0, 2000.0)
    >>> device_bandwidth_gbps("Intel Xeon") is None
    True
    """
    for key, gbps in GPU_BANDWIDTH_GBPS:
        if key in device_name:
            return gbps
    return None


class MemoryMeter:
    """Peak memory inside begin() … end() windows: CUDA `max_memory_allocated` on a GPU, else the
    process RSS sampled every `interval_s` by a background thread (psutil)."""

    def __init__(self, device: torch.device, interval_s: float = 0.005) -> None:
        self.device = device
        self.interval_s = interval_s
        self._start = 0
        self._peak = 0
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        if device.type != "cuda":
            import psutil

            self._process = psutil.Process()

    def _now(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device)
        return self._process.memory_info().rss

    def begin(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = self._peak = self._now()
            return
        self._start = self._peak = self._now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(self._stop,), daemon=True)
        self._thread.start()

    def _sample(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            self._peak = max(self._peak, self._now())

    def end(self) -> dict[str, int]:
        """{'start_bytes', 'peak_bytes'} of the window that just closed."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            assert self._stop is not None and self._thread is not None, "end() without begin()"
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, self._now())
        return {"start_bytes": int(self._start), "peak_bytes": int(peak)}


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now() -> float:
    return time.perf_counter()
