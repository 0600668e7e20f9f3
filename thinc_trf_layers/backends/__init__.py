"""Kernels behind the layers: the reductions (``reduce.py``) and the layer mixes
(``mix.py``), with the optional compiled extension (``_kernels.pyx``)."""

import importlib
from typing import Any

#: The compiled kernels for NumpyOps, or None when the optional extension was not built
#: (typed Any: callers test it against None first).
COMPILED: Any
try:
    COMPILED = importlib.import_module("thinc_trf_layers.backends._kernels")
except ImportError:  # installed without a C compiler: the array-generic code runs
    COMPILED = None

__all__ = ["COMPILED"]
