"""Each spaCy token's or span's wordpieces as pieces of a ``Wordpieces``
(docs/design.md#tokens-and-spans), checked for the whole batch on the host (alignment data is
small; spacy-transformers keeps it there)."""

from typing import Any, List, Sequence, Tuple

import numpy

from .errors import LayerInputError, input_error
from .reading import DocArray
from .wordpieces import host

#: Pieces of a batch's rows: (array, start, length, row_ptr), host int64 arrays.
Pieces = Tuple[Any, Any, Any, Any]
_I64 = "int64"


def token_rows(layer: str, docs: Sequence[DocArray]) -> Tuple[Any, Any, Any, List[int]]:
    """Every token's rows, for the whole batch: the positions (token after token, Doc
    after Doc), each position's Doc, each token's count, and the tokens of each Doc. A
    Doc without an array has tokens without rows. Checked for the batch at once."""
    positions, counts = [], []
    for i, doc in enumerate(docs):
        try:
            alignment = doc.adapter.token_alignment(doc.container)
        except LayerInputError as err:
            raise LayerInputError(f"{layer}: Doc {i}: {err}") from None
        if alignment is None:
            raise LayerInputError(
                f"{layer}: Doc {i}'s {doc.adapter.name} holds no alignment between wordpieces and "
                "spaCy tokens; expected a spacy-transformers TransformerData, a "
                "spacy-curated-transformers DocTransformerOutput or a TransformerOutput with "
                "align."
            )
        positions.append(host(alignment[0]).reshape(-1))
        counts.append(host(alignment[1]).reshape(-1))
    for what, arrays in (("positions", positions), ("lengths", counts)):
        for i, a in enumerate(arrays):
            if a.dtype.kind not in "iu":
                raise input_error(layer, a, f"Doc {i}'s token alignment {what} as integers")
    P, counts_all = (
        numpy.concatenate(a).astype(_I64) if a else numpy.zeros(0, _I64)
        for a in (positions, counts)
    )
    n_pos, n_tokens = [len(p) for p in positions], [len(n) for n in counts]
    tok_doc = numpy.repeat(numpy.arange(len(docs)), n_tokens)
    if len(counts_all) and int(counts_all.min()) < 0:
        k = int(numpy.flatnonzero(counts_all < 0)[0])
        raise LayerInputError(
            f"{layer}: Doc {tok_doc[k]}'s token alignment has a negative length "
            f"({int(counts_all[k])}); expected the number of wordpieces of every token, >= 0."
        )
    sums = numpy.bincount(tok_doc, weights=counts_all, minlength=len(docs)).astype(_I64)
    odd = numpy.flatnonzero(sums != n_pos)
    if len(odd):
        i = int(odd[0])
        raise LayerInputError(
            f"{layer}: Doc {i}'s token alignment has {n_pos[i]} positions but its token lengths "
            f"sum to {int(sums[i])}; expected them to agree."
        )
    owner = numpy.repeat(numpy.arange(len(docs)), n_pos)
    if any(doc.shape is None for doc in docs):  # a Doc without an array: its tokens have no rows
        keep = numpy.asarray([doc.shape is not None for doc in docs])
        counts_all = numpy.where(keep[tok_doc], counts_all, 0)
        P, owner = P[keep[owner]], owner[keep[owner]]
    _check_real(layer, P, owner, docs)
    return P, owner, counts_all, n_tokens


def _check_real(layer: str, P: Any, owner: Any, docs: Sequence[DocArray]) -> None:
    """Refuse a position that is not a real wordpiece of its Doc's array."""
    if not len(P):
        return
    shapes = [doc.shape or (0, 0) for doc in docs]
    n_spans, per_span = (numpy.asarray(x, dtype=_I64)[owner] for x in zip(*shapes))
    span_at = numpy.concatenate([[0], numpy.cumsum([len(d.lengths) for d in docs], dtype=_I64)])
    lengths = numpy.asarray([n for doc in docs for n in doc.lengths] + [0], dtype=_I64)
    inside = (P >= 0) & (P < n_spans * per_span)
    span, piece = numpy.divmod(numpy.where(inside, P, 0), numpy.maximum(per_span, 1))
    bad = ~inside | (piece >= lengths[numpy.where(inside, span_at[owner] + span, -1)])
    if bool(bad.any()):
        k = int(numpy.flatnonzero(bad)[0])
        i = int(owner[k])
        spans, L = shapes[i]
        raise LayerInputError(
            f"{layer}: Doc {i}'s token alignment points at row {int(P[k])}, which is not a real "
            f"wordpiece of its output ({spans} spans of {L} positions, {docs[i].lengths} "
            f"real); expected positions of real wordpieces, span * {L} + position."
        )


def runs(P: Any, owner: Any, counts: Any) -> Pieces:
    """The pieces of rows given by their positions: runs of consecutive positions of one
    Doc within one row (row b has ``counts[b]`` positions)."""
    ends = numpy.cumsum(counts, dtype=_I64)
    brk = numpy.ones(len(P), dtype=bool)
    if len(P):
        brk[1:] = (P[1:] != P[:-1] + 1) | (owner[1:] != owner[:-1])
        brk[(ends - counts)[counts > 0]] = True
    first = numpy.flatnonzero(brk)
    length = numpy.diff(numpy.append(first, len(P)))
    row_ptr = numpy.searchsorted(first, numpy.concatenate([[0], ends]).astype(_I64))
    return owner[first], P[first], length, row_ptr


def span_rows(
    layer: str, P: Any, owner: Any, counts: Any, n_tokens: List[int], spans: Any, n_spans: List[int]
) -> Any:
    """For token spans ``[start, end)`` of each Doc (``spans`` (n, 2), ``n_spans`` per Doc):
    the positions of each span's tokens, each once and in order, their Docs and counts."""
    tok_at = numpy.concatenate([[0], numpy.cumsum(n_tokens, dtype=_I64)])
    doc = numpy.repeat(numpy.arange(len(n_spans), dtype=_I64), n_spans)
    starts, ends = spans[:, 0], spans[:, 1]
    bad = (starts < 0) | (ends > numpy.asarray(n_tokens, dtype=_I64)[doc]) | (ends < starts)
    if bool(bad.any()):
        k = int(numpy.flatnonzero(bad)[0])
        i = int(doc[k])
        raise LayerInputError(
            f"{layer}: span {k - int(sum(n_spans[:i]))} of Doc {i} is [{int(starts[k])}, "
            f"{int(ends[k])}); expected token offsets with 0 <= start <= end <= {n_tokens[i]} (the "
            "Doc's tokens)."
        )
    pos_at = numpy.concatenate([[0], numpy.cumsum(counts, dtype=_I64)])
    first, last = pos_at[tok_at[doc] + starts], pos_at[tok_at[doc] + ends]
    size = last - first
    index = numpy.repeat(first - (numpy.cumsum(size) - size), size) + numpy.arange(int(size.sum()))
    span_of = numpy.repeat(numpy.arange(len(spans)), size)
    M = int(P.max()) + 1 if len(P) else 1
    keys = numpy.unique(span_of * M + P[index])  # each (span, position) once, in order
    span_of, positions = numpy.divmod(keys, M)
    return positions, doc[span_of], numpy.bincount(span_of, minlength=len(spans)).astype(_I64)
