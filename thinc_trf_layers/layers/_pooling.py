"""Helpers shared by the pooling layers (private).

Every pooling layer carries ``attrs["pooling"]``, the name of what it computes
(``"sum"``, ``"mean"``, ``"max"``, ...). ``with_padded_mask`` reads it to run the pooling
on a padded batch directly; a pooling without a known name is run on a ``Ragged`` built
from the real positions instead.
"""
from typing import Any, Callable, Optional, Tuple

from thinc.api import Model
from thinc.types import Floats2d, Ragged

from ..backends.pooling import PoolingBackend, acc_dtype, get_pooling_backend
from ..util import check_grad, input_error

#: The poolings ``with_padded_mask`` computes on the padded array directly.
SUM_LIKE = ("sum", "mean", "mean_sqrt_len", "weighted_mean")


def backend(model: Model[Any, Any]) -> PoolingBackend:
    return get_pooling_backend(model.ops)


def ragged_input(model: Model[Any, Any], X: Any) -> Tuple[Any, Any]:
    """Check a pooling's input and return its data (N, W) and lengths (B,).

    Raises ``LayerInputError`` for anything but a ``Ragged`` with 2d floating-point data
    and 1d integer, non-negative lengths that sum to the number of rows, both arrays of
    the model's Ops (``model.ops.xp``), and no row longer than 2**31 - 1 positions (the
    max kernels count positions in int32). The sum is exact for any integer dtype: no
    wrap-around of int64 or uint64 lets lengths that do not fit pass.
    """
    name = model.name
    xp = model.ops.xp
    xp_name = getattr(xp, "__name__", "xp")
    if not isinstance(X, Ragged):
        raise input_error(
            name, X, "a Ragged (rows of wordpiece vectors, one length per row)",
            "Convert a list of arrays with list2ragged(), or a padded batch with "
            "with_padded_mask(pooling).",
        )
    data = X.dataXd
    if not isinstance(data, xp.ndarray) or data.ndim != 2 or data.dtype.kind != "f":
        raise input_error(
            name, X, "a Ragged whose data is a 2d floating-point array (rows, width)",
            None if isinstance(data, xp.ndarray) else (
                f"The data is a {type(data).__module__}.{type(data).__qualname__}, not a "
                f"{xp_name} array (the model's Ops): convert it with model.ops.asarray2f(data) "
                "(a torch tensor: tensor.detach().cpu().numpy())."
            ),
        )
    lengths = X.lengths
    if not isinstance(lengths, xp.ndarray):
        raise input_error(
            name, lengths, "Ragged lengths as a 1d integer array (int32 or int64)",
            f"The lengths are a {type(lengths).__module__}.{type(lengths).__qualname__}, not a "
            f"{xp_name} array (the model's Ops): convert them with model.ops.asarray1i(lengths) "
            "(a torch tensor: tensor.cpu().numpy()).",
        )
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise input_error(name, lengths, "Ragged lengths as a 1d integer array (int32 or int64)")
    n_rows = int(data.shape[0])
    low = int(lengths.min()) if lengths.shape[0] else 0
    high = int(lengths.max()) if lengths.shape[0] else 0
    if low < 0:
        raise input_error(name, X, f"non-negative Ragged lengths (found a length of {low})")
    if high <= n_rows and int(lengths.shape[0]) * high < 2**63:
        # every length in 0 .. n_rows and no partial sum above B * max: int64 is exact
        total = int(lengths.astype("int64", copy=False).sum())
    else:
        total = sum(int(n) for n in lengths.tolist())  # Python ints: exact, however large
    if total != n_rows:
        raise input_error(
            name, X, f"Ragged lengths that sum to the number of data rows ({n_rows}); "
            f"they sum to {total}",
        )
    max_row = 2**31 - 1
    if high > max_row:
        raise input_error(
            name, X, f"rows of at most {max_row} positions (the pooling kernels count positions "
            f"in int32), found a row of {high}",
            "Split the row into shorter ones.",
        )
    return data, lengths


def row_scale(model: Model[Any, Any], kind: str, lengths: Any, dtype: Any) -> Optional[Any]:
    """The factor (B,) a sum-like pooling multiplies each row's (weighted) sum by."""
    if kind == "sum":
        return None
    xp = model.ops.xp
    n = xp.maximum(lengths.astype(acc_dtype(dtype)), 1)
    if kind == "mean":
        return 1.0 / n
    if kind == "mean_sqrt_len":
        return 1.0 / xp.sqrt(n)
    if kind == "weighted_mean":
        return 2.0 / (n * (n + 1))
    raise ValueError(kind)


def sum_like_forward(
    model: Model[Ragged, Floats2d], X: Ragged, kind: str
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    """Forward of sum, mean, mean_sqrt_len and weighted_mean on a Ragged."""
    data, lengths = ragged_input(model, X)
    be = backend(model)
    dtype = data.dtype
    acc = acc_dtype(dtype)
    n_rows, width = (int(s) for s in data.shape)
    n_out = int(lengths.shape[0])
    weighted = kind == "weighted_mean"
    scale = row_scale(model, kind, lengths, dtype)
    Y = be.segment_sum(data, lengths, weighted=weighted, scale=scale).astype(dtype, copy=False)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, width), dtype)
        dX = be.sum_backprop(dY.astype(acc, copy=False), lengths, n_rows, weighted=weighted, scale=scale)
        return Ragged(dX.astype(dtype, copy=False), lengths)

    return Y, backprop


def pick_forward(
    model: Model[Ragged, Floats2d], X: Ragged, *, last: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    """Forward of first and last on a Ragged: one row of every segment, zeros for empty ones."""
    data, lengths = ragged_input(model, X)
    be = backend(model)
    dtype = data.dtype
    n_rows, width = (int(s) for s in data.shape)
    n_out = int(lengths.shape[0])
    Y, which = be.segment_pick(data, lengths, last=last)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, width), dtype)
        return Ragged(be.scatter_rows(dY, which, lengths, n_rows), lengths)

    return Y, backprop


__all__ = ["SUM_LIKE", "backend", "ragged_input", "row_scale", "sum_like_forward", "pick_forward"]
