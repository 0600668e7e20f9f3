"""Kernels behind the pooling layers, chosen by the Ops in use.

``get_pooling_backend(ops)`` returns:

- ``NumpyPoolingBackend`` for ``NumpyOps``: Thinc's compiled ``reduce_sum`` /
  ``reduce_max`` kernels where they are right (float32/float64 data, int32 lengths, rows
  of length zero removed before ``reduce_max``, rows holding NaN or infinities recomputed
  by the generic path), ``numpy.repeat`` for the sum-like gradients. No Python loop over
  rows.
- ``PoolingBackend`` (xp-generic) for every other Ops, ``CupyOps`` included: built only
  from calls that NumPy and CuPy share (``take``, ``where``, ``argmax``,
  ``searchsorted``, ``matmul``...), so that the generic ``Ops()`` tests run exactly the
  code that runs on a GPU.

Two data layouts:

- *segments*: ``X`` of shape (N, W) and ``lengths`` (B,) that sum to N (a ``Ragged``);
- *padded*: ``X`` of shape (B, L, W) and a boolean ``mask`` (B, L) of the real positions
  (any 0/1 pattern; right- or left-padded are the usual ones).

Conventions: sums are accumulated in at least float32 (``acc_dtype``); the kernels return
accumulator-dtype results and the layers cast to the input dtype. A row of length zero
pools to zeros. ``max`` reports, per output cell, the position of the first maximum (the
first NaN if the row holds one) so that backprop routes the gradient there.
"""
from typing import Any, Dict, List, Literal, Optional, Tuple

from thinc.api import NumpyOps, Ops

#: Upper bound on the elements of one padded gather in the generic segment kernels
#: (rows are processed in chunks so that memory stays bounded).
GATHER_BUDGET = 1 << 24


def acc_dtype(dtype: Any) -> Literal["float32", "float64"]:
    """The accumulation dtype for data of ``dtype``: float64 for float64, else float32."""
    return "float64" if str(dtype) == "float64" else "float32"


class PoolingBackend:
    """xp-generic kernels (NumPy or CuPy through ``ops.xp``)."""

    def __init__(self, ops: Ops) -> None:
        self.ops = ops
        self.xp = ops.xp

    # ------------------------------------------------------------------ helpers
    def starts(self, lengths: Any) -> Any:
        """Start row of every segment (int64)."""
        xp = self.xp
        lengths = lengths.astype("int64", copy=False)
        ends = xp.cumsum(lengths)
        return ends - lengths

    def segment_ids(self, lengths: Any, n_rows: int) -> Any:
        """The segment of each of the ``n_rows`` rows (int64), skipping empty segments."""
        xp = self.xp
        ends = xp.cumsum(lengths.astype("int64", copy=False))
        return xp.searchsorted(ends, xp.arange(n_rows, dtype="int64"), side="right")

    def _chunks(self, lengths: Any, width: int) -> Tuple[int, List[Tuple[int, int]]]:
        """Row blocks whose padded gather stays under ``GATHER_BUDGET`` elements."""
        B = int(lengths.shape[0])
        max_len = int(lengths.max()) if B else 0
        per_row = max(1, max_len * max(width, 1))
        step = max(1, GATHER_BUDGET // per_row)
        return max_len, [(i, min(B, i + step)) for i in range(0, B, step)]

    def _gather(self, X: Any, starts: Any, lengths: Any, max_len: int) -> Tuple[Any, Any]:
        """Padded copy (b, max_len, W) of the segments and its mask (b, max_len)."""
        xp = self.xp
        offsets = xp.arange(max_len, dtype="int64")
        mask = offsets[None, :] < lengths[:, None]
        idx = xp.where(mask, starts[:, None] + offsets[None, :], 0)
        return X[idx], mask

    # ------------------------------------------------------------ segment kernels
    def segment_sum(self, X: Any, lengths: Any, weights: Optional[Any] = None) -> Any:
        """Per-segment sum of ``X`` (N, W) (rows scaled by ``weights`` (N,) if given), in
        the accumulator dtype. Zero-length segments give zeros."""
        xp = self.xp
        acc = acc_dtype(X.dtype)
        B, W = int(lengths.shape[0]), int(X.shape[1])
        Y = xp.zeros((B, W), dtype=acc)
        if B == 0 or int(X.shape[0]) == 0 or W == 0:
            return Y
        lengths = lengths.astype("int64", copy=False)
        starts = self.starts(lengths)
        max_len, chunks = self._chunks(lengths, W)
        for lo, hi in chunks:
            G, mask = self._gather(X, starts[lo:hi], lengths[lo:hi], max_len)
            G = G.astype(acc, copy=False)
            if weights is not None:
                wts = weights.astype(acc, copy=False)[
                    xp.where(mask, starts[lo:hi, None] + xp.arange(max_len)[None, :], 0)
                ]
                G = G * wts[:, :, None]
            G = xp.where(mask[:, :, None], G, 0)
            Y[lo:hi] = G.sum(axis=1)
        return Y

    def segment_max(self, X: Any, lengths: Any, sums: Optional[Any] = None) -> Tuple[Any, Any]:
        """Per-segment max of ``X`` (N, W) in X's dtype, and the position of the first
        maximum within its segment (an int array of shape (B, W), for ``max_backprop``).
        NaN wins (first NaN). Zero-length segments give zeros and position 0.
        ``sums`` (the per-segment sums, if the caller has them) lets the NumPy backend
        find rows holding NaN without another pass."""
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        Y = xp.zeros((B, W), dtype=X.dtype)
        arg = xp.zeros((B, W), dtype="int64")
        if B == 0 or int(X.shape[0]) == 0 or W == 0:
            return Y, arg
        lengths = lengths.astype("int64", copy=False)
        starts = self.starts(lengths)
        max_len, chunks = self._chunks(lengths, W)
        for lo, hi in chunks:
            G, mask = self._gather(X, starts[lo:hi], lengths[lo:hi], max_len)
            G = xp.where(mask[:, :, None], G, -xp.inf)
            pos = G.argmax(axis=1)
            Yc = xp.take_along_axis(G, pos[:, None, :], axis=1)[:, 0, :]
            Y[lo:hi] = xp.where(lengths[lo:hi, None] > 0, Yc, 0)
            arg[lo:hi] = pos
        return Y, arg

    def segment_pick(self, X: Any, lengths: Any, last: bool) -> Tuple[Any, Any]:
        """The first (or last) row of every segment (zeros for empty ones) and its index."""
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        lengths = lengths.astype("int64", copy=False)
        starts = self.starts(lengths)
        pos = starts + lengths - 1 if last else starts
        valid = lengths > 0
        pos = xp.where(valid, pos, 0)
        if int(X.shape[0]) == 0:
            return xp.zeros((B, W), dtype=X.dtype), pos
        Y = X[pos]
        if not bool(valid.all()):
            Y[~valid] = 0
        return Y, pos

    def repeat_rows(self, Y: Any, lengths: Any, n_rows: int) -> Any:
        """``Y[b]`` repeated ``lengths[b]`` times: shape (n_rows, W)."""
        if n_rows == 0:
            return self.xp.zeros((0, int(Y.shape[1])), dtype=Y.dtype)
        return Y[self.segment_ids(lengths, n_rows)]

    def positions(self, lengths: Any, n_rows: int) -> Any:
        """1-based position of every row within its segment (int64, shape (n_rows,))."""
        xp = self.xp
        starts = self.starts(lengths)
        return xp.arange(1, n_rows + 1, dtype="int64") - self.repeat_rows(starts[:, None], lengths, n_rows)[:, 0]

    def scatter_rows(self, dY: Any, arg: Any, lengths: Any, n_rows: int, into: Optional[Any] = None) -> Any:
        """A (n_rows, W) zero array (or ``into``, added to) with ``dY[b, j]`` at row
        ``arg[b, j]``, column j, for every non-empty segment b (``arg`` may be (B,) for
        whole rows or (B, W)). The targets are distinct, so fancy ``+=`` is exact."""
        xp = self.xp
        W = int(dY.shape[1])
        dX = xp.zeros((n_rows, W), dtype=dY.dtype) if into is None else into
        if n_rows == 0 or W == 0:
            return dX
        valid = xp.nonzero(lengths > 0)[0]
        if arg.ndim == 1:
            if into is None and int(valid.shape[0]) == int(dY.shape[0]):
                dX[arg] = dY  # every row non-empty: the rows are distinct, a plain put
            elif into is None:
                dX[arg[valid]] = dY[valid]
            else:
                dX[arg[valid]] += dY[valid]
        else:
            flat = (arg[valid] * W + xp.arange(W, dtype="int64")[None, :]).reshape(-1)
            view = dX.reshape(-1)
            view[flat] += dY[valid].reshape(-1).astype(dX.dtype, copy=False)
        return dX

    def max_backprop(self, dY: Any, which: Any, lengths: Any, n_rows: int, into: Optional[Any] = None) -> Any:
        """Gradient of ``segment_max``: ``dY`` at the maxima (``which``, as returned by
        ``segment_max``), zeros elsewhere; added to ``into`` if given."""
        arg = self.starts(lengths)[:, None] + which
        return self.scatter_rows(dY, arg, lengths, n_rows, into=into)

    # ------------------------------------------------------------- padded kernels
    def padded_weighted_sum(self, X: Any, weights: Any) -> Any:
        """``sum_t weights[b, t] * X[b, t]`` for X (B, L, W), weights (B, L) in the
        accumulator dtype, zero at padding; padding never counts, even when it holds NaN
        or infinities. Result in the accumulator dtype."""
        xp = self.xp
        acc = acc_dtype(X.dtype)
        B, L, W = (int(s) for s in X.shape)
        if B == 0 or L == 0 or W == 0:
            return xp.zeros((B, W), dtype=acc)
        Xa = X.astype(acc, copy=False)
        w = weights.astype(acc, copy=False)
        Y = xp.matmul(w[:, None, :], Xa)[:, 0, :]
        # 0 * NaN is NaN: rows whose result is not finite are recomputed with the
        # padding masked out, so that only the real positions decide.
        bad = xp.nonzero(~xp.isfinite(Y).all(axis=1))[0]
        if int(bad.shape[0]):
            wb = w[bad]
            Xb = xp.where((wb != 0)[:, :, None], Xa[bad], 0)
            Y[bad] = (Xb * wb[:, :, None]).sum(axis=1)
        return Y

    def padded_weighted_grad(self, dY: Any, weights: Any, dtype: Any) -> Any:
        """Gradient of ``padded_weighted_sum``: ``dY[b] * weights[b, t]``, (B, L, W)."""
        xp = self.xp
        B, L = (int(s) for s in weights.shape)
        W = int(dY.shape[1])
        acc = acc_dtype(dtype)
        if acc == str(dtype):
            dX = xp.empty((B, L, W), dtype=dtype)
            xp.multiply(dY.astype(acc, copy=False)[:, None, :], weights.astype(acc, copy=False)[:, :, None], out=dX)
            return dX
        prod = dY.astype(acc)[:, None, :] * weights.astype(acc, copy=False)[:, :, None]
        return prod.astype(dtype)

    def padded_blocks(self, mask: Any) -> Optional[Tuple[Any, Any]]:
        """``(first, n)`` (int64, (B,)) when the real positions of every row form one block
        (right- or left-padded, or a block in the middle), else None."""
        xp = self.xp
        B, L = (int(s) for s in mask.shape)
        n = mask.sum(axis=1).astype("int64")
        if B == 0 or L == 0:
            return xp.zeros((B,), dtype="int64"), n
        first = xp.where(n > 0, mask.astype("int8").argmax(axis=1), 0).astype("int64")
        last = xp.maximum(first + n - 1, 0)
        if not bool((xp.cumsum(mask, axis=1)[xp.arange(B), last] == n).all()):
            return None
        return first, n

    def padded_block_grad(self, d: Any, blocks: Tuple[Any, Any], length: int, dtype: Any) -> Optional[Any]:
        """``d[b]`` (B, W) at every real position of a one-block-per-row batch, zeros at
        padding, as (B, length, W) in ``dtype``; None where the backend has no fast way
        (the caller then multiplies by the weights)."""
        return None

    def padded_max(self, X: Any, mask: Any, blocks: Optional[Tuple[Any, Any]] = None) -> Tuple[Any, Any]:
        """Max over the real positions of X (B, L, W) and the position (B, W) of the first
        maximum (the first NaN if any). Rows without real positions give zeros."""
        xp = self.xp
        B, L, W = (int(s) for s in X.shape)
        if B == 0 or L == 0 or W == 0:
            return xp.zeros((B, W), dtype=X.dtype), xp.zeros((B, W), dtype="int64")
        G = xp.where(mask[:, :, None], X, -xp.inf).astype(X.dtype, copy=False)
        pos = G.argmax(axis=1)
        Y = xp.take_along_axis(G, pos[:, None, :], axis=1)[:, 0, :]
        Y = xp.where(mask.any(axis=1)[:, None], Y, 0).astype(X.dtype, copy=False)
        return Y, pos.astype("int64", copy=False)

    def padded_scatter(
        self, dY: Any, pos: Any, valid: Any, shape: Tuple[int, int, int], into: Optional[Any] = None
    ) -> Any:
        """A zero (B, L, W) array (or ``into``, added to) with ``dY[b, j]`` at
        ``[b, pos[b, j], j]`` (``pos`` (B, W)) or ``dY[b]`` at ``[b, pos[b]]`` (``pos``
        (B,)), for rows where ``valid``. The targets are distinct."""
        xp = self.xp
        B, L, W = shape
        dX = xp.zeros((B, L, W), dtype=dY.dtype) if into is None else into
        if B == 0 or L == 0 or W == 0:
            return dX
        rows = xp.nonzero(valid)[0]
        if pos.ndim == 1:
            dX[rows, pos[rows]] += dY[rows]
        else:
            flat = (rows[:, None] * L + pos[rows]) * W + xp.arange(W, dtype="int64")[None, :]
            view = dX.reshape(-1)
            view[flat.reshape(-1)] += dY[rows].reshape(-1).astype(dX.dtype, copy=False)
        return dX


class NumpyPoolingBackend(PoolingBackend):
    """NumPy kernels: Thinc's compiled reductions where they are right, NumPy otherwise."""

    def __init__(self, ops: Ops) -> None:
        super().__init__(ops)
        self._thinc_ops = ops if isinstance(ops, NumpyOps) else NumpyOps()

    def _as_thinc(self, X: Any) -> Any:
        """float32/float64 C-contiguous data for Thinc's kernels (float16 goes to float32)."""
        xp = self.xp
        dtype = "float32" if str(X.dtype) == "float16" else X.dtype
        return xp.ascontiguousarray(X, dtype=dtype)

    def segment_sum(self, X: Any, lengths: Any, weights: Optional[Any] = None) -> Any:
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        acc = acc_dtype(X.dtype)
        if B == 0 or int(X.shape[0]) == 0 or W == 0:
            return xp.zeros((B, W), dtype=acc)
        Xc = self._as_thinc(X)
        if weights is not None:
            Xc = Xc * weights.astype(acc, copy=False)[:, None]
        return self._thinc_ops.reduce_sum(Xc, xp.ascontiguousarray(lengths, dtype="int32"))

    def segment_max(self, X: Any, lengths: Any, sums: Optional[Any] = None) -> Tuple[Any, Any]:
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        if B == 0 or int(X.shape[0]) == 0 or W == 0:
            return super().segment_max(X, lengths)
        Xc = self._as_thinc(X)
        lens32 = xp.ascontiguousarray(lengths, dtype="int32")
        if sums is None:
            sums = self._thinc_ops.reduce_sum(Xc, lens32)
        nonempty = lens32 > 0
        if bool(nonempty.all()):
            Y, which = self._thinc_ops.reduce_max(Xc, lens32)
        else:
            # Thinc's kernel rejects empty rows; they hold no data, so drop their lengths
            Y = xp.zeros((B, W), dtype=Xc.dtype)
            which = xp.zeros((B, W), dtype="int32")
            m, w = self._thinc_ops.reduce_max(Xc, xp.ascontiguousarray(lens32[nonempty]))
            Y[nonempty] = m
            which[nonempty] = w
        # Thinc's loop skips NaN unless it comes first: rows whose sum is not finite
        # (NaN or infinities somewhere) are recomputed by the generic kernel.
        bad = xp.nonzero(~xp.isfinite(sums).all(axis=1))[0]
        if bad.size:
            starts = self.starts(lengths)
            Xb_lengths = lengths[bad].astype("int64", copy=False)
            # the rows of the bad segments, in order, without a Python loop
            shift = xp.repeat(starts[bad] - self.starts(Xb_lengths), Xb_lengths)
            rows = xp.arange(int(Xb_lengths.sum()), dtype="int64") + shift
            Yb, wb = PoolingBackend.segment_max(self, Xc[rows], Xb_lengths)
            Y[bad] = Yb
            which[bad] = wb
        return Y.astype(X.dtype, copy=False), which

    def repeat_rows(self, Y: Any, lengths: Any, n_rows: int) -> Any:
        return self.xp.repeat(Y, lengths.astype("int64", copy=False), axis=0)

    def max_backprop(self, dY: Any, which: Any, lengths: Any, n_rows: int, into: Optional[Any] = None) -> Any:
        xp = self.xp
        B, W = (int(s) for s in dY.shape)
        if str(dY.dtype) not in ("float32", "float64") or n_rows == 0 or W == 0:
            return super().max_backprop(dY, which, lengths, n_rows, into=into)
        if into is not None and 32 * B < n_rows:
            # few rows: adding at B x W flat positions is cheaper than a pass over dX
            return super().max_backprop(dY, which, lengths, n_rows, into=into)
        lens32 = xp.ascontiguousarray(lengths, dtype="int32")
        if not bool((lens32 > 0).all()):
            keep = lens32 > 0
            dY, which, lens32 = dY[keep], which[keep], lens32[keep]
        dX = self._thinc_ops.backprop_reduce_max(
            xp.ascontiguousarray(dY), xp.ascontiguousarray(which, dtype="int32"), xp.ascontiguousarray(lens32)
        )
        if into is None:
            return dX
        into += dX
        return into

    def padded_block_grad(self, d: Any, blocks: Tuple[Any, Any], length: int, dtype: Any) -> Optional[Any]:
        xp = self.xp
        first, n = blocks
        B, W = (int(s) for s in d.shape)
        if B == 0 or length == 0 or W == 0:
            return None
        pieces = xp.stack([first, n, length - first - n], axis=1).reshape(-1)
        values = xp.zeros((B, 3, W), dtype=dtype)
        values[:, 1] = d
        return xp.repeat(values.reshape(3 * B, W), pieces, axis=0).reshape(B, length, W)

    def padded_max(self, X: Any, mask: Any, blocks: Optional[Tuple[Any, Any]] = None) -> Tuple[Any, Any]:
        """On a padded batch whose real positions form one block per row (right- or
        left-padded), Thinc's ``reduce_max`` runs on the flat (B * L, W) array with the
        padding as separate pieces that are then dropped: no copy of the batch."""
        xp = self.xp
        B, L, W = (int(s) for s in X.shape)
        if B == 0 or L == 0 or W == 0 or not X.flags.c_contiguous:
            return super().padded_max(X, mask)
        if blocks is None:
            blocks = self.padded_blocks(mask)
            if blocks is None:
                return super().padded_max(X, mask)
        first, n = blocks
        after = L - first - n
        pieces = xp.stack([first, n, after], axis=1).reshape(-1)
        is_real = xp.tile(xp.asarray([False, True, False]), B)
        keep = pieces > 0
        lens32 = pieces[keep].astype("int32")
        Xc = self._as_thinc(X.reshape(B * L, W))
        m, which = self._thinc_ops.reduce_max(Xc, lens32)
        sums = self._thinc_ops.reduce_sum(Xc, lens32)
        real_rows = xp.nonzero(is_real[keep])[0]
        Y = xp.zeros((B, W), dtype=Xc.dtype)
        pos = xp.zeros((B, W), dtype="int64")
        rows = xp.nonzero(n > 0)[0]
        Y[rows] = m[real_rows]
        pos[rows] = which[real_rows] + first[rows, None]
        bad = rows[~xp.isfinite(sums[real_rows]).all(axis=1)]
        if bad.size:
            Yb, pb = PoolingBackend.padded_max(self, X[bad], mask[bad])
            Y[bad] = Yb
            pos[bad] = pb
        return Y.astype(X.dtype, copy=False), pos


_BACKENDS: Dict[int, PoolingBackend] = {}


def get_pooling_backend(ops: Ops) -> PoolingBackend:
    """The pooling kernels for ``ops``: NumPy-specialised for NumpyOps, xp-generic else."""
    key = id(ops)
    backend = _BACKENDS.get(key)
    if backend is None or backend.ops is not ops:
        backend = NumpyPoolingBackend(ops) if isinstance(ops, NumpyOps) else PoolingBackend(ops)
        if len(_BACKENDS) > 64:
            _BACKENDS.clear()
        _BACKENDS[key] = backend
    return backend


__all__ = ["GATHER_BUDGET", "acc_dtype", "PoolingBackend", "NumpyPoolingBackend", "get_pooling_backend"]
