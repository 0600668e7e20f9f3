"""Streaming stores for large gradients, and what the gradient's consumer pays for them
(``python -m benchmarks stream``).

From half the L3 cache on (``backends.pooling.stream_min_bytes``), the compiled kernels
write the padding of a gradient, and ``backends.pooling.zeros`` its zeros, with
streaming stores: they skip the cache, so they neither read the lines first nor evict
what runs next, but the consumer of the gradient then reads it from memory, not from the
cache. This times the core's steps on batches of 12, 20 and 32 Docs (the last is
``benchmarks core``'s, 24 MiB of gradients; 8 Docs with --quick) with streaming and with
plain stores whatever the size, alone and followed by what a consumer does with the
gradients: one read of each, another listener's gradients added into them (as
spacy-transformers does with two listeners), or what spacy-transformers' listener
callback does with them (the sum of squares of each, for its loss, then one array of
the batch).

The two settings take turns: every round times each (step, setting) once, on its
second call in a row (the first leaves the allocator and the cache as that setting
does in training, one step after another); the table gives medians over the rounds,
as ratios to the roofline timed once per round.
"""
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy

from thinc_trf_layers import cls_pool, reduce_mean, reduce_mean_max, trf_pool
from thinc_trf_layers.backends import pooling

from .bench_core import make_docs
from .common import Row

SETTINGS = {"streaming stores": 0, "plain stores": 1 << 62}


def _read(grads: List[Any]) -> object:
    return sum(float(d.sum()) for d in grads)


def _spacy_transformers(grads: List[Any]) -> object:
    # spacy_transformers.pipeline_component: accumulate_gradient, then unsplit_by_doc
    loss = sum(float((d**2).sum()) for d in grads)
    return loss, numpy.concatenate([d.reshape(-1, d.shape[-1]) for d in grads])


def _add_into(others: List[Any]) -> Callable[[List[Any]], object]:
    # spacy-transformers with two listeners: the second one's gradients added into the
    # first one's arrays, in place
    def add(grads: List[Any]) -> object:
        for d, other in zip(grads, others):
            d += other
        return grads

    return add


def consumers(docs: List[Any]) -> List[Tuple[str, Callable[[List[Any]], object]]]:
    others = [numpy.ones_like(d.tensors[0]) for d in docs]
    return [
        ("", lambda grads: grads),
        (", then one read of each gradient", _read),
        (", then another gradient added into each", _add_into(others)),
        (", then spacy-transformers' loss and batch", _spacy_transformers),
    ]


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    if pooling.COMPILED is None:
        return [("Streaming stores: not measured (the compiled kernels were not built)", [])]
    return [_table(n_docs, 5 if quick else 40) for n_docs in ([8] if quick else [12, 20, 32])]


def _table(n_docs: int, rounds: int) -> Tuple[str, List[Row]]:
    kernels = pooling.COMPILED
    assert kernels is not None
    docs = make_docs(n_docs, 128, 768)
    padded = sum(int(d.tensors[0].size) for d in docs) * 4
    src = numpy.ones(padded // 4, dtype="float32")
    dst = numpy.empty_like(src)
    steps: Dict[str, Callable[[], object]] = {}
    for name, model in [
        ("cls_pool()", cls_pool()), ("trf_pool(reduce_mean)", trf_pool(reduce_mean())),
        ("trf_pool(reduce_mean_max)", trf_pool(reduce_mean_max())),
    ]:
        model.initialize(X=docs)
        Y, _ = model(docs, is_train=True)
        dY = numpy.ones_like(Y)
        for what, consume in consumers(docs):
            steps[name + what] = _step(model, docs, dY, consume)
    times: Dict[Tuple[str, str], List[float]] = {(k, s): [] for k in steps for s in SETTINGS}
    roofs: List[float] = []
    old = kernels.set_stream_min_bytes(SETTINGS["streaming stores"])
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            numpy.copyto(dst, src)
            roofs.append(time.perf_counter() - t0)
            for name, step in steps.items():
                for setting, min_bytes in SETTINGS.items():
                    kernels.set_stream_min_bytes(min_bytes)
                    step()
                    t0 = time.perf_counter()
                    step()
                    times[(name, setting)].append(time.perf_counter() - t0)
    finally:
        kernels.set_stream_min_bytes(old)
    roof = float(numpy.median(roofs))
    case = f"{n_docs} docs x 1-3 x 128 x 768"
    rows = [Row(case, "roofline: copyto of the padded batch", roof, 1.0)]
    for name in steps:
        for setting in SETTINGS:
            t = float(numpy.median(times[(name, setting)]))
            rows.append(Row(case, f"{name}: {setting}", t, t / roof))
    default = pooling.stream_min_bytes()
    title = (
        f"Gradients of {padded / 2**20:.1f} MiB written with streaming or plain stores, alone and with "
        f"their consumer (forward + backward [+ consumer], medians of {rounds} rounds, the settings "
        f"taking turns; by default this machine streams from {default / 2**20:.0f} MiB on, so "
        f"{'with' if padded >= default else 'without'} streaming at this size)"
    )
    return title, rows


def _step(model: Any, docs: Any, dY: Any, consume: Callable[[List[Any]], object]) -> Callable[[], object]:
    def step() -> object:
        Y, backprop = model(docs, is_train=True)
        return consume([d.tensors[0] for d in backprop(dY)])

    return step
