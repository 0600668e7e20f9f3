"""Hypothesis strategies for our layers' inputs (docs/testing.md): small shapes, so that
finite-difference checks stay fast, edge cases included."""

from typing import Any, List, Literal, Optional, Sequence, cast

import numpy
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from thinc.types import Ragged

FLOAT_DTYPES = ("float16", "float32", "float64")


def float_arrays(
    shape: Sequence[int], *, dtype: str = "float64", bound: float = 10.0
) -> st.SearchStrategy[Any]:
    """Float arrays of a fixed shape with finite values in [-bound, bound]."""
    widths: dict[str, Literal[16, 32, 64]] = {"float16": 16, "float32": 32, "float64": 64}
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=widths[dtype])
    return arrays(numpy.dtype(dtype), tuple(shape), elements=elements)


@st.composite
def float_arrays_of_rank(
    draw: st.DrawFn,
    rank: int,
    *,
    dtype: str = "float64",
    min_side: int = 0,
    max_side: int = 5,
    bound: float = 10.0,
) -> Any:
    """Float arrays of the given rank, each side in [min_side, max_side]."""
    shape = draw(st.lists(st.integers(min_side, max_side), min_size=rank, max_size=rank))
    return draw(float_arrays(shape, dtype=dtype, bound=bound))


@st.composite
def lengths(
    draw: st.DrawFn,
    *,
    min_rows: int = 0,
    max_rows: int = 6,
    max_length: int = 5,
    min_length: int = 0,
    dtype: Optional[str] = None,
) -> Any:
    """Row lengths, zero included unless ``min_length`` > 0; int32 or int64."""
    n = draw(st.integers(min_rows, max_rows))
    values = draw(st.lists(st.integers(min_length, max_length), min_size=n, max_size=n))
    dtype = dtype or draw(st.sampled_from(["int32", "int64"]))
    return numpy.asarray(values, dtype=dtype)


@st.composite
def ragged(
    draw: st.DrawFn,
    *,
    width: Optional[int] = None,
    max_width: int = 4,
    dtype: str = "float64",
    min_rows: int = 0,
    max_rows: int = 6,
    max_length: int = 5,
    min_length: int = 0,
    lengths_dtype: Optional[str] = None,
    bound: float = 10.0,
) -> Ragged:
    """A ``Ragged`` of (total rows, width) data; rows may have length zero."""
    rows = dict(min_rows=min_rows, max_rows=max_rows, min_length=min_length, max_length=max_length)
    lens = draw(lengths(**rows, dtype=lengths_dtype))
    nW = width if width is not None else draw(st.integers(1, max_width))
    data = draw(float_arrays((int(lens.sum()), nW), dtype=dtype, bound=bound))
    return Ragged(data, lens)


@st.composite
def lists_of_3d(
    draw: st.DrawFn,
    *,
    width: Optional[int] = None,
    max_width: int = 4,
    dtype: str = "float64",
    min_items: int = 0,
    max_items: int = 4,
    max_spans: int = 3,
    min_pieces: int = 1,
    max_pieces: int = 5,
    bound: float = 10.0,
) -> List[Any]:
    """Lists of (spans, wordpieces, width) arrays with a shared width; zero spans allowed."""
    nW = width if width is not None else draw(st.integers(1, max_width))
    n = draw(st.integers(min_items, max_items))
    out = []
    for _ in range(n):
        spans = draw(st.integers(0, max_spans))
        pieces = draw(st.integers(min_pieces, max_pieces))
        out.append(draw(float_arrays((spans, pieces, nW), dtype=dtype, bound=bound)))
    return out


@st.composite
def padded_batches(
    draw: st.DrawFn,
    *,
    width: Optional[int] = None,
    max_width: int = 4,
    dtype: str = "float64",
    max_batch: int = 5,
    max_length: int = 6,
    bound: float = 10.0,
) -> Any:
    """A padded (batch, length, width) array and its int lengths; padding holds 1e3."""
    nW = width if width is not None else draw(st.integers(1, max_width))
    batch = draw(st.integers(0, max_batch))
    length = draw(st.integers(0, max_length))
    X = draw(float_arrays((batch, length, nW), dtype=dtype, bound=bound))
    lens = draw(lengths(min_rows=batch, max_rows=batch, max_length=length, dtype="int32"))
    for i, n in enumerate(lens):
        X[i, n:] = 1e3
    return X, lens


@st.composite
def transformer_outputs(
    draw: st.DrawFn,
    *,
    width: Optional[int] = None,
    max_width: int = 3,
    dtype: str = "float64",
    min_docs: int = 0,
    max_docs: int = 4,
    max_spans: int = 3,
    max_pieces: int = 5,
    min_length: int = 0,
    max_tensors: int = 2,
    hidden_layers: Optional[int] = None,
    pad_value: float = 1e3,
    bound: float = 10.0,
    aligned: bool = False,
) -> List[Any]:
    """Batches of ``TransformerOutput`` (one per Doc) with a shared width, spans padded
    with ``pad_value``. See docs/testing.md."""
    from ..containers import TransformerOutput

    nW = width if width is not None else draw(st.integers(1, max_width))
    n_docs = draw(st.integers(min_docs, max_docs))
    n_tensors = draw(st.integers(1, max_tensors))
    out = []
    for _ in range(n_docs):
        n_spans = draw(st.integers(0, max_spans))
        n_pieces = draw(st.integers(max(1, min_length), max_pieces))
        lens = draw(
            lengths(min_rows=n_spans, max_rows=n_spans, min_length=min_length, max_length=n_pieces)
        )

        def tensor() -> Any:
            T = draw(float_arrays((n_spans, n_pieces, nW), dtype=dtype, bound=bound))
            for s, n in enumerate(lens):
                T[s, n:] = pad_value
            return T

        tensors = [tensor() for _ in range(n_tensors)]
        hidden = [tensor() for _ in range(hidden_layers)] if hidden_layers else None
        align = _draw_align(draw, lens, n_pieces) if aligned else None
        out.append(TransformerOutput(tensors, cast(Any, lens), hidden_states=hidden, align=align))
    return out


def _draw_align(draw: st.DrawFn, lens: Any, n_pieces: int) -> Ragged:
    real = [s * n_pieces + j for s, n in enumerate(lens.tolist()) for j in range(n)]
    tokens: List[List[int]] = []
    i = 0
    while i < len(real) or (not tokens and draw(st.booleans())):
        # ends: some tokens take rows
        size = draw(st.integers(0 if len(tokens) <= len(real) else 1, 2))
        group = real[i : i + size]
        if tokens and tokens[-1] and draw(st.booleans()):
            group = [tokens[-1][-1]] + group  # shares a wordpiece with the token before
        tokens.append(group)
        i += size
    dtype = draw(st.sampled_from(["int32", "int64"]))
    flat: Any = numpy.asarray([p for t in tokens for p in t], dtype=dtype)
    sizes: Any = numpy.asarray([len(t) for t in tokens], dtype="int32")
    return Ragged(flat, sizes)


@st.composite
def token_spans(draw: st.DrawFn, outputs: List[Any], *, max_spans: int = 4) -> Ragged:
    """(start, end) token spans for ``span_pool`` over aligned ``outputs``, a ``Ragged`` with
    one length per Doc. See docs/testing.md."""
    rows: List[List[int]] = []
    lengths = []
    for X in outputs:
        n_tokens = len(X.align.lengths)
        n = draw(st.integers(0, max_spans))
        for _ in range(n):
            start = draw(st.integers(0, n_tokens))
            rows.append([start, draw(st.integers(start, n_tokens))])
        lengths.append(n)
    data = numpy.asarray(rows, dtype="int32").reshape((-1, 2))
    return Ragged(cast(Any, data), cast(Any, numpy.asarray(lengths, dtype="int32")))


__all__ = [
    "FLOAT_DTYPES",
    "float_arrays",
    "float_arrays_of_rank",
    "lengths",
    "ragged",
    "lists_of_3d",
    "padded_batches",
    "transformer_outputs",
    "token_spans",
]
