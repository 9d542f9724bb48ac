"""GPU kinds the planner knows: usable memory, memory bandwidth and dense bf16 throughput.

Memory is what `torch.cuda.get_device_properties(...).total_memory` reports (GiB), bandwidth and
FLOP/s are the vendors' data-sheet peaks (dense, no sparsity). `--gpu` picks one by name; without
it the planner describes the devices torch sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from mr1cli.core.registry import Registry

GIB = 1024**3


@dataclass(frozen=True)
class GpuKind:
    label: str
    memory_gib: float
    bandwidth_gbps: float  # GB/s, 1 GB = 1e9 bytes
    bf16_tflops: float  # dense
    matches: tuple[str, ...] = ()  # substrings of torch's device name, most specific first

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GIB


GPUS: Registry[GpuKind] = Registry("GPU kind")
for _name, _kind in {
    "h200": GpuKind("NVIDIA H200 141GB", 139.8, 4800.0, 989.0, ("H200",)),
    "h100-80gb": GpuKind("NVIDIA H100 SXM 80GB", 79.1, 3350.0, 989.0, ("H100 80GB", "H100 SXM")),
    "h100-pcie": GpuKind("NVIDIA H100 PCIe 80GB", 79.1, 2000.0, 756.0, ("H100 PCIe",)),
    "a100-80gb": GpuKind("NVIDIA A100 SXM 80GB", 79.2, 2039.0, 312.0, ("A100-SXM4-80GB", "A100 80GB")),
    "a100-40gb": GpuKind("NVIDIA A100 40GB", 39.4, 1555.0, 312.0, ("A100",)),
    "l40s": GpuKind("NVIDIA L40S 48GB", 44.4, 864.0, 362.0, ("L40S",)),
    "a6000": GpuKind("NVIDIA RTX A6000 48GB", 47.5, 768.0, 155.0, ("A6000",)),
    "rtx4090": GpuKind("NVIDIA GeForce RTX 4090 24GB", 23.6, 1008.0, 165.0, ("RTX 4090",)),
    "rtx3090": GpuKind("NVIDIA GeForce RTX 3090 24GB", 23.6, 936.0, 71.0, ("RTX 3090",)),
    "a10g": GpuKind("NVIDIA A10G 24GB", 22.0, 600.0, 125.0, ("A10G",)),
    "l4": GpuKind("NVIDIA L4 24GB", 22.0, 300.0, 121.0, ("L4",)),
}.items():
    GPUS.add(_name, _kind)


def gpu_kind(name: str) -> GpuKind:
    """A registered GPU kind by name.

    >>> gpu_kind("h100-80gb").memory_gib
    79.1
    """
    return GPUS.get(name)


def kind_for_device(device_name: str, total_memory_bytes: int) -> GpuKind:
    """The registered kind a detected device matches, with its real memory; an unknown device
    keeps its memory and gets a conservative A10G-class bandwidth and throughput.

    >>> kind_for_device("NVIDIA H100 80GB HBM3", 85 * 10**9).bandwidth_gbps
    3350.0
    """
    memory_gib = round(total_memory_bytes / GIB, 1)
    for name in GPUS.names():
        kind = GPUS.get(name)
        if any(key in device_name for key in kind.matches):
            return GpuKind(device_name, memory_gib, kind.bandwidth_gbps, kind.bf16_tflops, kind.matches)
    fallback = GPUS.get("a10g")
    return GpuKind(device_name, memory_gib, fallback.bandwidth_gbps, fallback.bf16_tflops)
