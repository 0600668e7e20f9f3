"""The transformer-output core: pooling the real wordpieces of a batch of padded per-Doc
tensors (``python -m benchmarks core``).

32 Docs of 1-3 spans, each span padded to 128 wordpieces, with 1..128 real ones, width
768, float32, one ``TransformerOutput`` (separate arrays) per Doc. Every row times
forward + backward. Ratios are to the roofline of the padded batch: one ``numpy.copyto``
of the padded tensors (the backward must write them whole, padding included; the
forward reads the real rows). For comparison, the poolings alone on the
already-gathered ``Ragged`` of the same rows, against the same roofline, and ``bare_cls``:
a [CLS] pooling under the same contract as a plain NumPy loop over the Docs.
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

from .common import Row, against_roofline, fwd_bwd
from .common import roofline as _roofline

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

ROUNDS = 5


def make_docs(n_docs: int, n_pieces: int, width: int, seed: int = 0) -> List[TransformerOutput]:
    rng = numpy.random.RandomState(seed)
    docs = []
    for i in range(n_docs):
        n_spans = 1 + i % 3
        lengths = rng.randint(1, n_pieces + 1, size=n_spans).astype("int32")
        T = rng.uniform(-1, 1, (n_spans, n_pieces, width)).astype("float32")
        docs.append(TransformerOutput(tensors=[T], lengths=lengths))
    return docs


def bare_cls(docs: List[TransformerOutput]) -> List[TransformerOutput]:
    """``cls_pool``'s forward and backward as a plain NumPy loop: each Doc's [CLS] rows
    averaged, and its gradient, a zeroed tensor with one row per span written; no checks."""
    Y = numpy.stack([d.tensors[0][:, 0].mean(axis=0) for d in docs])
    grads = []
    for d, dy in zip(docs, numpy.ones_like(Y)):
        dT = numpy.zeros_like(d.tensors[0])
        dT[:, 0] = dy / dT.shape[0]
        grads.append(TransformerOutput(tensors=[dT], lengths=d.lengths))
    return grads


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    """Every row is timed once per round, right after that round's roofline, and the
    table gives the median over the rounds of time and of ratio: on a shared machine the
    memory bandwidth moves from minute to minute, and a ratio to a roofline measured
    seconds apart moves with it."""
    rounds = 1 if quick else ROUNDS
    n_docs = 8 if quick else 32
    docs = make_docs(n_docs, 128, 768)
    padded = sum(int(d.tensors[0].size) for d in docs) * 4
    case = f"{n_docs} docs x 1-3 x 128 x 768"
    gathered = Ragged(
        numpy.concatenate([numpy.concatenate([d.tensors[0][s, :n] for s, n in enumerate(d.lengths)]) for d in docs]),
        numpy.asarray([int(d.lengths.sum()) for d in docs], dtype="int32"),
    )
    zeros_n = padded // 4
    gathered_bytes = int(gathered.data.size) * 4

    def roof() -> float:
        return _roofline(padded, padded)

    def roof_gathered() -> float:
        return _roofline(gathered_bytes, gathered_bytes)

    steps: List[Tuple[str, Callable[[], object], Callable[[], float], str]] = []
    for name, make in POOLINGS:
        goal = "goal <= 1.5" if name in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_mean_max") else ""
        steps.append((f"trf_pool({name})", fwd_bwd(trf_pool(make()), docs), roof, goal))
    steps.append(("cls_pool()", fwd_bwd(cls_pool(), docs), roof, "goal <= 0.6"))
    steps.append((
        "numpy.zeros of the padded batch", lambda: numpy.zeros(zeros_n, dtype="float32"), roof,
        "what a full gradient costs, memset",
    ))
    steps.append((
        "bare [CLS] mean in NumPy (bare_cls)", lambda: bare_cls(docs), roof, "no checks, no layers",
    ))
    goals = {"attention_pool": "goal <= 3 (gathered)", "reduce_gem": "goal <= 6 (gathered)"}
    for name, make in POOLINGS:
        steps.append((
            f"{name} alone, on the gathered Ragged", fwd_bwd(make(), gathered), roof_gathered,
            goals.get(name, "goal <= 1.5 (gathered)"),
        ))
    rows = [
        Row(case, "roofline: copyto of the padded batch", min(roof() for _ in range(rounds)), 1.0),
        Row(case, "roofline: copyto of the gathered rows", min(roof_gathered() for _ in range(rounds)), 1.0,
            "the reference of the rows 'alone, on the gathered Ragged'"),
    ]
    rows += against_roofline(case, steps, rounds)
    title = (
        "Transformer outputs to one vector per Doc (forward + backward), ratio to roofline "
        f"(medians of {rounds} rounds, each ratio to the roofline timed just before it)"
    )
    return [(title, rows)]
