"""Kernels behind the pooling layers, chosen by the Ops in use.

``get_pooling_backend(ops)`` returns:

- ``CompiledPoolingBackend`` for ``NumpyOps`` when the compiled kernels
  (``_kernels.pyx``, C in ``_segments_body.h``) were built: one pass over the rows for
  the sum, max, sum-and-max and each gradient, float32/float64, vectorised loops over
  the width, rows given by explicit starts so that a padded batch needs no copy. It
  alone has the *pieces* kernels (``pieces_pool`` / ``pieces_grad``: a whole batch of
  padded arrays in one call each, a Doc's spans the pieces of its row) and the GeM
  passes (``gem_sum`` / ``gem_grad``). Other dtypes (float16) and layouts go to the
  NumPy backend below.
- ``NumpyPoolingBackend`` for ``NumpyOps`` otherwise (built without a C compiler):
  Thinc's compiled ``reduce_sum`` / ``reduce_max`` kernels where they are right
  (float32/float64 data, int32 lengths, rows of length zero removed before
  ``reduce_max``, rows holding NaN or infinities recomputed by the generic path),
  ``numpy.repeat`` for the sum-like gradients. No Python loop over rows.
- ``PoolingBackend`` (xp-generic) for every other Ops, ``CupyOps`` included: built only
  from calls that NumPy and CuPy share (``take``, ``where``, ``argmax``,
  ``searchsorted``, ``matmul``...), so that the generic ``Ops()`` tests run exactly the
  code that runs on a GPU.

The data are *segments*: ``X`` of shape (N, W) and ``lengths`` (B,) that sum to N (a
``Ragged``). The segment methods take optional ``starts`` (B,): segment b is then the rows
``starts[b] .. starts[b] + lengths[b] - 1`` instead of following the one before, and the
gradient methods then take ``block``, the rows per segment in the gradient, zeros outside
the segments. That is how a padded array is pooled where it lies (``Wordpieces``, see
``layers/_pooling.pool_wordpieces``): seen as (spans * L, W), span s starts at
``s * L + first[s]`` and ``block = L``.

Conventions: sums are accumulated in at least float32 (``acc_dtype``); the kernels return
accumulator-dtype results and the layers cast to the input dtype. A row of length zero
pools to zeros. ``max`` reports, per output cell, the position of the first maximum (the
first NaN if the row holds one) so that backprop routes the gradient there.
"""
import os
from typing import Any, Dict, List, Literal, Optional, Tuple, Type

import numpy
from thinc.api import NumpyOps, Ops

from . import load_kernels


#: The compiled kernels for NumpyOps, or None when the extension was not built (set it
#: to None to use the NumPy backend).
COMPILED: Optional[Any] = load_kernels()

#: From this many bytes on, glibc's malloc maps every allocation afresh (its mmap
#: threshold rises to at most 32 MiB on 64-bit): the OS zeroes those pages when they are
#: first written, and a page that is only read stays its shared page of zeros, so
#: ``numpy.zeros`` (calloc) costs next to nothing there, and zeros written by us would
#: only add to it. Below it, batch after batch, calloc clears reused memory with memset.
LAZY_ZEROS_BYTES = 32 << 20


def l3_cache_bytes() -> Optional[int]:
    """The size of the L3 cache as the OS reports it (sysconf, else sysfs), or None."""
    try:
        size = int(os.sysconf("SC_LEVEL3_CACHE_SIZE"))
    except (AttributeError, ValueError, OSError):
        size = 0
    if size > 0:
        return size
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            text = f.read().strip()
    except OSError:
        return None
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        return int(text[:-1]) * units[text[-1]] if text and text[-1] in units else int(text)
    except ValueError:
        return None


def stream_min_bytes() -> int:
    """From how many bytes on the kernels write a gradient's zeros with streaming stores:
    half the L3 cache (16 MiB where its size is unknown). A gradient that size or larger
    would not stay in the cache for its consumer anyway; a smaller one may, and it is
    read back faster from there (``python -m benchmarks stream``, docs/benchmarks.md)."""
    l3 = l3_cache_bytes()
    return l3 // 2 if l3 else 16 << 20


if COMPILED is not None and hasattr(COMPILED, "set_stream_min_bytes"):
    COMPILED.set_stream_min_bytes(stream_min_bytes())


def zeros(xp: Any, size: int, dtype: Any) -> Any:
    """A 1-d array of ``size`` zeros for a gradient: ``xp.zeros``, except for NumPy with the
    compiled kernels below ``LAZY_ZEROS_BYTES``, where the kernels write them
    (``_kernels.zero_fill``), with streaming stores from ``stream_min_bytes()`` on: a
    batch's padded gradient, tens of MiB, then neither evicts the cache nor has its lines
    read before they are written."""
    fill = getattr(COMPILED, "zero_fill", None) if COMPILED is not None else None
    if xp is not numpy or fill is None or size * numpy.dtype(dtype).itemsize >= LAZY_ZEROS_BYTES:
        return xp.zeros((size,), dtype=dtype)
    out = numpy.empty((size,), dtype=dtype)
    fill(out.view("uint8"))
    return out

_F64 = numpy.dtype("float64")

#: Upper bound on the elements of one padded gather in the generic segment kernels
#: (rows are processed in chunks so that memory stays bounded).
GATHER_BUDGET = 1 << 24


def acc_dtype(dtype: Any) -> Literal["float32", "float64"]:
    """The accumulation dtype for data of ``dtype``: float64 for float64, else float32."""
    return "float64" if dtype == _F64 or dtype == "float64" else "float32"


class PoolingBackend:
    """xp-generic kernels (NumPy or CuPy through ``ops.xp``)."""

    #: whether ``pieces_pool`` / ``pieces_grad`` (a whole batch of padded arrays in one
    #: call each) are available; only the compiled backend has them
    pieces = False

    def __init__(self, ops: Ops) -> None:
        self.ops = ops
        self.xp = ops.xp

    # --------------------------------------------- pieces (the compiled backend only)
    def pieces_dtype(self, dtype: Any) -> bool:
        """Whether ``pieces_pool`` / ``pieces_grad`` take data of ``dtype``."""
        return False

    def pieces_pool(
        self, kind: str, arrays: List[Any], block: Any, starts: Any, lengths: Any, seg_ptr: Any,
        scale: Optional[Any], W: int, dtype: Any,
    ) -> Tuple[Any, Optional[Any]]:
        raise NotImplementedError

    def pieces_grad(
        self, kind: str, n_rows: int, tiles: Any, starts: Any, lengths: Any, seg_ptr: Any, dY: Any,
        scale: Optional[Any], which: Optional[Any],
    ) -> Any:
        raise NotImplementedError

    # ------------------------------------------------ GeM (the compiled backend only)
    def gem_sum(self, X: Any, lengths: Any, p: float, eps: float) -> Optional[Any]:
        """Per segment (the lengths tile X), ``sum_k max(x_k, eps) ** p`` (B, W) in X's
        dtype, NaN kept; None where this backend has no kernel for X (the layer then
        computes it with xp)."""
        return None

    def gem_grad(self, X: Any, lengths: Any, p: float, eps: float, d: Any) -> Any:
        """``max(x, eps) ** (p - 1) * (x > eps) * d[b]`` for every row of segment b, as
        (N, W) in X's dtype; only where ``gem_sum`` gave a result."""
        raise NotImplementedError

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
    def segment_sum(
        self, X: Any, lengths: Any, weighted: bool = False, starts: Optional[Any] = None,
        scale: Optional[Any] = None,
    ) -> Any:
        """Per-segment sum of ``X`` (N, W) in the accumulator dtype, times ``scale[b]``
        (B,) if given; with ``weighted``, the k-th row of a segment (1-based) is counted k
        times. Zero-length segments give zeros."""
        Y = self._segment_sum(X, lengths, weighted, starts)
        if scale is not None:
            Y *= scale.astype(Y.dtype, copy=False)[:, None]
        return Y

    def _segment_sum(self, X: Any, lengths: Any, weighted: bool, starts: Optional[Any]) -> Any:
        xp = self.xp
        acc = acc_dtype(X.dtype)
        B, W = int(lengths.shape[0]), int(X.shape[1])
        Y = xp.zeros((B, W), dtype=acc)
        if B == 0 or int(X.shape[0]) == 0 or W == 0:
            return Y
        lengths = lengths.astype("int64", copy=False)
        starts = self.starts(lengths) if starts is None else starts
        max_len, chunks = self._chunks(lengths, W)
        for lo, hi in chunks:
            G, mask = self._gather(X, starts[lo:hi], lengths[lo:hi], max_len)
            G = G.astype(acc, copy=False)
            if weighted:
                G = G * xp.arange(1, max_len + 1, dtype=acc)[None, :, None]
            G = xp.where(mask[:, :, None], G, 0)
            Y[lo:hi] = G.sum(axis=1)
        return Y

    def segment_max(
        self, X: Any, lengths: Any, sums: Optional[Any] = None, starts: Optional[Any] = None
    ) -> Tuple[Any, Any]:
        """Per-segment max of ``X`` (N, W) in X's dtype, and the position of the first
        maximum within its segment (an int array of shape (B, W), for ``max_backprop``).
        NaN wins (first NaN). Zero-length segments give zeros and position 0.
        ``sums`` (the per-segment sums, if the caller has them) lets the NumPy backend
        find rows holding NaN without another pass."""
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        Y = xp.zeros((B, W), dtype=X.dtype)
        arg = xp.zeros((B, W), dtype="int64")
        if B == 0 or int(X.shape[0]) == 0 or W == 0 or int(lengths.max()) == 0:
            return Y, arg
        lengths = lengths.astype("int64", copy=False)
        starts = self.starts(lengths) if starts is None else starts
        max_len, chunks = self._chunks(lengths, W)
        for lo, hi in chunks:
            G, mask = self._gather(X, starts[lo:hi], lengths[lo:hi], max_len)
            G = xp.where(mask[:, :, None], G, -xp.inf)
            pos = G.argmax(axis=1)
            Yc = xp.take_along_axis(G, pos[:, None, :], axis=1)[:, 0, :]
            Y[lo:hi] = xp.where(lengths[lo:hi, None] > 0, Yc, 0)
            arg[lo:hi] = pos
        return Y, arg

    def segment_sum_max(self, X: Any, lengths: Any, starts: Optional[Any] = None) -> Tuple[Any, Any, Any]:
        """``segment_sum`` (accumulator dtype) and ``segment_max`` (max, position) of the
        same segments; backends that can do both in one pass over the rows do."""
        sums = self.segment_sum(X, lengths, starts=starts)
        maxes, which = self.segment_max(X, lengths, sums=sums, starts=starts)
        return sums, maxes, which

    def segment_mean_max(self, X: Any, lengths: Any, scale: Any, starts: Optional[Any] = None) -> Tuple[Any, Any]:
        """``[sum * scale | max]`` (B, 2W) in X's dtype (``scale`` (B,): 1 / length for
        ``reduce_mean_max``) and the max's positions, as ``segment_max``."""
        xp = self.xp
        W = int(X.shape[1])
        sums, maxes, which = self.segment_sum_max(X, lengths, starts=starts)
        Y = xp.empty((int(lengths.shape[0]), 2 * W), dtype=X.dtype)
        xp.multiply(sums, scale.astype(sums.dtype, copy=False)[:, None], out=Y[:, :W], casting="unsafe")
        Y[:, W:] = maxes
        return Y, which

    def mean_max_backprop(
        self, dY: Any, which: Any, lengths: Any, n_rows: int, scale: Any,
        starts: Optional[Any] = None, block: int = 0,
    ) -> Any:
        """Gradient of ``segment_mean_max`` for ``dY`` (B, 2W), in the accumulator dtype."""
        xp = self.xp
        W = int(dY.shape[1]) // 2
        d_sum = dY[:, :W].astype(acc_dtype(dY.dtype)) * scale[:, None]
        d_max = xp.ascontiguousarray(dY[:, W:])
        return self.sum_max_backprop(d_sum, d_max, which, lengths, n_rows, starts=starts, block=block)

    def sum_backprop(
        self, d: Any, lengths: Any, n_rows: int, weighted: bool = False,
        starts: Optional[Any] = None, block: int = 0, scale: Optional[Any] = None,
    ) -> Any:
        """Gradient of ``segment_sum``: ``d[b]`` (times ``scale[b]`` if given, and the
        1-based position if ``weighted``) at every row of segment b, as (n_rows, W) in d's
        dtype; zeros outside the segments when ``starts`` is given."""
        if scale is not None:
            d = d * scale.astype(d.dtype, copy=False)[:, None]
        total = n_rows if starts is None else int(lengths.sum())
        dR = self.repeat_rows(d, lengths, total)
        if weighted:
            dR *= self.positions(lengths, total).astype(dR.dtype)[:, None]
        if starts is None:
            return dR
        dX = self.xp.zeros((n_rows, int(d.shape[1])), dtype=d.dtype)
        if total:
            dX[self._rows(starts, lengths, total)] = dR
        return dX

    def sum_max_backprop(
        self, d_sum: Any, d_max: Any, which: Any, lengths: Any, n_rows: int,
        starts: Optional[Any] = None, block: int = 0,
    ) -> Any:
        """Gradient of ``segment_sum_max``: ``sum_backprop(d_sum)`` plus
        ``max_backprop(d_max)``."""
        dX = self.sum_backprop(d_sum, lengths, n_rows, starts=starts, block=block)
        return self.max_backprop(d_max, which, lengths, n_rows, into=dX, starts=starts, block=block)

    def _rows(self, starts: Any, lengths: Any, total: int) -> Any:
        """The row index (int64, (total,)) of every row of every segment, in order."""
        first = self.repeat_rows(starts.astype("int64", copy=False)[:, None], lengths, total)[:, 0]
        return first + self.positions(lengths, total) - 1

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

    def max_backprop(
        self, dY: Any, which: Any, lengths: Any, n_rows: int, into: Optional[Any] = None,
        starts: Optional[Any] = None, block: int = 0,
    ) -> Any:
        """Gradient of ``segment_max``: ``dY`` at the maxima (``which``, as returned by
        ``segment_max``), zeros elsewhere; added to ``into`` if given."""
        arg = (self.starts(lengths) if starts is None else starts)[:, None] + which
        return self.scatter_rows(dY, arg, lengths, n_rows, into=into)



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

    def _segment_sum(self, X: Any, lengths: Any, weighted: bool, starts: Optional[Any]) -> Any:
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        acc = acc_dtype(X.dtype)
        if starts is not None:  # Thinc's kernel needs segments that tile X
            return super()._segment_sum(X, lengths, weighted, starts)
        if B == 0 or int(X.shape[0]) == 0 or W == 0:
            return xp.zeros((B, W), dtype=acc)
        Xc = self._as_thinc(X)
        if weighted:
            Xc = Xc * self.positions(lengths, int(X.shape[0])).astype(acc)[:, None]
        return self._thinc_ops.reduce_sum(Xc, xp.ascontiguousarray(lengths, dtype="int32"))

    def segment_max(
        self, X: Any, lengths: Any, sums: Optional[Any] = None, starts: Optional[Any] = None
    ) -> Tuple[Any, Any]:
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        if B == 0 or int(X.shape[0]) == 0 or W == 0 or starts is not None:
            return super().segment_max(X, lengths, starts=starts)
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

    def max_backprop(
        self, dY: Any, which: Any, lengths: Any, n_rows: int, into: Optional[Any] = None,
        starts: Optional[Any] = None, block: int = 0,
    ) -> Any:
        xp = self.xp
        B, W = (int(s) for s in dY.shape)
        if str(dY.dtype) not in ("float32", "float64") or n_rows == 0 or W == 0 or starts is not None:
            return super().max_backprop(dY, which, lengths, n_rows, into=into, starts=starts, block=block)
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



#: the dtypes the compiled kernels take (dtype objects: comparing them is cheap,
#: ``str(dtype)`` is not)
_REAL = (numpy.dtype("float32"), numpy.dtype("float64"))
_INT32 = numpy.dtype("int32")


def _rows_contiguous(xp: Any, a: Any) -> Any:
    """``a`` if each of its rows is contiguous (a column block of a C array), else a
    C-contiguous copy: what the kernels take for their (B, W) inputs and outputs."""
    rows, width = (int(n) for n in a.shape)
    row_step, item = int(a.strides[0]), int(a.itemsize)
    rows_apart = rows < 2 or (row_step % item == 0 and row_step >= width * item)
    if int(a.strides[1]) == item and rows_apart:
        return a
    return xp.ascontiguousarray(a)


class CompiledPoolingBackend(NumpyPoolingBackend):
    """The compiled segment kernels (``COMPILED``) for float32/float64; everything else
    (float16, first/last) as NumpyPoolingBackend."""

    def __init__(self, ops: Ops) -> None:
        super().__init__(ops)
        if COMPILED is None:
            raise ImportError("thinc_trf_layers.backends._kernels was not built (no C compiler?)")
        self.kernels = COMPILED

    def _index(self, lengths: Any, starts: Optional[Any]) -> Tuple[Any, Any]:
        xp = self.xp
        lengths = xp.ascontiguousarray(lengths, dtype="int64")
        starts = self.starts(lengths) if starts is None else xp.ascontiguousarray(starts, dtype="int64")
        return starts, lengths

    def _fits(self, X: Any, lengths: Any) -> bool:
        """Whether the kernels take this: float32/float64 data, rows, width, segments."""
        return X.dtype in _REAL and int(X.shape[0]) > 0 and int(X.shape[1]) > 0 and int(lengths.shape[0]) > 0

    def _outputs(self, B: int, n_values: int, W: int, dtype: Any) -> Tuple[Any, Any]:
        """A (B, n_values) array of ``dtype`` and the (B, W) int32 positions of a max,
        from one allocation: two fresh blocks of this size cost the allocator (and the
        page faults of memory it has just given back) markedly more than one."""
        xp = self.xp
        size = B * n_values * xp.dtype(dtype).itemsize
        raw = xp.empty((size + B * W * 4,), dtype="uint8")
        values = raw[:size].view(dtype).reshape(B, n_values)
        which = raw[size:].view("int32").reshape(B, W)
        return values, which

    def _scale(self, scale: Optional[Any], dtype: Any) -> Any:
        xp = self.xp
        if scale is None:
            return xp.empty((0,), dtype=dtype)
        return xp.ascontiguousarray(scale, dtype=dtype)

    def segment_sum(
        self, X: Any, lengths: Any, weighted: bool = False, starts: Optional[Any] = None,
        scale: Optional[Any] = None,
    ) -> Any:
        if not self._fits(X, lengths):
            return super().segment_sum(X, lengths, weighted, starts, scale)
        xp = self.xp
        out = xp.empty((int(lengths.shape[0]), int(X.shape[1])), dtype=X.dtype)
        self.kernels.segment_sum(
            xp.ascontiguousarray(X), *self._index(lengths, starts), out, weighted, self._scale(scale, X.dtype)
        )
        return out

    def segment_max(
        self, X: Any, lengths: Any, sums: Optional[Any] = None, starts: Optional[Any] = None
    ) -> Tuple[Any, Any]:
        if not self._fits(X, lengths):
            return super().segment_max(X, lengths, sums, starts)
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        maxes, which = self._outputs(B, W, W, X.dtype)
        none = xp.empty((0, W), dtype=X.dtype)
        self.kernels.segment_max(
            xp.ascontiguousarray(X), *self._index(lengths, starts), maxes, which, none, self._scale(None, X.dtype)
        )
        return maxes, which

    def segment_sum_max(self, X: Any, lengths: Any, starts: Optional[Any] = None) -> Tuple[Any, Any, Any]:
        if not self._fits(X, lengths):
            return super().segment_sum_max(X, lengths, starts)
        W = int(X.shape[1])
        Y, which = self.segment_mean_max(X, lengths, None, starts)
        return Y[:, :W], Y[:, W:], which

    def segment_mean_max(
        self, X: Any, lengths: Any, scale: Optional[Any], starts: Optional[Any] = None
    ) -> Tuple[Any, Any]:
        """One pass: the scaled sums and the maxima written into the two halves of Y."""
        if not self._fits(X, lengths):
            return super().segment_mean_max(X, lengths, scale, starts)
        xp = self.xp
        B, W = int(lengths.shape[0]), int(X.shape[1])
        Y, which = self._outputs(B, 2 * W, W, X.dtype)
        self.kernels.segment_max(
            xp.ascontiguousarray(X), *self._index(lengths, starts), Y[:, W:], which, Y[:, :W],
            self._scale(scale, X.dtype),
        )
        return Y, which

    # --- pieces: a batch of padded arrays in one call each (see _kernels.pieces_sum) ---
    pieces = True

    def pieces_dtype(self, dtype: Any) -> bool:
        """Whether the pieces kernels take data of ``dtype`` (float32 and float64)."""
        return dtype in _REAL

    def pieces_pool(
        self, kind: str, arrays: List[Any], block: Any, starts: Any, lengths: Any, seg_ptr: Any,
        scale: Optional[Any], W: int, dtype: Any,
    ) -> Tuple[Any, Optional[Any]]:
        """``kind`` ("sum", "mean", "mean_sqrt_len", "weighted_mean", "max", "mean_max")
        of every output row over its pieces (piece p: rows ``starts[p] ..`` of
        ``arrays[block[p]]``; row b: pieces ``seg_ptr[b] .. seg_ptr[b + 1] - 1``), in one
        call: the result (B, W) or (B, 2W) in ``dtype`` and, for a max, the (B, W) int32
        positions of the maxima among each row's rows."""
        xp = self.xp
        B = int(seg_ptr.shape[0]) - 1
        sc = self._scale(scale, dtype)
        if kind in ("max", "mean_max"):
            n_values = 2 * W if kind == "mean_max" else W
            Y, which = self._outputs(B, n_values, W, dtype)
            out, sums = (Y[:, W:], Y[:, :W]) if kind == "mean_max" else (Y, xp.empty((0, W), dtype=dtype))
            self.kernels.pieces_max(arrays, block, starts, lengths, seg_ptr, out, which, sums, sc)
            return Y, which
        Y = xp.empty((B, W), dtype=dtype)
        self.kernels.pieces_sum(arrays, block, starts, lengths, seg_ptr, Y, kind == "weighted_mean", sc)
        return Y, None

    def pieces_grad(
        self, kind: str, n_rows: int, tiles: Any, starts: Any, lengths: Any, seg_ptr: Any, dY: Any,
        scale: Optional[Any], which: Optional[Any],
    ) -> Any:
        """The gradient of ``pieces_pool`` for ``dY``, as one (n_rows, W) array that the
        pieces tile (piece p owns rows ``tiles[p] .. tiles[p + 1] - 1``, its real rows
        from ``starts[p]``), written once, zeros included."""
        xp = self.xp
        dtype = dY.dtype
        W = int(dY.shape[1]) // 2 if kind == "mean_max" else int(dY.shape[1])
        dX = xp.empty((n_rows, W), dtype=dtype)
        none = xp.empty((0, W), dtype=dtype)
        dY = _rows_contiguous(xp, dY)
        if kind == "mean_max":
            d_sum, d_max = dY[:, :W], dY[:, W:]
        elif kind == "max":
            d_sum, d_max = none, dY
        else:
            d_sum, d_max = dY, none
        self.kernels.pieces_fill(
            dX, tiles, starts, lengths, seg_ptr, d_sum, self._scale(scale, dtype), kind == "weighted_mean",
            d_max, which if which is not None else xp.empty((0, W), dtype="int32"),
        )
        return dX

    # --- GeM ---------------------------------------------------------------------------
    def gem_sum(self, X: Any, lengths: Any, p: float, eps: float) -> Optional[Any]:
        if X.dtype not in _REAL or int(X.shape[1]) == 0:
            return None
        xp = self.xp
        out = xp.empty((int(lengths.shape[0]), int(X.shape[1])), dtype=X.dtype)
        self.kernels.gem_sum(xp.ascontiguousarray(X), xp.ascontiguousarray(lengths, dtype="int64"), p, eps, out)
        return out

    def gem_grad(self, X: Any, lengths: Any, p: float, eps: float, d: Any) -> Any:
        xp = self.xp
        X = xp.ascontiguousarray(X)
        dX = xp.empty(X.shape, dtype=X.dtype)
        self.kernels.gem_grad(
            X, xp.ascontiguousarray(lengths, dtype="int64"), p, eps, xp.ascontiguousarray(d, dtype=X.dtype), dX
        )
        return dX

    def _fill(
        self, n_rows: int, lengths: Any, starts: Optional[Any], block: int,
        d_sum: Optional[Any], scale: Optional[Any], weighted: bool, d_max: Optional[Any], which: Optional[Any],
    ) -> Optional[Any]:
        """The kernels' one-pass gradient, or None if they do not take these arrays
        (``d_sum`` and ``d_max`` may be column blocks of one array: rows contiguous)."""
        xp = self.xp
        d = d_sum if d_sum is not None else d_max
        assert d is not None
        dtype, W = d.dtype, int(d.shape[1])
        if (
            dtype not in _REAL or n_rows == 0 or W == 0 or int(lengths.shape[0]) == 0
            or (d_max is not None and (d_max.dtype != dtype or getattr(which, "dtype", None) != _INT32))
            or (starts is not None and block <= 0)
        ):
            return None
        empty = xp.empty((0, W), dtype=dtype)
        dX = xp.empty((n_rows, W), dtype=dtype)
        self.kernels.segment_fill(
            dX, *self._index(lengths, starts), block if starts is not None else 0,
            empty if d_sum is None else _rows_contiguous(xp, d_sum), self._scale(scale, dtype), weighted,
            empty if d_max is None else _rows_contiguous(xp, d_max),
            xp.empty((0, W), dtype="int32") if which is None else xp.ascontiguousarray(which),
        )
        return dX

    def sum_backprop(
        self, d: Any, lengths: Any, n_rows: int, weighted: bool = False,
        starts: Optional[Any] = None, block: int = 0, scale: Optional[Any] = None,
    ) -> Any:
        dX = self._fill(n_rows, lengths, starts, block, d, scale, weighted, None, None)
        return super().sum_backprop(d, lengths, n_rows, weighted, starts, block, scale) if dX is None else dX

    def max_backprop(
        self, dY: Any, which: Any, lengths: Any, n_rows: int, into: Optional[Any] = None,
        starts: Optional[Any] = None, block: int = 0,
    ) -> Any:
        dX = None if into is not None else self._fill(n_rows, lengths, starts, block, None, None, False, dY, which)
        if dX is None:
            return super().max_backprop(dY, which, lengths, n_rows, into, starts, block)
        return dX

    def sum_max_backprop(
        self, d_sum: Any, d_max: Any, which: Any, lengths: Any, n_rows: int,
        starts: Optional[Any] = None, block: int = 0,
    ) -> Any:
        dX = None
        if d_sum.dtype == d_max.dtype:
            dX = self._fill(n_rows, lengths, starts, block, d_sum, None, False, d_max, which)
        if dX is None:
            return super().sum_max_backprop(d_sum, d_max, which, lengths, n_rows, starts, block)
        return dX

    def mean_max_backprop(
        self, dY: Any, which: Any, lengths: Any, n_rows: int, scale: Any,
        starts: Optional[Any] = None, block: int = 0,
    ) -> Any:
        W = int(dY.shape[1]) // 2
        dX = self._fill(n_rows, lengths, starts, block, dY[:, :W], scale, False, dY[:, W:], which)
        if dX is None:
            return super().mean_max_backprop(dY, which, lengths, n_rows, scale, starts, block)
        return dX



_BACKENDS: Dict[int, PoolingBackend] = {}


def _backend_class(ops: Ops) -> Type[PoolingBackend]:
    if not isinstance(ops, NumpyOps):
        return PoolingBackend
    return NumpyPoolingBackend if COMPILED is None else CompiledPoolingBackend


def get_pooling_backend(ops: Ops) -> PoolingBackend:
    """The pooling kernels for ``ops``: the compiled ones (or, without them, the NumPy
    ones) for NumpyOps, the xp-generic ones for any other Ops."""
    key = id(ops)
    backend = _BACKENDS.get(key)
    cls = _backend_class(ops)
    if backend is None or backend.ops is not ops or type(backend) is not cls:
        backend = cls(ops)
        if len(_BACKENDS) > 64:
            _BACKENDS.clear()
        _BACKENDS[key] = backend
    return backend


__all__ = [
    "COMPILED",
    "LAZY_ZEROS_BYTES",
    "l3_cache_bytes",
    "stream_min_bytes",
    "zeros",
    "GATHER_BUDGET",
    "acc_dtype",
    "PoolingBackend",
    "NumpyPoolingBackend",
    "CompiledPoolingBackend",
    "get_pooling_backend",
]
