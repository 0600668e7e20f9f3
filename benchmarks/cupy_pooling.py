"""Pooling on CupyOps (``python -m benchmarks --ops cupy [--quick] pooling``): forward +
backward of our poolings and of Thinc's, on the GPU, in the same run.

``bench_pooling`` builds NumPy data and times against a CPU roofline; here the same
layers (its ``OURS`` and ``THINC`` lists) run on CupyOps with the data on the device, each
call followed by a device synchronisation, and the ratio is to Thinc's layer of the same
name where there is one. Needs a CUDA GPU with CuPy; without one it stops with a message.
"""
from typing import Any, Callable, Dict, List, Tuple

import numpy
from thinc.api import get_current_ops, set_current_ops
from thinc.types import Ragged

from thinc_trf_layers import with_padded_mask

from .bench_pooling import OURS, PADDED, THINC
from .common import Row, random_lengths, timeit


def _device() -> Tuple[Any, Any]:
    """CupyOps and a function that waits for the device; SystemExit without a GPU."""
    from thinc.util import has_cupy_gpu

    if not has_cupy_gpu:
        raise SystemExit("--ops cupy needs a CUDA GPU with CuPy (thinc.util.has_cupy_gpu is False)")
    import cupy
    from thinc.api import CupyOps

    return CupyOps(), cupy.cuda.get_current_stream().synchronize


def _fwd_bwd(ops: Any, model: Any, X: Any, sync: Callable[[], None]) -> Callable[[], object]:
    model.initialize(X=X)
    Y, _ = model(X, is_train=True)
    dY = ops.xp.ones_like(Y)

    def step() -> object:
        _, backprop = model(X, is_train=True)
        dX = backprop(dY)
        sync()
        return dX

    return step


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    ops, sync = _device()
    previous = get_current_ops()
    set_current_ops(ops)  # the layers below are made on CupyOps
    try:
        rng = numpy.random.RandomState(0)
        scale = 4 if quick else 1
        B, L, W = 32 // scale, 256, 768
        lengths = random_lengths(rng, B, 16, 255)
        X3 = rng.uniform(-1, 1, (B, L, W)).astype("float32")
        data = numpy.concatenate([X3[i, :n] for i, n in enumerate(lengths)])
        B2, W2 = 4096 // scale, 384
        lengths2 = random_lengths(rng, B2, 1, 16)
        data2 = rng.uniform(-1, 1, (int(lengths2.sum()), W2)).astype("float32")
        cases = [
            (f"{B}x{L}x{W} f32, len 16..255", Ragged(ops.asarray(data), ops.asarray(lengths))),
            (f"{B2} rows x 384 f32, len 1..16", Ragged(ops.asarray(data2), ops.asarray(lengths2))),
        ]
        rows: List[Row] = []
        for case, X in cases:
            thinc: Dict[str, float] = {}
            for name, make in THINC:
                thinc[name] = timeit(_fwd_bwd(ops, make(), X, sync))
                rows.append(Row(case, f"thinc: {name}", thinc[name]))
            for name, make in OURS:
                t = timeit(_fwd_bwd(ops, make(), X, sync))
                theirs = "concatenate(reduce_mean, reduce_max)" if name == "reduce_mean_max" else name
                ref = thinc.get(theirs)
                rows.append(Row(case, f"ours: {name}", t, t / ref if ref else None,
                                f"/ thinc {theirs}" if ref else ""))
        padded: List[Row] = []
        X3d, lengths_d = ops.asarray(X3), ops.asarray(lengths)
        for name in PADDED:
            t = timeit(_fwd_bwd(ops, with_padded_mask(dict(OURS)[name]()), (X3d, lengths_d), sync))
            padded.append(Row(cases[0][0], f"ours: with_padded_mask({name})", t))
        return [
            ("Pooling on CupyOps, a Ragged on the device (fwd + bwd); ratio to Thinc's", rows),
            ("with_padded_mask on CupyOps, a padded batch on the device (fwd + bwd)", padded),
        ]
    finally:
        set_current_ops(previous)
