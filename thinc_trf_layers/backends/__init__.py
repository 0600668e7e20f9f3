"""Kernels behind the layers, chosen by the Ops in use."""
import importlib
from typing import Any, Optional

import numpy


def load_kernels() -> Optional[Any]:
    """The compiled kernels (``_kernels.pyx``), or None when the optional extension was
    not built (installed without a C compiler): the layers then use NumPy code."""
    try:
        return importlib.import_module("thinc_trf_layers.backends._kernels")
    except ImportError:
        return None


_KERNELS = load_kernels()


def zeros(xp: Any, size: int, dtype: Any) -> Any:
    """A 1-d array of ``size`` zeros: ``xp.zeros``, or for NumPy with the compiled kernels
    an empty array zeroed with streaming stores from 8 MiB on (``_kernels.zero_fill``):
    a batch's padded gradient, tens of MiB, then neither evicts the cache nor has its
    lines read before they are written (what its consumer pays for that:
    ``python -m benchmarks stream``)."""
    if xp is not numpy or _KERNELS is None:
        return xp.zeros((size,), dtype=dtype)
    out = numpy.empty((size,), dtype=dtype)
    _KERNELS.zero_fill(out.view("uint8"))
    return out


__all__ = ["load_kernels", "zeros"]
