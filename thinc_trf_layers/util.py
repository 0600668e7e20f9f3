"""Checks and error messages shared by the layers.

Every check raises before the layer changes any state, and every message names the
layer, what it got and what it expected.
"""
from typing import Any, List, Optional, Sequence, Tuple

import numpy
from thinc.api import Ops
from thinc.types import Ragged


class LayerInputError(ValueError):
    """Raised when a layer is given input it cannot handle (wrong rank, index, lengths)."""


class LayerGradientError(ValueError):
    """Raised when a backprop callback is given a gradient of the wrong shape or type."""


def describe(obj: Any) -> str:
    """A short description of a value for an error message."""
    if obj is None:
        return "None"
    if isinstance(obj, Ragged):
        return (
            f"a Ragged with data of shape {tuple(obj.dataXd.shape)} ({obj.dataXd.dtype}) "
            f"and {len(obj.lengths)} rows"
        )
    shape = getattr(obj, "shape", None)
    dtype = getattr(obj, "dtype", None)
    if shape is not None and dtype is not None:
        return f"an array of shape {tuple(shape)} ({dtype})"
    if isinstance(obj, (list, tuple)):
        kind = type(obj).__name__
        if not obj:
            return f"an empty {kind}"
        return f"a {kind} of {len(obj)} items, the first {describe(obj[0])}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


def input_error(layer: str, got: Any, expected: str, fix: Optional[str] = None) -> LayerInputError:
    msg = f"{layer}: expected {expected}, got {describe(got)}."
    if fix:
        msg += f" {fix}"
    return LayerInputError(msg)


def check_array(layer: str, X: Any, ndim: int, what: str) -> None:
    """Check that X is an array of rank ``ndim`` with a floating dtype."""
    shape = getattr(X, "shape", None)
    if shape is None or getattr(X, "ndim", None) != ndim:
        raise input_error(layer, X, what)
    if getattr(X.dtype, "kind", "") != "f":
        raise input_error(layer, X, what + " with a floating-point dtype")


def check_grad(layer: str, dY: Any, shape: Sequence[int], dtype: Any) -> None:
    """Check a gradient against the output it is the gradient of."""
    got_shape = getattr(dY, "shape", None)
    if got_shape is None or tuple(got_shape) != tuple(shape) or dY.dtype != dtype:
        raise LayerGradientError(
            f"{layer}: backprop expected a gradient of shape {tuple(shape)} ({dtype}), "
            f"the shape and dtype of the layer's output, got {describe(dY)}."
        )


def check_list_grad(layer: str, dY: Any, shapes: Sequence[Tuple[int, ...]], dtypes: Sequence[Any]) -> None:
    """Check a list of gradients against the list of outputs."""
    if not isinstance(dY, (list, tuple)) or len(dY) != len(shapes):
        raise LayerGradientError(
            f"{layer}: backprop expected a list of {len(shapes)} gradients, one per output, "
            f"got {describe(dY)}."
        )
    for i, (d, shape, dtype) in enumerate(zip(dY, shapes, dtypes)):
        check_grad(f"{layer} (item {i})", d, shape, dtype)


def is_empty(item: Any) -> bool:
    """True for an item with nothing in it: an array of size 0, an empty Ragged or list."""
    if isinstance(item, Ragged):
        return int(item.dataXd.size) == 0
    size = getattr(item, "size", None)
    if size is not None and not callable(size):
        return int(size) == 0
    if isinstance(item, (list, tuple)):
        return len(item) == 0
    return False


def zeros_view(ops: Ops, shape: Tuple[int, ...], dtype: Any) -> Any:
    """Zeros of ``shape`` that take no memory: a broadcast view of one zero (read-only on
    NumPy). Our layers give these as the gradient of inputs that received none (for every
    other tensor of every Doc: on NumPy an array over a zero of its own with strides 0,
    built in about 60% of the time ``broadcast_to`` takes)."""
    xp = ops.xp
    if xp is numpy:
        dt = numpy.dtype(dtype)
        if dt.itemsize <= 8 and not dt.hasobject:
            view = numpy.ndarray(shape, dtype=dt, buffer=numpy.zeros(1, dtype=dt), strides=(0,) * len(shape))
            view.flags.writeable = False
            return view
    return xp.broadcast_to(xp.zeros((), dtype=dtype), shape)


def shared_views(array: Any, n: int) -> List[Any]:
    """``n`` gradients that all equal ``array``: read-only views of it on NumPy (no copies;
    a consumer that must write copies first), ``array`` and ``n - 1`` copies elsewhere
    (CuPy arrays cannot be marked read-only, and writable aliases would be a trap)."""
    if n == 0:
        return []
    if isinstance(array, numpy.ndarray):
        array.flags.writeable = False
        return [array[...] for _ in range(n)]
    return [array] + [array.copy() for _ in range(n - 1)]


__all__ = [
    "LayerInputError",
    "LayerGradientError",
    "describe",
    "input_error",
    "check_array",
    "check_grad",
    "check_list_grad",
    "is_empty",
    "zeros_view",
    "shared_views",
]
