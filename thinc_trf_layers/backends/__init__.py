"""Kernels behind the layers, chosen by the Ops in use."""
import importlib
from typing import Any, Optional


def load_kernels() -> Optional[Any]:
    """The compiled kernels (``_kernels.pyx``), or None when the optional extension was
    not built (installed without a C compiler): the layers then use NumPy code."""
    try:
        return importlib.import_module("thinc_trf_layers.backends._kernels")
    except ImportError:
        return None


__all__ = ["load_kernels"]
