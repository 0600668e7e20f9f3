"""Rows of the generic layer table for the transformer-output layers."""
from typing import Any, List

import numpy

from layer_cases import Case
from thinc.types import Ragged

from thinc_trf_layers import TransformerOutput

rng = numpy.random.RandomState(1)
LENGTHS = [numpy.array([4, 2], dtype="int32"), numpy.array([], dtype="int64"), numpy.array([1], dtype="int64")]
PIECES = [4, 3, 2]
WIDTH = 3
N_LAYERS = 3


def _tensor(lengths: Any, n_pieces: int) -> Any:
    T = rng.uniform(-1, 1, (len(lengths), n_pieces, WIDTH))
    for s, n in enumerate(lengths):
        T[s, n:] = 1e3  # padding: must never count
    return T


TENSORS = [[_tensor(lens, n), _tensor(lens, n)] for lens, n in zip(LENGTHS, PIECES)]
HIDDEN = [[_tensor(lens, n) for _ in range(N_LAYERS)] for lens, n in zip(LENGTHS, PIECES)]


def _align(lengths: Any, n_pieces: int) -> Ragged:
    """Tokens over a Doc's real positions: one or two wordpieces each, a whitespace token
    (no wordpiece) second, and a wordpiece shared by the last two tokens."""
    real = [s * n_pieces + j for s, n in enumerate(lengths) for j in range(n)]
    tokens = [real[i : i + 2] for i in range(0, len(real), 2)]
    tokens.insert(1, [])
    if len(real) > 1:
        tokens.append([real[-1]])
    flat = numpy.asarray([p for t in tokens for p in t], dtype="int32")
    return Ragged(flat, numpy.asarray([len(t) for t in tokens], dtype="int32"))


ALIGN = [_align(lens, n) for lens, n in zip(LENGTHS, PIECES)]


def make_batch() -> List[TransformerOutput]:
    return [
        TransformerOutput(
            tensors=[t.copy() for t in tensors],
            lengths=lens.copy(),
            hidden_states=[h.copy() for h in hidden],
            align=align,
        )
        for tensors, lens, hidden, align in zip(TENSORS, LENGTHS, HIDDEN, ALIGN)
    ]


#: token spans per Doc of make_batch (start, end): Doc 0 has 5 tokens, Doc 1 one, Doc 2 two
SPANS = Ragged(numpy.asarray([[0, 5], [1, 2], [2, 4], [0, 0], [0, 2]], dtype="int32"), numpy.asarray([4, 0, 1], dtype="int32"))


def make_spans() -> Any:
    return (make_batch(), Ragged(SPANS.data.copy(), SPANS.lengths.copy()))


def _token_rows(X: TransformerOutput, token: int) -> Any:
    flat = X.tensors[0].reshape(-1, WIDTH)
    start = int(X.align.lengths[:token].sum())
    return flat[X.align.dataXd[start : start + int(X.align.lengths[token])]]


def _token_means(Xs: List[TransformerOutput]) -> Any:
    return [
        numpy.stack([_mean(_token_rows(X, t)) for t in range(len(X.align.lengths))]).reshape(-1, WIDTH)
        for X in Xs
    ]


def _span_means(X: Any) -> Any:
    Xs, spans = X
    out = []
    offsets = numpy.concatenate([[0], numpy.cumsum(spans.lengths)])
    for i, doc in enumerate(Xs):
        flat = doc.tensors[0].reshape(-1, WIDTH)
        for start, end in spans.data[offsets[i] : offsets[i + 1]]:
            first, last = int(doc.align.lengths[:start].sum()), int(doc.align.lengths[:end].sum())
            out.append(_mean(flat[sorted(set(doc.align.dataXd[first:last].tolist()))]))
    return numpy.stack(out)


def _token_ragged(Xs: List[TransformerOutput]) -> Ragged:
    rows = [_token_rows(X, t) for X in Xs for t in range(len(X.align.lengths))]
    return Ragged(numpy.concatenate(rows), numpy.asarray([len(r) for r in rows], dtype="int32"))


def _span_ragged(X: Any) -> Ragged:
    Xs, spans = X
    rows = []
    offsets = numpy.concatenate([[0], numpy.cumsum(spans.lengths)])
    for i, doc in enumerate(Xs):
        flat = doc.tensors[0].reshape(-1, WIDTH)
        for start, end in spans.data[offsets[i] : offsets[i + 1]]:
            first, last = int(doc.align.lengths[:start].sum()), int(doc.align.lengths[:end].sum())
            rows.append(flat[sorted(set(doc.align.dataXd[first:last].tolist()))])
    return Ragged(numpy.concatenate(rows), numpy.asarray([len(r) for r in rows], dtype="int32"))


def _mean(rows: Any) -> Any:
    return rows.mean(0) if len(rows) else numpy.zeros(WIDTH)


def _real_rows(X: TransformerOutput, index: int = 0) -> Any:
    T = X.tensors[index]
    rows = [T[s, :n] for s, n in enumerate(X.lengths)]
    return numpy.concatenate(rows) if rows else numpy.zeros((0, WIDTH))


def _ragged_rows(Xs: List[TransformerOutput]) -> Ragged:
    rows = [_real_rows(X) for X in Xs]
    return Ragged(numpy.concatenate(rows), numpy.asarray([len(r) for r in rows], dtype="int32"))


def _pool_rows(Xs: List[TransformerOutput], pool: Any) -> Any:
    return numpy.stack([pool(_real_rows(X)) if _real_rows(X).size else numpy.zeros(WIDTH) for X in Xs])


def _mean_rows(Xs: List[TransformerOutput]) -> Any:
    return numpy.stack([_real_rows(X).mean(0) if _real_rows(X).size else numpy.zeros(WIDTH) for X in Xs])


def _cls(Xs: List[TransformerOutput], token: int) -> Any:
    out = []
    for X in Xs:
        T = X.tensors[0]
        rows = [T[s, token if token >= 0 else n + token] for s, n in enumerate(X.lengths) if n]
        out.append(numpy.mean(rows, axis=0) if rows else numpy.zeros(WIDTH))
    return numpy.stack(out)


CASES = [
    Case("thinc_trf_layers.token_pool.v1", {}, make_batch, "List[Floats2d]", expected=_token_means),
    Case(
        "thinc_trf_layers.token_pool.v1",
        {"pooling": {"@layers": "thinc_trf_layers.reduce_max.v1"}, "mix": {"@layers": "thinc_trf_layers.scalar_mix.v1"}},
        make_batch,
        "List[Floats2d]",
        id="token_pool_max_mix",
    ),
    Case(
        "thinc_trf_layers.span_pool.v1",
        {"pooling": {"@layers": "thinc_trf_layers.reduce_mean.v1"}},
        make_spans,
        "Floats2d",
        expected=_span_means,
    ),
    Case(
        "thinc_trf_layers.span_pool.v1",
        {"pooling": {"@layers": "thinc_trf_layers.reduce_mean_max.v1"}, "mix": {"@layers": "thinc_trf_layers.scalar_mix.v1", "n_layers": 3}},
        make_spans,
        "Floats2d",
        id="span_pool_mean_max_mix",
    ),
    Case(
        "thinc_trf_layers.trf2tensor.v1",
        {"index": 0},
        make_batch,
        "List[Floats3d]",
        expected=lambda Xs: [X.tensors[0] for X in Xs],
    ),
    Case(
        "thinc_trf_layers.trf2tensor.v1",
        {"index": -1},
        make_batch,
        "List[Floats3d]",
        expected=lambda Xs: [X.tensors[-1] for X in Xs],
        id="trf2tensor_last",
    ),
    Case(
        "thinc_trf_layers.trf2layers.v1",
        {},
        make_batch,
        "List[List[Floats3d]]",
        expected=lambda Xs: [list(X.hidden_states) for X in Xs],
    ),
    Case(
        "thinc_trf_layers.trf_pool.v1",
        {"pooling": {"@layers": "thinc_trf_layers.reduce_mean.v1"}},
        make_batch,
        "Floats2d",
        expected=_mean_rows,
    ),
    Case(
        "thinc_trf_layers.trf2ragged.v1",
        {},
        make_batch,
        "Ragged",
        expected=_ragged_rows,
    ),
    Case(
        "thinc_trf_layers.trf_pool.v1",
        {"pooling": {"@layers": "thinc_trf_layers.reduce_max.v1"}},
        make_batch,
        "Floats2d",
        expected=lambda Xs: _pool_rows(Xs, lambda r: r.max(0)),
        id="trf_pool_max",
    ),
    Case(
        "thinc_trf_layers.trf_pool.v1",
        {"pooling": {"@layers": "thinc_trf_layers.reduce_last.v1"}},
        make_batch,
        "Floats2d",
        expected=lambda Xs: _pool_rows(Xs, lambda r: r[-1]),
        id="trf_pool_last",
    ),
    Case("thinc_trf_layers.trf2tokens.v1", {}, make_batch, "Ragged", expected=_token_ragged),
    Case(
        "thinc_trf_layers.trf2tokens.v1",
        {"mix": {"@layers": "thinc_trf_layers.mean_last.v1", "k": 2}},
        make_batch,
        "Ragged",
        id="trf2tokens_mix",
    ),
    Case("thinc_trf_layers.trf2spans.v1", {}, make_spans, "Ragged", expected=_span_ragged),
    Case(
        "thinc_trf_layers.trf2ragged.v1",
        {"mix": {"@layers": "thinc_trf_layers.scalar_mix.v1"}},
        make_batch,
        "Ragged",
        id="trf2ragged_mix",
    ),
    Case(
        "thinc_trf_layers.trf_pool.v1",
        {"pooling": {"@layers": "thinc_trf_layers.attention_pool.v1"}, "mix": {"@layers": "thinc_trf_layers.weighted_layer_pooling.v1", "n_layers": 3, "layer_start": 1}},
        make_batch,
        "Floats2d",
        id="trf_pool_attention_mix",
    ),
    Case(
        "thinc_trf_layers.cls_pool.v1",
        {},
        make_batch,
        "Floats2d",
        expected=lambda Xs: _cls(Xs, 0),
    ),
    Case(
        "thinc_trf_layers.cls_pool.v1",
        {"token_index": -1},
        make_batch,
        "Floats2d",
        expected=lambda Xs: _cls(Xs, -1),
        id="cls_pool_last_real",
    ),
]
