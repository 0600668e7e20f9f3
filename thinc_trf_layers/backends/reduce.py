"""The reductions behind the pooling layers, with Thinc's names and argument order
(``reduce_mean(ops, X)``, ``backprop_reduce_mean(ops, dY, X)``), over any ``Ragged`` (a
``Wordpieces`` is read where its rows lie). Each has two implementations (docs/design.md):
compiled (``_kernels.pyx``) for NumpyOps with float32/float64 data, array-generic for the rest.

The rules hold on both: a row of length zero gives zeros and a zero gradient; the width
is kept when no row has a position; float16 is summed in float32 (float64 in float64),
and the output and the gradients keep the input's dtype; lengths may be int32 or int64;
a NaN in a row gives NaN in that row only (a max takes the first NaN, else the first
maximum, and its gradient goes there). ``reduce_first`` and ``reduce_last`` are sums over
one picked row per row. The callers check their input (``errors.check_ragged``).
"""

from typing import Any, Optional, Tuple, cast

import numpy
from thinc.api import CupyOps, NumpyOps, Ops
from thinc.types import Floats2d, Ints2d, Ragged

from ..wordpieces import Wordpieces, host
from . import COMPILED

_REAL = (numpy.dtype("float32"), numpy.dtype("float64"))
#: The most elements the generic max gathers into one padded block.
GATHER_BUDGET = 1 << 24


def acc_dtype(dtype: Any) -> str:
    """The dtype sums accumulate in: float64 for float64 data, float32 otherwise."""
    return "float64" if numpy.dtype(dtype) == numpy.float64 else "float32"


def _pieces(ops: Ops, X: Ragged) -> Tuple[Wordpieces, bool]:
    """``X`` as pieces, and whether the compiled kernels take it."""
    W = Wordpieces.from_ragged(ops, X)
    return W, COMPILED is not None and isinstance(ops, NumpyOps) and W.dtype in _REAL


def _grad(X: Ragged, grads: Any) -> Ragged:
    """The gradient of ``X`` from the gradients of the arrays it is seen in as pieces."""
    return X.with_arrays(grads) if isinstance(X, Wordpieces) else Ragged(grads[0], X.lengths)


def _where(W: Wordpieces) -> Tuple[Any, ...]:
    return W.array, W.start, W.length, W.row_ptr


def _opt(a: Optional[Any], W: Wordpieces) -> Any:
    """An optional vector (a factor per row, a weight per position) for the kernels."""
    return numpy.empty(0, W.dtype) if a is None else numpy.ascontiguousarray(a, dtype=W.dtype)


def _fill(W: Wordpieces, d_sum: Any, scale: Any, weights: Any, d_max: Any, which: Any) -> Any:
    """The compiled gradient of ``W``'s arrays (``d_sum``, ``d_max``: row-contiguous or None)."""
    flat, grads = W.zeros(fill=False)
    none = numpy.empty((0, W.width), W.dtype)
    d_sum, d_max = (none if d is None else d for d in (d_sum, d_max))
    which = numpy.empty((0, W.width), "int32") if which is None else which
    COMPILED.pieces_fill(
        flat, W.offsets, *_where(W), d_sum, _opt(scale, W), _opt(weights, W), d_max, which
    )
    return grads


def _scale(W: Wordpieces, kind: str, dtype: Any) -> Optional[Any]:
    """The factor (B,) a sum is multiplied by: 1 / n (mean), 1 / sqrt(n), 2 / (n (n + 1))
    (the weighted mean), none for a sum; n at least 1."""
    if kind == "sum":
        return None
    n = numpy.maximum(numpy.diff(W.row_ends), 1).astype("float64")
    factor = 1.0 / (
        n if kind == "mean" else numpy.sqrt(n) if kind == "mean_sqrt_len" else n * (n + 1) / 2
    )
    return factor.astype(dtype)


def rows_of(ops: Ops, lengths: Any) -> Any:
    """The row of every position of a Ragged with these lengths (an ``ops.xp`` int64 array)."""
    n = host(lengths).astype("int64")
    return ops.xp.asarray(numpy.repeat(numpy.arange(len(n)), n))


def _row_index(W: Wordpieces) -> Tuple[Any, Any]:
    """For every gathered row: its row of the Ragged and its 1-based position there (host)."""
    n = numpy.diff(W.row_ends)
    rows = numpy.repeat(numpy.arange(len(n)), n)
    return rows, numpy.arange(int(n.sum())) - numpy.repeat(W.row_ends[:-1], n) + 1


# --- sums: sum, mean, mean_sqrt_len, weighted_mean, and first / last as picked sums --------------


def _sum(ops: Ops, X: Ragged, kind: str, weights: Optional[Any] = None) -> Floats2d:
    W, compiled = _pieces(ops, X)
    weights = _row_index(W)[1] if kind == "weighted_mean" else weights
    B = len(W.row_ptr) - 1
    if compiled:
        out = numpy.empty((B, W.width), dtype=W.dtype)
        scale = _opt(_scale(W, kind, W.dtype), W)
        COMPILED.pieces_sum(W.arrays, *_where(W), out, _opt(weights, W), scale)
        return out  # type: ignore[return-value]
    xp, acc = ops.xp, acc_dtype(W.dtype)
    data = xp.ascontiguousarray(W.dataXd, dtype=acc)
    if weights is not None:
        data = data * xp.asarray(weights, dtype=acc)[:, None]
    if isinstance(ops, CupyOps):
        Y = cast(Any, ops).reduce_sum(data, ops.asarray1i(W.lengths))  # Thinc's CUDA kernel
    else:
        Y = xp.zeros((B, W.width), dtype=acc)
        if int(data.size):
            ops.scatter_add(Y, xp.asarray(_row_index(W)[0], dtype="int32"), data)
    scale = _scale(W, kind, acc)
    if scale is not None:
        Y *= xp.asarray(scale)[:, None]
    return Y.astype(W.dtype, copy=False)  # type: ignore[no-any-return]


def _backprop_sum(
    ops: Ops, dY: Floats2d, X: Ragged, kind: str, pick: Optional[int] = None, weights: Any = None
) -> Ragged:
    W, compiled = _pieces(ops, X)
    P = W if pick is None else W.pick(pick, per_piece=False)
    weights = _row_index(P)[1] if kind == "weighted_mean" else weights
    if compiled:
        scale = _scale(P, kind, P.dtype)
        return _grad(X, _fill(P, numpy.ascontiguousarray(dY), scale, weights, None, None))
    return _grad(X, P.scatter(_rows_grad(ops, dY, P, kind, weights).astype(P.dtype, copy=False)))


def _rows_grad(ops: Ops, dY: Floats2d, W: Wordpieces, kind: str, weights: Any = None) -> Any:
    """The generic gradient of a sum over the gathered rows (N, width), in the sum's dtype."""
    xp, acc = ops.xp, acc_dtype(W.dtype)
    d = xp.asarray(dY, dtype=acc)
    scale = _scale(W, kind, acc)
    if scale is not None:
        d = d * xp.asarray(scale)[:, None]
    if isinstance(ops, CupyOps):
        dR = cast(Any, ops).backprop_reduce_sum(xp.ascontiguousarray(d), ops.asarray1i(W.lengths))
    else:
        dR = d[xp.asarray(_row_index(W)[0], dtype="int64")]
    if weights is not None:
        dR *= xp.asarray(weights, dtype=acc)[:, None]
    return dR


def reduce_sum(ops: Ops, X: Ragged, weights: Optional[Any] = None) -> Floats2d:
    """The sum of every row's vectors; with ``weights`` (one per row of the data, in
    order), the weighted sum."""
    return _sum(ops, X, "sum", weights)


def backprop_reduce_sum(
    ops: Ops, d_sums: Floats2d, X: Ragged, weights: Optional[Any] = None
) -> Ragged:
    return _backprop_sum(ops, d_sums, X, "sum", weights=weights)


def reduce_mean(ops: Ops, X: Ragged) -> Floats2d:
    """The mean of every row's vectors."""
    return _sum(ops, X, "mean")


def backprop_reduce_mean(ops: Ops, d_means: Floats2d, X: Ragged) -> Ragged:
    return _backprop_sum(ops, d_means, X, "mean")


def reduce_mean_sqrt_len(ops: Ops, X: Ragged) -> Floats2d:
    """The sum of every row's vectors over the square root of its length."""
    return _sum(ops, X, "mean_sqrt_len")


def backprop_reduce_mean_sqrt_len(ops: Ops, dY: Floats2d, X: Ragged) -> Ragged:
    return _backprop_sum(ops, dY, X, "mean_sqrt_len")


def reduce_weighted_mean(ops: Ops, X: Ragged) -> Floats2d:
    """The mean of every row's vectors, the k-th (1-based) weighted by k."""
    return _sum(ops, X, "weighted_mean")


def backprop_reduce_weighted_mean(ops: Ops, dY: Floats2d, X: Ragged) -> Ragged:
    return _backprop_sum(ops, dY, X, "weighted_mean")


def reduce_first(ops: Ops, X: Ragged) -> Floats2d:
    """The first vector of every row (zeros for an empty row)."""
    return _sum(ops, Wordpieces.from_ragged(ops, X).pick(0, per_piece=False), "sum")


def backprop_reduce_first(ops: Ops, d_firsts: Floats2d, X: Ragged) -> Ragged:
    return _backprop_sum(ops, d_firsts, X, "sum", pick=0)


def reduce_last(ops: Ops, X: Ragged) -> Floats2d:
    """The last vector of every row (zeros for an empty row)."""
    return _sum(ops, Wordpieces.from_ragged(ops, X).pick(-1, per_piece=False), "sum")


def backprop_reduce_last(ops: Ops, d_lasts: Floats2d, X: Ragged) -> Ragged:
    return _backprop_sum(ops, d_lasts, X, "sum", pick=-1)


# --- max, and mean and max in one pass -----------------------------------------------------------


def _max(ops: Ops, X: Ragged, with_mean: bool) -> Tuple[Floats2d, Ints2d]:
    W, compiled = _pieces(ops, X)
    B, width = len(W.row_ptr) - 1, W.width
    shape = (B, 2 * width if with_mean else width)
    if compiled:
        # the values and the positions in one allocation: two fresh ones of the same size
        # took twice the time of the kernel on many short rows (glibc's heap thresholds)
        n_Y = B * shape[1] * W.dtype.itemsize
        block = numpy.empty(n_Y + B * width * 4, dtype="uint8")
        Y = block[:n_Y].view(W.dtype).reshape(shape)
        which = block[n_Y:].view("int32").reshape(B, width)
        sums = Y[:, :width] if with_mean else numpy.empty((0, width), W.dtype)
        scale = _opt(_scale(W, "mean", W.dtype) if with_mean else None, W)
        Ymax = Y[:, width:] if with_mean else Y
        COMPILED.pieces_max(W.arrays, *_where(W), Ymax, which, sums, scale)
        return Y, which  # type: ignore[return-value]
    xp = ops.xp
    data, n = W.dataXd, numpy.diff(W.row_ends)
    Y, which = xp.empty(shape, dtype=W.dtype), xp.zeros((B, width), dtype="int32")
    Ymax = Y[:, width:] if with_mean else Y
    Ymax[...] = 0
    step = max(1, GATHER_BUDGET // max(1, int(n.max(initial=0)) * width))
    for lo in range(0, B if int(data.size) else 0, step):  # padded blocks of rows, -inf at padding
        hi, L = min(B, lo + step), int(n[lo : lo + step].max(initial=0))
        if L == 0:
            continue
        offsets = numpy.arange(L)
        real = offsets[None, :] < n[lo:hi, None]
        G = xp.where(
            xp.asarray(real)[:, :, None],
            data[xp.asarray(numpy.where(real, W.row_ends[lo:hi, None] + offsets, 0))],
            -xp.inf,
        )
        # the first NaN, else the first maximum: said outright, as CuPy's argmax may take
        # a later NaN (its reduction compares two NaNs without their positions)
        nan = xp.isnan(G)
        at = xp.where(nan.any(axis=1), nan.argmax(axis=1), G.argmax(axis=1))
        best = xp.take_along_axis(G, at[:, None, :], axis=1)[:, 0]
        Ymax[lo:hi] = xp.where(xp.asarray(n[lo:hi] > 0)[:, None], best, 0)
        which[lo:hi] = at
    if with_mean:
        Y[:, :width] = _sum(ops, W, "mean")
    return Y, which


def _backprop_max(ops: Ops, dY: Floats2d, which: Ints2d, X: Ragged, with_mean: bool) -> Ragged:
    W, compiled = _pieces(ops, X)
    width = W.width
    dY = ops.xp.ascontiguousarray(dY)
    d_max, d_mean = (dY[:, width:], dY[:, :width]) if with_mean else (dY, None)
    if compiled:
        scale = _scale(W, "mean", W.dtype) if with_mean else None
        return _grad(X, _fill(W, d_mean, scale, None, d_max, which))
    xp = ops.xp
    n = numpy.diff(W.row_ends)
    dR = xp.zeros((int(n.sum()), width), dtype=W.dtype)
    if d_mean is not None:
        dR += _rows_grad(ops, d_mean, W, "mean").astype(W.dtype, copy=False)
    real = numpy.flatnonzero(n > 0)
    if len(real) and width:
        rows = xp.asarray(W.row_ends[real])[:, None] + which[xp.asarray(real)]
        dR[rows, xp.arange(width)[None, :]] += d_max[xp.asarray(real)]
    return _grad(X, W.scatter(dR))


def reduce_max(ops: Ops, X: Ragged) -> Tuple[Floats2d, Ints2d]:
    """The elementwise max of every row's vectors, and the position of each (int32)."""
    return _max(ops, X, False)


def backprop_reduce_max(ops: Ops, d_maxes: Floats2d, which: Ints2d, X: Ragged) -> Ragged:
    return _backprop_max(ops, d_maxes, which, X, False)


def reduce_mean_max(ops: Ops, X: Ragged) -> Tuple[Floats2d, Ints2d]:
    """``[mean | max]`` of every row (B, 2 * width) and the max's positions, one pass."""
    return _max(ops, X, True)


def backprop_reduce_mean_max(ops: Ops, dY: Floats2d, which: Ints2d, X: Ragged) -> Ragged:
    return _backprop_max(ops, dY, which, X, True)


# --- attention and the generalized mean: rows that tile one array --------------------------------


def _tiling(ops: Ops, X: Ragged) -> Tuple[Any, Any, bool]:
    """The rows of ``X`` (gathered), their lengths, and whether the compiled kernels take them."""
    data = ops.xp.ascontiguousarray(X.dataXd)
    if tuple(data.shape) == (0, 0):  # Thinc's Ragged keeps rows of width 0 as (0, 0) data
        data = ops.xp.zeros((int(X.lengths.sum()), 0), dtype=data.dtype)
    compiled = COMPILED is not None and isinstance(ops, NumpyOps) and data.dtype in _REAL
    return data, X.lengths, compiled


def reduce_attention(ops: Ops, X: Ragged, q: Any) -> Tuple[Floats2d, Any]:
    """Attention pooling: ``sum_r a_r x_r`` over every row, ``a`` the softmax of ``x_r . q``
    within the row (in the sum's dtype), and ``a``."""
    data, lengths, _ = _tiling(ops, X)
    xp, acc = ops.xp, acc_dtype(data.dtype)
    R = Ragged(data.astype(acc, copy=False), lengths)
    scores = R.dataXd @ q.astype(acc, copy=False)
    rows = rows_of(ops, lengths)
    e = xp.exp(scores - reduce_max(ops, Ragged(scores[:, None], lengths))[0][rows, 0])
    a = e / reduce_sum(ops, Ragged(e[:, None], lengths))[rows, 0]
    return reduce_sum(ops, R, weights=a), a


def backprop_reduce_attention(
    ops: Ops, dY: Floats2d, X: Ragged, q: Any, a: Any, Y: Any
) -> Tuple[Any, Any]:
    """The gradients of ``reduce_attention`` (``Y`` its output, in the sum's dtype): of the
    rows (N, width) and of ``q``, in the sum's dtype. With ``ds_r = a_r (x_r . dY[b] -
    dY[b] . Y[b])``: ``dx_r = a_r dY[b] + ds_r q`` and ``dq = sum_r ds_r x_r``."""
    data, lengths, compiled = _tiling(ops, X)
    xp, acc = ops.xp, acc_dtype(data.dtype)
    Xa, qa, d = data.astype(acc, copy=False), q.astype(acc), xp.ascontiguousarray(dY, dtype=acc)
    if compiled:
        dX, dq = numpy.empty(Xa.shape, acc), numpy.empty(qa.shape, acc)
        COMPILED.attention_grad(Xa, numpy.asarray(lengths, dtype="int64"), a, d, Y, qa, dX, dq)
        return dX, dq
    rows = rows_of(ops, lengths)
    G = d[rows]
    ds = a * ((G * Xa).sum(axis=1) - (d * Y).sum(axis=1)[rows])
    G *= a[:, None]
    G += ds[:, None] * qa[None, :]
    return G, ds @ Xa


def reduce_gem(ops: Ops, X: Ragged, p: float, eps: float) -> Floats2d:
    """``sum_k max(x_k, eps) ** p`` over every row, in the sum's dtype (NaN stays NaN)."""
    data, lengths, compiled = _tiling(ops, X)
    if compiled:
        out = numpy.empty((len(lengths), data.shape[1]), dtype=data.dtype)
        none = numpy.empty((0, data.shape[1]), data.dtype)
        COMPILED.gem(data, numpy.asarray(lengths, dtype="int64"), p, eps, out, none, none)
        return out  # type: ignore[return-value]
    Z = ops.xp.maximum(data.astype(acc_dtype(data.dtype)), eps)
    return reduce_sum(ops, Ragged(Z**p, lengths))


def backprop_reduce_gem(ops: Ops, d: Any, X: Ragged, p: float, eps: float) -> Any:
    """The gradient of ``reduce_gem`` divided by ``p``, times ``d`` (B, width): the rows'
    ``max(x, eps) ** (p - 1) * (x > eps) * d[b]`` (the clamp has no gradient)."""
    data, lengths, compiled = _tiling(ops, X)
    if compiled and int(data.size):
        dX = numpy.empty(data.shape, dtype=data.dtype)
        none = numpy.empty((0, data.shape[1]), data.dtype)
        d = numpy.ascontiguousarray(d, dtype=data.dtype)
        COMPILED.gem(data, numpy.asarray(lengths, dtype="int64"), p, eps, none, d, dX)
        return dX
    Z = ops.xp.maximum(data.astype(acc_dtype(data.dtype)), eps)
    return Z ** (p - 1) * (data > eps) * d[rows_of(ops, lengths)]
