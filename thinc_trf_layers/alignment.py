"""Wordpieces of spaCy tokens and token spans: which rows of a Doc's transformer output
belong to each token or span, and the gather/scatter between those rows and a ``Ragged``.

A Doc's output is read as one (spans, wordpieces, width) array (see ``containers``); its
rows are that array seen as (spans * wordpieces, width). The container's adapter gives
each token's rows (``token_alignment``: positions, token after token, and a count per
token; a whitespace token has none, and a token in two overlapping strided spans has
rows in both). Here those rows become groups:

- ``token_groups``: one group per token, its rows as the container gives them;
- ``span_groups``: one group per token span ``[start, end)``, the rows of its tokens,
  each row once (a wordpiece shared by two tokens of the span counts once).

``gather`` builds one ``Ragged`` of every group of a batch (one row of the Ragged per
group) that any pooling reduces; its backprop adds the Ragged's gradient into one
gradient per Doc of the array's shape (zeros where no group reads), each written once.
The positions are worked out on the host (alignment data is small and spacy-transformers
keeps it there); the rows are gathered and scattered where the arrays are.
"""
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, cast

import numpy
from thinc.api import Ops
from thinc.types import Floats2d, Floats3d, Ints1d, Ragged

from .containers import ContainerAdapter
from .util import LayerGradientError, LayerInputError, describe

#: One group per token or span of a Doc: the rows (host int64 positions, group after
#: group) and the number of rows of each group (host int64).
Groups = Tuple[Any, Any]


@dataclass
class Layout:
    """Where one Doc's real wordpieces are: ``n_spans`` spans of ``n_pieces`` positions,
    span ``s`` holding its real ones first (``lengths[s]`` of them)."""

    n_spans: int
    n_pieces: int
    lengths: List[int]


def _host_ints(layer: str, what: str, array: Any) -> Any:
    if hasattr(array, "get") and not isinstance(array, numpy.ndarray):
        array = array.get()  # CuPy
    array = numpy.asarray(array)
    if array.dtype.kind not in ("i", "u"):
        raise LayerInputError(f"{layer}: expected {what} as integers, got {describe(array)}.")
    return array.astype("int64").reshape(-1)


def token_groups(layer: str, adapter: ContainerAdapter, X: Any, layout: Layout, i: int) -> Groups:
    """Each token's rows of Doc ``i``, checked to be real wordpieces of ``layout``."""
    try:
        alignment = adapter.token_alignment(X)
    except LayerInputError as err:
        raise LayerInputError(f"{layer}: Doc {i}: {err}") from None
    if alignment is None:
        raise LayerInputError(
            f"{layer}: Doc {i}'s {adapter.name} holds no alignment between wordpieces and spaCy "
            "tokens; expected a spacy-transformers TransformerData, a spacy-curated-transformers "
            "DocTransformerOutput or a TransformerOutput with align."
        )
    positions = _host_ints(layer, f"Doc {i}'s token alignment positions", alignment[0])
    lengths = _host_ints(layer, f"Doc {i}'s token alignment lengths", alignment[1])
    if len(lengths) and int(lengths.min()) < 0:
        raise LayerInputError(
            f"{layer}: Doc {i}'s token alignment has a negative length ({int(lengths.min())}); "
            "expected the number of wordpieces of every token, >= 0."
        )
    if int(lengths.sum()) != len(positions):
        raise LayerInputError(
            f"{layer}: Doc {i}'s token alignment has {len(positions)} positions but its token "
            f"lengths sum to {int(lengths.sum())}; expected them to agree."
        )
    if len(positions):
        n_rows = layout.n_spans * layout.n_pieces
        span, piece = positions // max(layout.n_pieces, 1), positions % max(layout.n_pieces, 1)
        real = numpy.asarray(layout.lengths + [0], dtype="int64")
        bad = (positions < 0) | (positions >= n_rows)
        bad |= piece >= real[numpy.where(bad, len(layout.lengths), span)]
        if bool(bad.any()):
            p = int(positions[numpy.flatnonzero(bad)[0]])
            raise LayerInputError(
                f"{layer}: Doc {i}'s token alignment points at row {p}, which is not a real "
                f"wordpiece of its output ({layout.n_spans} spans of {layout.n_pieces} positions, "
                f"{layout.lengths} real); expected positions of real wordpieces, span * "
                f"{layout.n_pieces} + position."
            )
    return positions, lengths


def span_groups(layer: str, tokens: Groups, spans: Any, i: int) -> Groups:
    """The rows of each token span ``[start, end)`` of Doc ``i`` (``spans``: (n, 2) ints),
    each row once, in increasing order."""
    positions, lengths = tokens
    spans = _host_ints(layer, f"Doc {i}'s spans", spans).reshape(-1, 2)
    n_tokens = len(lengths)
    starts, ends = spans[:, 0], spans[:, 1]
    if len(spans) and (int(starts.min()) < 0 or int(ends.max()) > n_tokens or bool((ends < starts).any())):
        bad = int(numpy.flatnonzero((starts < 0) | (ends > n_tokens) | (ends < starts))[0])
        raise LayerInputError(
            f"{layer}: span {bad} of Doc {i} is [{int(starts[bad])}, {int(ends[bad])}); expected "
            f"token offsets with 0 <= start <= end <= {n_tokens} (the Doc's tokens)."
        )
    offsets = numpy.concatenate([[0], numpy.cumsum(lengths)])
    first, last = offsets[starts], offsets[ends]
    counts = last - first
    total = int(counts.sum())
    # every span's slice of the token-ordered positions, concatenated
    index = numpy.repeat(first - numpy.concatenate([[0], numpy.cumsum(counts)[:-1]]), counts) + numpy.arange(total)
    owner = numpy.repeat(numpy.arange(len(spans)), counts)
    n_rows = int(positions.max()) + 1 if len(positions) else 1
    keys = numpy.unique(owner * n_rows + positions[index])  # each (span, row) once, sorted
    return keys % n_rows, numpy.bincount(keys // n_rows, minlength=len(spans)).astype("int64")


def gather(
    layer: str, ops: Ops, arrays: Sequence[Optional[Floats3d]], groups: Sequence[Groups], width: int, dtype: Any
) -> Tuple[Ragged, Callable[[Any], List[Optional[Floats3d]]]]:
    """One ``Ragged`` of every group of every Doc (a Doc whose array is None gets empty
    groups), and the backprop from its gradient to one gradient per Doc's array (None
    where the array was None)."""
    datas: List[Any] = []
    kept: List[Any] = []  # each Doc's positions as the Ops sees them (None: no array)
    all_lengths: List[Any] = []
    for A, (positions, lengths) in zip(arrays, groups):
        if A is None:
            all_lengths.append(numpy.zeros(len(lengths), dtype="int64"))
            kept.append(None)
            continue
        flat: Any = A.reshape((-1, int(A.shape[2])))
        index = ops.asarray1i(cast(Ints1d, positions.astype("int32")))
        datas.append(flat[index])
        kept.append(index)
        all_lengths.append(lengths)
    data = ops.xp.concatenate(datas) if datas else ops.alloc2f(0, width, dtype=dtype)
    lengths_all = numpy.concatenate(all_lengths) if all_lengths else numpy.zeros(0, dtype="int64")
    R = Ragged(data, ops.asarray1i(cast(Ints1d, lengths_all.astype("int32"))))
    shape = tuple(data.shape)

    def backprop(dR: Any) -> List[Optional[Floats3d]]:
        d_data = dR.dataXd if isinstance(dR, Ragged) else None
        if d_data is None or tuple(d_data.shape) != shape:
            raise LayerGradientError(
                f"{layer}: backprop expected the gradient of the pooling's input, a Ragged with data "
                f"of shape {shape}, got {describe(dR)}."
            )
        out: List[Optional[Floats3d]] = []
        start = 0
        for A, index in zip(arrays, kept):
            if A is None or index is None:
                out.append(None)
                continue
            n = int(index.shape[0])
            dA = ops.alloc(tuple(A.shape), dtype=A.dtype)
            d_flat = dA.reshape((-1, int(A.shape[2])))
            rows = ops.xp.ascontiguousarray(d_data[start : start + n], dtype=A.dtype)
            if n:
                ops.scatter_add(d_flat, index, rows)
            start += n
            out.append(dA)
        return out

    return R, backprop


def split_rows(ops: Ops, Y: Floats2d, counts: Sequence[int]) -> List[Floats2d]:
    """``Y``'s rows as one array per Doc (``counts[i]`` rows each)."""
    out: List[Floats2d] = []
    start = 0
    for n in counts:
        out.append(Y[start : start + n])
        start += n
    return out


__all__ = ["Groups", "Layout", "token_groups", "span_groups", "gather", "split_rows"]
