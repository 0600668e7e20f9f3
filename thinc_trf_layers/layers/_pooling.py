"""Helpers shared by the pooling layers (private).

Each pooling's forward takes a ``Ragged``; when that Ragged is a ``Wordpieces`` (the
real rows of padded arrays: from ``trf2ragged`` or ``with_padded_mask``), the reductions
here run where the rows lie (``pool_wordpieces``) and give back a ``Wordpieces``
gradient over padded arrays. The kernels are the backend's for the model's Ops
(``backends.pooling.get_pooling_backend``).
"""
from typing import Any, Callable, List, Optional, Tuple

from thinc.api import Model
from thinc.types import Floats2d, Ragged

from ..backends.pooling import PoolingBackend, acc_dtype, get_pooling_backend
from ..util import check_grad, input_error
from ..wordpieces import Wordpieces, zeros_blocks

#: The poolings whose value is a (scaled, maybe position-weighted) sum of the rows.
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


#: Rows at least this long on average are reduced one at a time by the layers that
#: have a per-row path (attention_pool, reduce_gem): matrix products on each row's own
#: data beat (rows, width) temporaries once the Python loop is short.
LONG_ROWS = 32


def long_segments(n_rows: int, n_segments: int) -> bool:
    """Whether to loop over the rows (few and long) rather than work on all of them."""
    return n_segments > 0 and n_rows >= LONG_ROWS * n_segments


def segment_bounds(lengths: Any) -> List[Tuple[int, int]]:
    """(start, end) of every row of a Ragged, as Python ints."""
    out, at = [], 0
    for n in lengths.tolist():
        out.append((at, at + int(n)))
        at += int(n)
    return out


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
    if isinstance(X, Wordpieces):
        done = pool_wordpieces(model, X, kind)
        if done is not None:
            return done
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
    if isinstance(X, Wordpieces):
        done = pool_wordpieces(model, X, "last" if last else "first")
        if done is not None:
            return done
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


# --- pooling where the wordpieces lie (a Wordpieces input) ---------------------------------


def pool_wordpieces(
    model: Model[Ragged, Floats2d], X: Wordpieces, kind: str
) -> Optional[Tuple[Floats2d, Callable[[Floats2d], Ragged]]]:
    """``kind`` ("sum", "mean", "mean_sqrt_len", "weighted_mean", "max", "mean_max",
    "first", "last") over the rows of ``X`` read inside its padded arrays; the gradient
    is a ``Wordpieces`` over padded gradients written in one pass each, padding included.
    Backends with pieces kernels (the compiled one, float32/float64) pool the whole batch
    in one call (``_pool_pieces``); the others get one segment-kernel call per array,
    every span a segment, and the spans of a row are combined after. None where this does
    not apply (the caller then pools ``X.data``): on the per-array path, a
    position-weighted mean over rows that span several pieces."""
    be = backend(model)
    if (
        kind not in ("first", "last") and be.pieces and be.pieces_dtype(X.dtype) and X.width > 0
        and all(T is not None or not n for T, n in zip(X.blocks, X.span_lengths))
    ):
        return _pool_pieces(model, X, kind, be)
    xp = model.ops.xp
    dtype, W = X.dtype, X.width
    acc = acc_dtype(dtype)
    counts = X.pieces_per_segment
    B = len(counts)
    piece_lengths = [n for lengths in X.span_lengths for n in lengths]
    seg_of_piece = [b for b, k in enumerate(counts) for _ in range(k)]
    if kind == "weighted_mean" and any(
        sum(1 for n in piece_lengths[p0 : p0 + k] if n) > 1 for p0, k in zip(_offsets(counts), counts)
    ):
        return None
    blocks = X.flat_blocks()
    bounds = list(zip(_offsets([len(n) for n in X.span_lengths]), [len(n) for n in X.span_lengths]))
    seg_index = xp.asarray(seg_of_piece, dtype="int64")
    lengths = X.lengths
    out_width = 2 * W if kind == "mean_max" else W
    if kind in ("first", "last"):
        return _pick_wordpieces(model, X, blocks, bounds, seg_index, kind == "last")
    sum_kind = "mean" if kind == "mean_max" else kind
    seg_scale = row_scale(model, sum_kind, lengths, dtype) if kind != "max" else None
    scale = seg_scale[seg_index] if seg_scale is not None else None
    weighted = kind == "weighted_mean"
    parts, whiches = [], []
    for (flat, starts, lens, _), (p0, k) in zip(blocks, bounds):
        if flat is None:
            continue
        sc = scale[p0 : p0 + k] if scale is not None else None
        if kind in SUM_LIKE:
            parts.append(be.segment_sum(flat, lens, weighted=weighted, starts=starts, scale=sc))
        elif kind == "max":
            Yb, which = be.segment_max(flat, lens, starts=starts)
            parts.append(Yb)
            whiches.append(which)
        else:
            Yb, which = be.segment_mean_max(flat, lens, sc, starts=starts)
            parts.append(Yb)
            whiches.append(which)
    P = len(seg_of_piece)
    pieces = _concat(xp, parts, (P, out_width), acc if kind in SUM_LIKE else dtype)
    which_all: Any = _concat(xp, whiches, (P, W), "int32") if whiches else None
    max_cols = slice(W, 2 * W) if kind == "mean_max" else slice(0, W)
    Y, winner = _combine(xp, pieces, counts, piece_lengths, kind, W)
    Y = Y.astype(dtype, copy=False)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (B, out_width), dtype)
        d = dY.astype(acc, copy=False) if kind in SUM_LIKE else dY
        d_pieces = d[seg_index]
        if winner is not None:
            d_pieces = xp.ascontiguousarray(d_pieces)
            d_pieces[:, max_cols] *= winner
        grads: List[Optional[Any]] = []
        for (flat, starts, lens, L), (p0, k), T in zip(blocks, bounds, X.blocks):
            if flat is None or T is None:
                grads.append(xp.zeros(tuple(T.shape), dtype=dtype) if T is not None else None)
                continue
            n_rows = int(flat.shape[0])
            dp = d_pieces[p0 : p0 + k]
            sc = scale[p0 : p0 + k] if scale is not None else None
            if kind in SUM_LIKE:
                dX = be.sum_backprop(dp, lens, n_rows, weighted=weighted, starts=starts, block=L, scale=sc)
            elif kind == "max":
                dX = be.max_backprop(dp, which_all[p0 : p0 + k], lens, n_rows, starts=starts, block=L)
            else:
                dX = be.mean_max_backprop(dp, which_all[p0 : p0 + k], lens, n_rows, sc, starts=starts, block=L)
            grads.append(dX.astype(dtype, copy=False).reshape(tuple(T.shape)))
        return X.with_blocks(grads)

    return Y, backprop


def _pool_pieces(
    model: Model[Ragged, Floats2d], X: Wordpieces, kind: str, be: PoolingBackend
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    """``pool_wordpieces`` through the backend's pieces kernels: one call pools the whole
    batch (every span of every array a piece, the pieces of a row taken in order, as if
    gathered), one call writes the gradient of every array into one buffer, padding
    included; each array's gradient is a view of it."""
    xp = model.ops.xp
    dtype, W = X.dtype, X.width
    counts = X.pieces_per_segment
    B = len(counts)
    arrays: List[Any] = []
    block: List[int] = []
    starts: List[int] = []
    lens: List[int] = []
    tiles: List[int] = [0]
    grad_starts: List[int] = []
    offsets: List[Optional[int]] = []  # where each array's gradient starts in the buffer
    n_rows = 0
    for T, lengths, firsts in zip(X.blocks, X.span_lengths, X.span_firsts):
        if T is None:
            offsets.append(None)
            continue
        S, L = int(T.shape[0]), int(T.shape[1])
        offsets.append(n_rows)
        if S:
            a = len(arrays)
            arrays.append((T if T.flags.c_contiguous else xp.ascontiguousarray(T)).reshape(S * L, W))
            for s, (n, f) in enumerate(zip(lengths, firsts)):
                block.append(a)
                starts.append(s * L + f)
                lens.append(n)
                grad_starts.append(n_rows + s * L + f)
                tiles.append(n_rows + (s + 1) * L)
        n_rows += S * L
    seg_ptr = xp.asarray(_offsets(counts) + [sum(counts)], dtype="int64")
    lens_a = xp.asarray(lens, dtype="int64")
    scale = row_scale(model, "mean" if kind == "mean_max" else kind, X.lengths, dtype) if kind != "max" else None
    Y, which = be.pieces_pool(
        kind, arrays, xp.asarray(block, dtype="int64"), xp.asarray(starts, dtype="int64"), lens_a, seg_ptr,
        scale, W, dtype,
    )
    out_width = int(Y.shape[1])
    tiles_a = xp.asarray(tiles, dtype="int64")
    grad_starts_a = xp.asarray(grad_starts, dtype="int64")
    shapes = X.block_shapes()

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (B, out_width), dtype)
        dX = be.pieces_grad(kind, n_rows, tiles_a, grad_starts_a, lens_a, seg_ptr, dY, scale, which)
        grads: List[Optional[Any]] = []
        for off, shape in zip(offsets, shapes):
            if off is None or shape is None:
                grads.append(None)
                continue
            size = int(shape[0]) * int(shape[1])
            grads.append(dX[off : off + size].reshape(shape))
        return X.with_blocks(grads)

    return Y, backprop


def _offsets(counts: List[int]) -> List[int]:
    out, at = [], 0
    for k in counts:
        out.append(at)
        at += k
    return out


def _concat(xp: Any, parts: List[Any], shape: Tuple[int, int], dtype: Any) -> Any:
    if len(parts) == 1 and tuple(parts[0].shape) == shape:
        return parts[0]
    if parts:
        return xp.concatenate(parts, axis=0)
    return xp.zeros(shape, dtype=dtype)


def _combine(xp: Any, pieces: Any, counts: List[int], piece_lengths: List[int], kind: str, W: int) -> Tuple[Any, Any]:
    """Per-row results from per-piece ones, and for a max the (pieces, W) 0/1 mask of
    the piece that holds each column's maximum (None when every row is one piece).

    Sums add up over a row's pieces; a max is the first NaN, else the first maximum,
    of the row's non-empty pieces (a row without one gives zeros). The pieces of each row
    are gathered into a (rows, most pieces, W) block, so that no value of one row (a NaN,
    an infinity) can reach another's result."""
    if all(k == 1 for k in counts):
        return pieces, None
    B, k_max = len(counts), max(counts, default=0)
    Y = xp.zeros((B, int(pieces.shape[1])), dtype=pieces.dtype)
    if k_max == 0:  # no row has a piece
        return Y, xp.zeros((0, W), dtype=pieces.dtype)
    offsets = _offsets(counts)
    if kind != "max":
        cols = slice(0, W) if kind == "mean_max" else slice(None)
        idx, ok = _piece_table(xp, [list(range(p0, p0 + k)) for p0, k in zip(offsets, counts)], k_max)
        Y[:, cols] = xp.where(ok[:, :, None], pieces[idx][:, :, cols], 0).sum(axis=1)
    if kind not in ("max", "mean_max"):
        return Y, None
    cols = slice(W, 2 * W) if kind == "mean_max" else slice(0, W)
    real = [[p for p in range(p0, p0 + k) if piece_lengths[p]] for p0, k in zip(offsets, counts)]
    idx, ok = _piece_table(xp, real, k_max)
    # a running maximum over each row's pieces (real ones first, then -inf): a later piece
    # wins only with a larger value or the first NaN
    values = pieces[:, cols]
    best = xp.where(ok[:, :1], values[idx[:, 0]], -xp.inf)
    which = xp.zeros((B, W), dtype="int32")  # the slot of each column's winning piece
    for j in range(1, k_max):
        v = xp.where(ok[:, j : j + 1], values[idx[:, j]], -xp.inf)
        better = (v > best) | (xp.isnan(v) & ~xp.isnan(best))
        best = xp.where(better, v, best)
        which[better] = j
    Y[:, cols] = xp.where(ok[:, :1], best, 0)
    # every piece sits in one slot of one row: its mask is where that slot won
    winner = xp.zeros((int(pieces.shape[0]), W), dtype=pieces.dtype)
    for j in range(k_max):
        rows = xp.nonzero(ok[:, j])[0]
        winner[idx[rows, j]] = which[rows] == j
    return Y, winner


def _piece_table(xp: Any, groups: List[List[int]], width: int) -> Tuple[Any, Any]:
    """``groups`` (lists of piece indices) as a (len(groups), width) index array padded
    with 0 and the mask of its real entries."""
    idx = [g + [0] * (width - len(g)) for g in groups]
    ok = [[True] * len(g) + [False] * (width - len(g)) for g in groups]
    return xp.asarray(idx, dtype="int64").reshape(len(groups), width), xp.asarray(ok, dtype="bool").reshape(
        len(groups), width
    )


def _pick_wordpieces(
    model: Model[Ragged, Floats2d], X: Wordpieces, blocks: List[Tuple[Optional[Any], Any, Any, int]],
    bounds: List[Tuple[int, int]], seg_index: Any, last: bool,
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    """first / last: the first row of a segment's first non-empty piece (or the last row
    of its last one), zeros for empty segments. Index arithmetic on arrays, one gather
    per array."""
    xp = model.ops.xp
    dtype, W = X.dtype, X.width
    B = len(X.pieces_per_segment)
    int64 = "int64"
    lens = xp.concatenate([n for _, _, n, _ in blocks]) if blocks else xp.zeros((0,), dtype=int64)
    starts = xp.concatenate([s for _, s, _, _ in blocks]) if blocks else xp.zeros((0,), dtype=int64)
    block_of_piece = xp.asarray([a for a, (_, k) in enumerate(bounds) for _ in range(k)], dtype=int64)
    real = xp.nonzero(lens > 0)[0]
    segs = seg_index[real]
    # the first (last) non-empty piece of each segment: where the segment changes
    edge = segs[1:] != segs[:-1]
    ones = xp.ones((min(1, int(segs.shape[0])),), dtype=bool)
    keep = xp.concatenate([edge, ones]) if last else xp.concatenate([ones, edge])
    chosen, segs = real[keep], segs[keep]
    rows = starts[chosen] + (lens[chosen] - 1 if last else 0)
    # the chosen pieces are in block order: split them by block
    cuts = xp.searchsorted(block_of_piece[chosen], xp.arange(len(blocks) + 1)).tolist()
    index = [(rows[a:b], segs[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    Y = xp.zeros((B, W), dtype=dtype)
    for (flat, _, _, _), (r, s) in zip(blocks, index):
        if flat is not None and int(r.shape[0]):
            Y[s] = flat[r]

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (B, W), dtype)
        grads = zeros_blocks(xp, X.block_shapes(), dtype)
        for dT, (flat, _, _, _), (r, s) in zip(grads, blocks, index):
            if dT is not None and flat is not None and int(r.shape[0]):
                dT.reshape(int(flat.shape[0]), W)[r] = dY[s]
        return X.with_blocks(grads)

    return Y, backprop


__all__ = [
    "SUM_LIKE", "backend", "ragged_input", "row_scale", "sum_like_forward", "pick_forward", "pool_wordpieces",
]
