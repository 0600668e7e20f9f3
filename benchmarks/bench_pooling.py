"""Pooling: forward + backward of our poolings against Thinc's layers, the PyTorch
masked-pooling recipes and a roofline, all in the same run (``python -m benchmarks pooling``).

Roofline: one ``numpy.copyto`` of the bytes the forward must read and write, plus one for
the backward (on a Ragged both move the N x W data once; on a padded batch the backward
writes the whole padded gradient). Ratios are ``seconds / roofline`` for the Ragged and
padded tables (each row against a roofline timed just before it, medians over
``ROUNDS`` rounds: ``benchmarks.common.against_roofline``), ``seconds / ours`` for the
comparison tables.
"""
from typing import Any, Callable, List, Tuple

import numpy
from thinc.api import NumpyOps, concatenate
from thinc.api import reduce_first as thinc_first
from thinc.api import reduce_last as thinc_last
from thinc.api import reduce_max as thinc_max
from thinc.api import reduce_mean as thinc_mean
from thinc.api import reduce_sum as thinc_sum
from thinc.types import Ragged

from thinc_trf_layers import (
    attention_pool,
    reduce_first,
    reduce_gem,
    reduce_last,
    reduce_max,
    reduce_mean,
    reduce_mean_max,
    reduce_mean_sqrt_len,
    reduce_sum,
    reduce_weighted_mean,
    with_padded_mask,
)

from .common import Row, against_roofline, fwd_bwd, random_lengths
from .common import roofline as _roofline
from .common import timeit as _timeit

#: Rounds: each row is timed once per round right after a roofline of its own, and the
#: tables give the medians over the rounds (``common.against_roofline``); 1 with --quick.
ROUNDS = 5


def timeit(fn: Callable[[], object]) -> float:
    return min(_timeit(fn) for _ in range(ROUNDS))


OURS = [
    ("reduce_first", reduce_first),
    ("reduce_last", reduce_last),
    ("reduce_sum", reduce_sum),
    ("reduce_mean", reduce_mean),
    ("reduce_max", reduce_max),
    ("reduce_mean_max", reduce_mean_max),
    ("reduce_mean_sqrt_len", reduce_mean_sqrt_len),
    ("reduce_weighted_mean", reduce_weighted_mean),
    ("reduce_gem", reduce_gem),
    ("attention_pool", attention_pool),
]
THINC = [
    ("reduce_first", thinc_first),
    ("reduce_last", thinc_last),
    ("reduce_sum", thinc_sum),
    ("reduce_mean", thinc_mean),
    ("reduce_max", thinc_max),
    ("concatenate(reduce_mean, reduce_max)", lambda: concatenate(thinc_mean(), thinc_max())),
]
PADDED = ["reduce_first", "reduce_last", "reduce_sum", "reduce_mean", "reduce_max", "reduce_mean_max"]


def _ragged_table(case: str, X: Ragged) -> List[Row]:
    N, W = X.dataXd.shape
    nbytes = N * W * X.dataXd.itemsize
    out_bytes = len(X.lengths) * W * X.dataXd.itemsize

    def roof() -> float:
        return _roofline(nbytes, out_bytes) + _roofline(out_bytes, nbytes)

    steps = [(f"ours: {name}", fwd_bwd(make(), X), roof, "") for name, make in OURS]
    steps += [(f"thinc: {name}", fwd_bwd(make(), X), roof, "") for name, make in THINC]
    rows = against_roofline(case, steps, ROUNDS)
    return [Row(case, "roofline: copyto of the bytes fwd + bwd move", min(roof() for _ in range(ROUNDS)), 1.0)] + rows


def _torch_recipes(X3: numpy.ndarray, mask: numpy.ndarray) -> List[Tuple[str, Callable[[], object]]]:
    import torch

    Xt = torch.from_numpy(X3).requires_grad_(True)
    mt = torch.from_numpy(mask.astype("int64"))

    def masked_mean() -> object:
        m = mt.unsqueeze(-1).expand(Xt.size()).float()
        summed = (Xt * m).sum(1)
        counts = torch.clamp(m.sum(1), min=1e-9)
        Y = summed / counts
        Y.backward(torch.ones_like(Y))
        Xt.grad = None
        return Y

    def masked_max() -> object:
        m = mt.unsqueeze(-1).expand(Xt.size())
        filled = Xt.masked_fill(m == 0, -1e9)
        Y = torch.max(filled, 1)[0]
        Y.backward(torch.ones_like(Y))
        Xt.grad = None
        return Y

    def masked_sum() -> object:
        m = mt.unsqueeze(-1).expand(Xt.size()).float()
        Y = (Xt * m).sum(1)
        Y.backward(torch.ones_like(Y))
        Xt.grad = None
        return Y

    return [("reduce_mean", masked_mean), ("reduce_max", masked_max), ("reduce_sum", masked_sum)]


def _padded_tables(case: str, X3: numpy.ndarray, lengths: numpy.ndarray) -> List[Tuple[str, List[Row]]]:
    B, L, W = X3.shape
    itemsize = X3.itemsize
    real = int(lengths.sum()) * W * itemsize
    padded = B * L * W * itemsize
    out_bytes = B * W * itemsize

    def roof() -> float:
        return _roofline(real, out_bytes) + _roofline(out_bytes, padded)

    mask = numpy.arange(L)[None, :] < lengths[:, None]
    steps = [
        (f"ours: with_padded_mask({name}) lengths", fwd_bwd(with_padded_mask(dict(OURS)[name]()), (X3, lengths)), roof, "")
        for name in PADDED
    ]
    steps.append(("ours: with_padded_mask(reduce_mean) mask", fwd_bwd(with_padded_mask(reduce_mean()), (X3, mask.astype("int64"))), roof, ""))
    try:
        recipes = _torch_recipes(X3, mask)
    except ImportError:
        recipes = []
    steps += [(f"torch recipe: masked {name[7:]}", fn, roof, "") for name, fn in recipes]
    rows = [Row(case, "roofline: copyto of the bytes fwd + bwd move", min(roof() for _ in range(ROUNDS)), 1.0)]
    rows += against_roofline(case, steps, ROUNDS)
    seconds = {row.name: row.seconds for row in rows}
    compare = [
        Row(case, f"torch masked {name[7:]} / ours", seconds[f"torch recipe: masked {name[7:]}"],
            seconds[f"torch recipe: masked {name[7:]}"] / seconds[f"ours: with_padded_mask({name}) lengths"],
            "x faster than torch")
        for name, _ in recipes
    ]
    return [(f"Pooling on a padded batch (forward + backward), {case}; ratio to roofline", rows),
            (f"PyTorch masked recipes (1 thread) against with_padded_mask, {case}", compare)]


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    global ROUNDS
    ROUNDS = 1 if quick else 5
    rng = numpy.random.RandomState(0)
    assert isinstance(NumpyOps(), NumpyOps)
    tables: List[Tuple[str, List[Row]]] = []
    scale = 4 if quick else 1
    # 32 x 256 x 768 with random lengths 16..255
    B, L, W = 32 // scale, 256, 768
    lengths = random_lengths(rng, B, 16, 255)
    X3 = rng.uniform(-1, 1, (B, L, W)).astype("float32")
    data = numpy.concatenate([X3[i, :n] for i, n in enumerate(lengths)])
    case = f"{B}x{L}x{W} f32, len 16..255"
    rows = _ragged_table(case, Ragged(data, lengths))
    # 4096 short rows of width 384
    B2, W2 = 4096 // scale, 384
    lengths2 = random_lengths(rng, B2, 1, 16)
    data2 = rng.uniform(-1, 1, (int(lengths2.sum()), W2)).astype("float32")
    rows2 = _ragged_table(f"{B2} rows x 384 f32, len 1..16", Ragged(data2, lengths2))
    tables.append(("Pooling on a Ragged (forward + backward), ratio to roofline", rows + rows2))
    tables.extend(_padded_tables(case, X3, lengths))
    # reduce_mean_max against Thinc's concatenate(reduce_mean(), reduce_max())
    mm = []
    for c, Xr in ((case, Ragged(data, lengths)), (f"{B2} rows x 384", Ragged(data2, lengths2))):
        ours = timeit(fwd_bwd(reduce_mean_max(), Xr))
        theirs = timeit(fwd_bwd(concatenate(thinc_mean(), thinc_max()), Xr))
        mm.append(Row(c, "ours reduce_mean_max / thinc concatenate", ours, ours / theirs, "goal <= 0.5"))
    tables.append(("reduce_mean_max against Thinc's concatenate(reduce_mean(), reduce_max())", mm))
    return tables
