"""The transformer-output core: pooling the real wordpieces of a batch of padded per-Doc
tensors (``python -m benchmarks core``).

32 Docs of 1-3 spans, each span padded to 128 wordpieces, with 1..128 real ones, width
768, float32, one ``TransformerOutput`` (separate arrays) per Doc. Every row times
forward + backward. Ratios are to the roofline of the padded batch: one ``numpy.copyto``
of the padded tensors (the backward must write them whole, padding included; the
forward reads the real rows). For comparison, the poolings alone on the
already-gathered ``Ragged`` of the same rows, against the same roofline.
"""
from typing import Any, Callable, List, Tuple

import numpy
from thinc.api import Model
from thinc.types import Ragged

from thinc_trf_layers import (
    TransformerOutput,
    attention_pool,
    cls_pool,
    reduce_first,
    reduce_gem,
    reduce_last,
    reduce_max,
    reduce_mean,
    reduce_mean_max,
    reduce_sum,
    reduce_weighted_mean,
    trf_pool,
)

from .common import Row, fwd_bwd
from .common import roofline as _roofline
from .common import timeit as _timeit

ROUNDS = 3

POOLINGS: List[Tuple[str, Callable[[], Model[Ragged, Any]]]] = [
    ("reduce_sum", reduce_sum),
    ("reduce_mean", reduce_mean),
    ("reduce_max", reduce_max),
    ("reduce_mean_max", reduce_mean_max),
    ("reduce_first", reduce_first),
    ("reduce_last", reduce_last),
    ("reduce_weighted_mean", reduce_weighted_mean),
    ("attention_pool", attention_pool),
    ("reduce_gem", reduce_gem),
]


def timeit(fn: Callable[[], object]) -> float:
    return min(_timeit(fn) for _ in range(ROUNDS))


def roofline(n_read: int, n_written: int) -> float:
    return min(_roofline(n_read, n_written) for _ in range(ROUNDS))


def make_docs(n_docs: int, n_pieces: int, width: int, seed: int = 0) -> List[TransformerOutput]:
    rng = numpy.random.RandomState(seed)
    docs = []
    for i in range(n_docs):
        n_spans = 1 + i % 3
        lengths = rng.randint(1, n_pieces + 1, size=n_spans).astype("int32")
        T = rng.uniform(-1, 1, (n_spans, n_pieces, width)).astype("float32")
        docs.append(TransformerOutput(tensors=[T], lengths=lengths))
    return docs


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    global ROUNDS
    ROUNDS = 1 if quick else 3
    n_docs = 8 if quick else 32
    docs = make_docs(n_docs, 128, 768)
    padded = sum(int(d.tensors[0].size) for d in docs) * 4
    case = f"{n_docs} docs x 1-3 x 128 x 768"
    roof = roofline(padded, padded)
    rows = [Row(case, "roofline: copyto of the padded batch", roof, 1.0)]
    gathered = Ragged(
        numpy.concatenate([numpy.concatenate([d.tensors[0][s, :n] for s, n in enumerate(d.lengths)]) for d in docs]),
        numpy.asarray([int(d.lengths.sum()) for d in docs], dtype="int32"),
    )
    for name, make in POOLINGS:
        t = timeit(fwd_bwd(trf_pool(make()), docs))
        goal = "goal <= 1.5" if name in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_mean_max") else ""
        rows.append(Row(case, f"trf_pool({name})", t, t / roof, goal))
    t = timeit(fwd_bwd(cls_pool(), docs))
    rows.append(Row(case, "cls_pool()", t, t / roof, "goal <= 0.6"))
    for name, make in POOLINGS:
        t = timeit(fwd_bwd(make(), gathered))
        rows.append(Row(case, f"{name} alone, on the gathered Ragged", t, t / roof))
    return [("Transformer outputs to one vector per Doc (forward + backward), ratio to roofline", rows)]
