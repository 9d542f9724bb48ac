"""Peak bytes of tensor storage allocated inside a window, on any device (CPU included).

A dispatch mode sees every tensor an operator returns; each new storage is counted until Python
frees it (a weakref finalizer). Tensors created before the window (the weights) are not counted, nor
their views (an output that shares an input's storage is not a new allocation), so
the peak is what the window's work adds: activations, logits, gradients, optimizer temporaries. On
CPU there is no allocator to ask (`torch.cuda.max_memory_allocated` is CUDA only), and the process
RSS also moves with the Python heap and the allocator's caching; this count is exact.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class TensorPeak(TorchDispatchMode):
    """`with TensorPeak() as meter: ...`, then `meter.peak_bytes`.

    >>> with TensorPeak() as meter:
    ...     x = torch.zeros(1000)
    ...     y = x + 1
    ...     del x, y
    >>> meter.peak_bytes, meter.live_bytes
    (8000, 0)
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, int] = {}
        self.live_bytes = 0
        self.peak_bytes = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = {_key(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for value in tree_flatten(out)[0]:
            # A view or an in-place result shares an input's storage: nothing new (a weight's `.t()`
            # view saved for the backward is the weight, made before the window).
            if isinstance(value, torch.Tensor) and value.device.type != "meta" and _key(value) not in inputs:
                self._count(value.untyped_storage())
        return out

    def _count(self, storage: torch.UntypedStorage) -> None:
        key, size = storage.data_ptr(), storage.nbytes()
        if not size or key in self._live:
            return
        self._live[key] = size
        self.live_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.live_bytes -= self._live.pop(key, 0)


def _key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()
