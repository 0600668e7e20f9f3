"""The layer mixes' kernels: ``Y = sum_i c_i * X_i`` in blocks that fit in the L2 cache,
each layer read once (docs/design.md#speed)."""

from typing import Any, List, Sequence, Tuple

import numpy
from thinc.api import NumpyOps, Ops
from thinc.types import Floats3d

from ..gradients import zeros_view
from . import COMPILED
from .reduce import acc_dtype

#: Elements per block of the forward on NumPy arrays: 65536 float32 values are 256 KiB,
#: so the running sum and the scaled block (512 KiB together) stay in a 1 MiB L2 cache.
BLOCK_SIZE = 65536
#: Elements per block of the backward: only the block of ``dY`` is reused (once per
#: layer), so blocks can be larger and there are fewer calls.
BACKWARD_BLOCK_SIZE = 4 * BLOCK_SIZE


def _blocks(ops: Ops, n: int, size: int) -> List[Tuple[int, int]]:
    """``[start, end)`` blocks of ``size`` over ``n`` elements (one block off NumPy)."""
    size = size if ops.xp is numpy else max(n, 1)
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def mix_forward(ops: Ops, Xs: Sequence[Floats3d], used: Sequence[int], coefs: Any) -> Floats3d:
    """``sum_j coefs[j] * Xs[used[j]]`` in the inputs' dtype, ``coefs`` in ``acc_dtype``;
    other layers are not read."""
    xp, dtype = ops.xp, Xs[used[0]].dtype
    acc = xp.dtype(acc_dtype(dtype))
    Y = ops.alloc(tuple(Xs[used[0]].shape), dtype=dtype, zeros=False)
    Yf = Y.reshape(-1)
    n = int(Yf.size)
    if n == 0:
        return Y  # type: ignore[no-any-return]
    flats = [Xs[i].ravel() for i in used]
    cs = [coefs[j] for j in range(len(used))]
    blocks = _blocks(ops, n, BLOCK_SIZE)
    direct = dtype == acc
    tmp = xp.empty((blocks[0][1],), dtype=acc)
    buf = None if direct else xp.empty((blocks[0][1],), dtype=acc)
    for start, end in blocks:
        m = end - start
        out = Yf[start:end] if direct else buf[:m]  # type: ignore[index]
        scaled = tmp[:m]
        xp.multiply(flats[0][start:end], cs[0], out=out, dtype=acc)
        for j in range(1, len(flats)):
            xp.multiply(flats[j][start:end], cs[j], out=scaled, dtype=acc)
            xp.add(out, scaled, out=out)
        if not direct:
            Yf[start:end] = out
    return Y  # type: ignore[no-any-return]


def mix_backward(
    ops: Ops, Xs: Sequence[Floats3d], used: Sequence[int], coefs: Any, dY: Floats3d
) -> Tuple[List[Floats3d], Any]:
    """The gradients of ``mix_forward``: one per layer of ``Xs`` (``coefs[j] * dY``, or a
    zero view for a layer not used), and ``dot(dY, Xs[used[j]])`` per used layer (the
    gradient of ``coefs[j]``), summed over blocks in float64."""
    xp, shape, dtype = ops.xp, tuple(Xs[used[0]].shape), Xs[used[0]].dtype
    acc = xp.dtype(acc_dtype(dtype))
    convert = dtype != acc  # float16: blocks are cast to float32 (all layers share dY's dtype)
    dXs: List[Any] = [None] * len(Xs)
    for i, X in enumerate(Xs):
        if i not in used:
            # as trf2tensor's: a read-only zero view that takes no memory (xp.zeros costs
            # a memset once the allocator serves the block from its heap)
            dXs[i] = zeros_view(ops, tuple(X.shape), X.dtype)
    # One allocation for the used layers' gradients (each a C-contiguous view of it):
    # fresh memory is faulted in by the OS on first write, and one large block costs
    # markedly less to fault in than many (about 30% of the backward at 13 layers).
    stacked = ops.alloc((len(used),) + shape, dtype=dtype, zeros=False)
    for j, i in enumerate(used):
        dXs[i] = stacked[j]
    dots = xp.zeros((len(used),), dtype="float64")
    dYf = dY.ravel()
    n = int(dYf.size)
    if n == 0:
        return dXs, dots
    flats = [Xs[i].ravel() for i in used]
    out_flats = stacked.reshape(len(used), -1)
    cs = [coefs[j] for j in range(len(used))]
    for start, end in _blocks(ops, n, BACKWARD_BLOCK_SIZE):
        d = dYf[start:end]
        if convert:
            d = d.astype(acc)
        for j in range(len(used)):
            xp.multiply(d, cs[j], out=out_flats[j, start:end], dtype=acc)
            x = flats[j][start:end]
            dots[j] += xp.dot(d, x.astype(acc) if convert else x)
    return dXs, dots


def concat_last_axis(ops: Ops, arrays: Sequence[Floats3d]) -> Floats3d:
    """``xp.concatenate(arrays, axis=-1)`` for arrays of one shape and dtype; compiled, it
    writes the output row after row (twice as fast as ``numpy.concatenate`` on fresh memory)."""
    first = arrays[0]
    key = (first.dtype, first.shape)
    same = (
        isinstance(a, numpy.ndarray) and a.flags.c_contiguous and (a.dtype, a.shape) == key
        for a in arrays
    )
    if COMPILED is None or not isinstance(ops, NumpyOps) or not first.size or not all(same):
        return ops.xp.concatenate(list(arrays), axis=-1)  # type: ignore[no-any-return]
    width = int(first.shape[-1])
    rows = int(first.size) // width
    out = numpy.empty(tuple(first.shape[:-1]) + (len(arrays) * width,), dtype=first.dtype)
    parts = [numpy.asarray(a).reshape(rows, width).view("uint8") for a in arrays]
    COMPILED.concat_rows(out.reshape(rows, -1).view("uint8"), parts)
    return out  # type: ignore[return-value]
