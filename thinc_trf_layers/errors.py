"""The errors the layers raise and the checks of arguments, inputs and gradients: each raises
before the layer changes any state, naming the layer, what it got and what it expected."""

import math
from typing import Any, List, Optional, Sequence, Tuple

from thinc.api import Ops
from thinc.types import Ragged


class LayerInputError(ValueError):
    """Raised when a layer is given input it cannot handle (wrong rank, index, lengths)."""


class LayerGradientError(ValueError):
    """Raised when a backprop callback is given a gradient of the wrong shape or type."""


def describe(obj: Any) -> str:
    if obj is None:
        return "None"
    if isinstance(obj, Ragged):
        data: Any = obj.dataXd
        rows = len(obj.lengths)
        return f"a Ragged with data of shape {tuple(data.shape)} ({data.dtype}) and {rows} rows"
    shape, dtype = getattr(obj, "shape", None), getattr(obj, "dtype", None)
    if shape is not None and dtype is not None:
        return f"an array of shape {tuple(shape)} ({dtype})"
    if isinstance(obj, (list, tuple)) and not obj:
        return f"an empty {type(obj).__name__}"
    if isinstance(obj, (list, tuple)):
        return f"a {type(obj).__name__} of {len(obj)} items, the first {describe(obj[0])}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


def input_error(layer: str, got: Any, expected: str, fix: Optional[str] = None) -> LayerInputError:
    return LayerInputError(
        f"{layer}: expected {expected}, got {describe(got)}." + (f" {fix}" if fix else "")
    )


TORCH_HINT = (
    "Our layers read NumPy or CuPy arrays: build the container from torch tensors with "
    "TransformerOutput.from_hf, which converts them."
)


def is_torch(X: Any) -> bool:
    return type(X).__module__.split(".")[0] == "torch"


# --- arguments ----------------------------------------------------------------------------


def check_int(layer: str, name: str, value: Any, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayerInputError(f"{layer}: expected an int {name}, got {value!r}.")
    if minimum is not None and value < minimum:
        raise LayerInputError(f"{layer}: expected {name} >= {minimum}, got {value!r}.")
    return value


def check_grad_factor(layer: str, grad_factor: Any) -> float:
    """``grad_factor`` as a float: a finite real number."""
    real = isinstance(grad_factor, (int, float)) and not isinstance(grad_factor, bool)
    if not real or not math.isfinite(grad_factor):
        raise LayerInputError(
            f"{layer}: expected grad_factor to be a finite float, got {grad_factor!r}."
        )
    return float(grad_factor)


# --- arrays and Ragged inputs ---------------------------------------------------------------


def check_array(layer: str, X: Any, ndim: int, what: str) -> None:
    if getattr(X, "shape", None) is None or getattr(X, "ndim", None) != ndim:
        raise input_error(layer, X, what)
    if getattr(X.dtype, "kind", "") != "f":
        raise input_error(layer, X, what + " with a floating-point dtype")


FLOATS = ("float16", "float32", "float64")


def _not_of_ops(xp: Any, obj: Any, what: str, convert: str) -> Optional[str]:
    """How to fix ``obj`` that is not an array of the model's Ops (None: it is one)."""
    if isinstance(obj, xp.ndarray):
        return None
    return (
        f"The {what} a {type(obj).__module__}.{type(obj).__qualname__}, not a "
        f"{getattr(xp, '__name__', 'xp')} array (the model's Ops): convert {convert}."
    )


def check_ragged(layer: str, ops: Ops, X: Any) -> Tuple[Any, Any]:
    """A pooling's input, a ``Ragged`` of ``ops`` arrays; returns its lengths and width. (A
    ``Wordpieces`` is valid when built: its callers skip this check, which would gather it.)"""
    xp = ops.xp
    if not isinstance(X, Ragged):
        raise input_error(
            layer,
            X,
            "a Ragged (rows of wordpiece vectors, one length per row)",
            "Convert a list of arrays with list2ragged(), or a padded batch with "
            "with_padded_mask(pooling).",
        )
    data, lengths = X.dataXd, X.lengths
    if not isinstance(data, xp.ndarray) or data.ndim != 2 or data.dtype.name not in FLOATS:
        expected = "a Ragged whose data is a 2d floating-point array (rows, width) of float16, "
        expected += "float32 or float64"
        torch = "a torch tensor: tensor.detach().cpu().numpy()"
        hint = _not_of_ops(xp, data, "data is", f"it with model.ops.asarray2f(data) ({torch})")
        raise input_error(layer, X, expected, hint)
    if not isinstance(lengths, xp.ndarray) or lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        expected = "Ragged lengths as a 1d integer array (int32 or int64)"
        fix = "them with model.ops.asarray1i(lengths) (a torch tensor: tensor.cpu().numpy())"
        raise input_error(layer, lengths, expected, _not_of_ops(xp, lengths, "lengths are", fix))
    n_rows = int(data.shape[0])
    low, high = (int(lengths.min()), int(lengths.max())) if lengths.shape[0] else (0, 0)
    if tuple(data.shape) == (0, 0) and low >= 0:
        return lengths, 0  # Thinc's Ragged keeps rows of width 0 as (0, 0) data: any number of them
    if low < 0:
        raise input_error(layer, X, f"non-negative Ragged lengths (found a length of {low})")
    if high <= n_rows and int(lengths.shape[0]) * high < 2**63:
        total = int(lengths.astype("int64", copy=False).sum())  # no partial sum can wrap
    else:
        total = sum(int(n) for n in lengths.tolist())
    if total != n_rows:
        expected = f"Ragged lengths that sum to the number of data rows ({n_rows})"
        raise input_error(layer, X, f"{expected}; they sum to {total}")
    if high > 2**31 - 1:
        expected = f"rows of at most {2**31 - 1} positions (a max counts them in int32)"
        fix = "Split the row into shorter ones."
        raise input_error(layer, X, f"{expected}, found a row of {high}", fix)
    return lengths, int(data.shape[1])


def check_3d(layer: str, where: str, T: Any, at: Any = None) -> None:
    """A floating-point (spans, wordpieces, width) array. ``where`` names it, with ``{}``
    for ``at`` if given: formatted only for a message (these checks run per Doc)."""
    kind = getattr(getattr(T, "dtype", None), "kind", None)
    if getattr(T, "ndim", None) != 3 or kind != "f":
        expected = "a floating-point array of shape (spans, wordpieces, width)"
        hint = TORCH_HINT if is_torch(T) else None
        raise input_error(layer, T, f"{where.format(at)} to be {expected}", hint)


def check_lengths(
    layer: str, where: str, lengths: List[int], shape: Tuple[int, ...], at: Any = None
) -> None:
    """One span length per span, each in [0, wordpieces]; ``where`` as for ``check_3d``."""
    n_spans, n_pieces = shape[0], shape[1]
    if len(lengths) != n_spans or any(not 0 <= n <= n_pieces for n in lengths):
        raise LayerInputError(
            f"{layer}: {where.format(at)} has shape {tuple(shape)} but its span lengths are "
            f"{lengths}; expected {int(n_spans)} lengths, each in [0, {int(n_pieces)}]."
        )


def check_index(layer: str, where: str, index: int, n: int, hint: str = "") -> int:
    if not -n <= index < n:
        raise LayerInputError(
            f"{layer}: tensor index {index} is out of range for {where}, which has {n} tensor(s); "
            f"expected an index in [{-n}, {n}).{hint}"
        )
    return index % n


def lengths_list(layer: str, where: str, lengths: Any) -> List[int]:
    kind = getattr(getattr(lengths, "dtype", None), "kind", None)
    if getattr(lengths, "ndim", None) != 1 or kind not in ("i", "u"):
        hint = TORCH_HINT if is_torch(lengths) else None
        raise input_error(layer, lengths, f"{where} lengths as a 1d int array", hint)
    return lengths.tolist()  # type: ignore[no-any-return]


def check_layers(
    layer: str, Xs: Any, *, n_layers: Optional[int] = None, min_layers: int = 1
) -> Tuple[Tuple[int, ...], Any]:
    """A mix's input: a list of Floats3d of one shape and dtype, ``n_layers`` of them (or
    at least ``min_layers``). Returns the shape and dtype."""
    count = f"{n_layers}" if n_layers is not None else f"at least {min_layers}"
    expected = (
        f"a list of {count} Floats3d arrays of shape (spans, wordpieces, width), one per hidden "
        "layer (embeddings first)"
    )
    per_doc = (
        "This looks like the per-Doc form (one list of layers per Doc, as trf2layers gives): map "
        f"the mix over the Docs with map_list({layer})."
    )
    if not isinstance(Xs, (list, tuple)):
        raise input_error(layer, Xs, expected)
    if (n_layers is not None and len(Xs) != n_layers) or len(Xs) < min_layers:
        hint = per_doc if Xs and isinstance(Xs[0], (list, tuple)) else None
        if not Xs:
            hint = (
                "An empty list (a batch without wordpieces) is accepted once the layer knows its "
                "width: initialize it with a sample first."
            )
        raise input_error(layer, Xs, expected, hint)
    for i, X in enumerate(Xs):
        if isinstance(X, (list, tuple)):
            raise input_error(f"{layer} (layer {i})", X, "a Floats3d array", per_doc)
        if getattr(X, "ndim", None) != 3 or getattr(getattr(X, "dtype", None), "kind", "") != "f":
            expected = "a Floats3d of shape (spans, wordpieces, width) with a floating-point dtype"
            raise input_error(f"{layer} (layer {i})", X, expected)
        if tuple(X.shape) != tuple(Xs[0].shape) or X.dtype != Xs[0].dtype:
            raise LayerInputError(
                f"{layer}: layer {i} is {describe(X)}, expected {describe(Xs[0])} like layer 0: "
                "all hidden layers of a batch must have the same shape and dtype."
            )
    return tuple(Xs[0].shape), Xs[0].dtype


def check_initialized(model: Any, params: Sequence[str], n_layers: int) -> None:
    """A clear error for a mix with parameters used before ``initialize``."""
    missing = [name for name in params if not model.has_param(name)]
    if missing:
        raise ValueError(
            f"{model.name}: the layer is used before it was initialized (its parameter(s) "
            f"{', '.join(repr(m) for m in missing)} are not allocated yet); expected "
            "model.initialize() to have been called first, on this layer or on the model it is "
            f"part of. No sample is needed: the layer count ({n_layers}) was given when the layer "
            "was made, so initialize() without X allocates them."
        )


# --- gradients ------------------------------------------------------------------------------


def check_grad(layer: str, dY: Any, shape: Sequence[int], dtype: Any) -> None:
    got = getattr(dY, "shape", None)
    if got is None or tuple(got) != tuple(shape) or dY.dtype != dtype:
        raise LayerGradientError(
            f"{layer}: backprop expected a gradient of shape {tuple(shape)} ({dtype}), the shape "
            f"and dtype of the layer's output, got {describe(dY)}."
        )


def check_list_grad(
    layer: str, dY: Any, shapes: Sequence[Tuple[int, ...]], dtypes: Sequence[Any]
) -> None:
    if not isinstance(dY, (list, tuple)) or len(dY) != len(shapes):
        raise LayerGradientError(
            f"{layer}: backprop expected a list of {len(shapes)} gradients, one per output, got "
            f"{describe(dY)}."
        )
    for i, (d, shape, dtype) in enumerate(zip(dY, shapes, dtypes)):
        check_grad(f"{layer} (item {i})", d, shape, dtype)
