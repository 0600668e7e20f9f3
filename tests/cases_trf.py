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


def make_batch() -> List[TransformerOutput]:
    return [
        TransformerOutput(
            tensors=[t.copy() for t in tensors],
            lengths=lens.copy(),
            hidden_states=[h.copy() for h in hidden],
        )
        for tensors, lens, hidden in zip(TENSORS, LENGTHS, HIDDEN)
    ]


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
