"""The core: the real wordpieces of padded arrays, seen as a ``Ragged``, where they lie.

A transformer's output for a batch of Docs is one padded array per Doc (spans,
wordpieces, width), each span holding its real wordpieces at some positions and padding
at the others. ``Wordpieces`` is a ``Ragged`` with one row per *segment* (a Doc: the real
wordpieces of all its spans, span after span) that keeps a reference to those arrays
instead of copying the rows out:

- any layer that reads ``.data`` (a pooling of your own, Thinc's ``reduce_mean``...) gets
  the real rows, gathered once, the first time it asks (``Wordpieces`` *is* a Ragged);
- our poolings see a ``Wordpieces`` and run where the data lies: the backend's segment
  kernels read each span's real rows inside the padded array, and the backward writes
  each padded gradient once, padding included (zeros), with no intermediate copy. Their
  gradient is a ``Wordpieces`` over those padded gradients;
- ``padded_grads(dR)`` turns the gradient a pooling returns into one padded gradient
  per array: the arrays of a ``Wordpieces`` gradient as they are, or a plain ``Ragged``'s
  rows scattered into zeros.

``trf2ragged()`` builds one from a batch of transformer outputs (through the container
adapters), ``with_padded_mask()`` from a padded batch; ``trf_pool(p)`` is
``chain(trf2ragged(), p)``.
"""
import math
from typing import Any, List, Optional, Sequence, Tuple, cast

from thinc.api import Ops
from thinc.types import Ragged

from .backends.pooling import zeros
from .containers import DocTensor
from .util import LayerGradientError, LayerInputError, describe


class Wordpieces(Ragged):
    """A ``Ragged`` over the real rows of padded arrays (see the module docstring).

    blocks: the padded arrays, each (spans, length, width) (None or zero spans: a Doc
        without wordpieces).
    span_lengths, span_firsts: for every block, the real rows of each span: positions
        ``first .. first + n - 1`` of that span (``first`` 0: right padding).
    pieces_per_segment: how many spans (taken in order over all blocks) make each row of
        the Ragged; default: one row per block.
    """

    # Thinc's data validation (pydantic v1) checks a Ragged by its __dict__ against the
    # dataclass fields; a Wordpieces keeps other attributes there and its data is lazy. It
    # is valid by construction (2d float rows, int32 lengths that sum to them), so it
    # reads as one already validated.
    __pydantic_initialised__ = True

    def __init__(
        self,
        ops: Ops,
        blocks: Sequence[Optional[Any]],
        span_lengths: Sequence[Sequence[int]],
        *,
        width: int,
        dtype: Any,
        span_firsts: Optional[Sequence[Sequence[int]]] = None,
        pieces_per_segment: Optional[Sequence[int]] = None,
    ) -> None:
        self.ops = ops
        self.blocks = list(blocks)
        self.span_lengths = [list(n) for n in span_lengths]
        self.span_firsts = (
            [list(f) for f in span_firsts] if span_firsts is not None else [[0] * len(n) for n in span_lengths]
        )
        self.width = int(width)
        self.dtype = ops.xp.dtype(dtype)
        if pieces_per_segment is None:  # one row per block
            self.pieces_per_segment = [len(n) for n in self.span_lengths]
            totals = [sum(n) for n in self.span_lengths]
        else:
            self.pieces_per_segment = list(pieces_per_segment)
            piece_lengths = [n for lengths in self.span_lengths for n in lengths]
            totals, at = [], 0
            for k in self.pieces_per_segment:
                totals.append(sum(piece_lengths[at : at + k]))
                at += k
        self.lengths = ops.asarray1i(totals)
        self.data_shape = (-1, self.width)
        self.starts_ends = None
        self._data: Optional[Any] = None

    # --- the Ragged view -----------------------------------------------------------
    @property
    def data(self) -> Any:
        """The real rows, gathered (one copy) the first time they are asked for."""
        if self._data is None:
            data = self._gather()
            # as Thinc's Ragged stores an empty array: (0, 0), the width in data_shape
            self._data = data if int(data.shape[0]) else data.reshape((0, 0))
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    def _gather(self) -> Any:
        xp = self.ops.xp
        parts = [
            T[s, f : f + n]
            for T, lengths, firsts in zip(self.blocks, self.span_lengths, self.span_firsts)
            if T is not None
            for s, (n, f) in enumerate(zip(lengths, firsts))
            if n
        ]
        if len(parts) == 1:
            return xp.ascontiguousarray(parts[0])
        if parts:
            return xp.concatenate(parts, axis=0)
        return xp.zeros((0, self.width), dtype=self.dtype)

    # --- where the rows lie ----------------------------------------------------------
    def flat_blocks(self) -> List[Tuple[Optional[Any], Any, Any, int]]:
        """Per block: the array as (spans * length, width) rows (C-contiguous: a view, or
        a copy of a block that is not), each span's first real row in it and its length
        (int64 arrays), and the rows per span (``block``); None rows for an empty block."""
        xp = self.ops.xp
        starts: List[int] = []
        for T, firsts in zip(self.blocks, self.span_firsts):
            L = int(T.shape[1]) if T is not None else 0
            starts.extend(s * L + f for s, f in enumerate(firsts))
        # one array each for every span's start and length, sliced per block (views)
        all_starts = xp.asarray(starts, dtype="int64")
        all_lengths = xp.asarray([n for lengths in self.span_lengths for n in lengths], dtype="int64")
        out: List[Tuple[Optional[Any], Any, Any, int]] = []
        at = 0
        for T, lengths in zip(self.blocks, self.span_lengths):
            S = len(lengths)
            if T is None or S == 0:
                out.append((None, all_starts[at:at], all_lengths[at:at], 0))
                continue
            L = int(T.shape[1])
            flat = (T if T.flags.c_contiguous else xp.ascontiguousarray(T)).reshape(S * L, self.width)
            out.append((flat, all_starts[at : at + S], all_lengths[at : at + S], L))
            at += S
        return out

    def with_blocks(self, blocks: Sequence[Optional[Any]]) -> "Wordpieces":
        """A ``Wordpieces`` of the same layout over other arrays (a gradient). The layout
        lists (never changed after construction) are shared, not rebuilt; ``lengths``, a
        Ragged's public array, is a copy of its own."""
        out: Wordpieces = object.__new__(Wordpieces)
        out.__dict__.update(self.__dict__)
        out.blocks = list(blocks)
        out.lengths = self.lengths.copy()
        out.starts_ends = None
        out._data = None
        return out

    def block_shapes(self) -> List[Optional[Tuple[int, ...]]]:
        return [tuple(T.shape) if T is not None else None for T in self.blocks]

    def _same_layout(self, other: "Wordpieces") -> bool:
        """Whether ``other`` has this layout: the same spans and arrays of the same shapes
        (the layout lists of a ``with_blocks`` copy are these very lists)."""
        return (
            (other.span_lengths is self.span_lengths or other.span_lengths == self.span_lengths)
            and (other.span_firsts is self.span_firsts or other.span_firsts == self.span_firsts)
            and len(other.blocks) == len(self.blocks)
            and all(
                (a is None and b is None) or (a is not None and b is not None and tuple(a.shape) == tuple(b.shape))
                for a, b in zip(other.blocks, self.blocks)
            )
        )

    # --- gradients -------------------------------------------------------------------
    def padded_grads(self, layer: str, dR: Any) -> List[Optional[Any]]:
        """One padded gradient per block (None for a block without an array) from the
        gradient ``dR`` of this Ragged: a ``Wordpieces`` of the same layout (our
        poolings') is used as it is; a plain ``Ragged`` of the real rows is scattered
        into zeros (padding gets zeros)."""
        if isinstance(dR, Wordpieces) and self._same_layout(dR):
            return list(dR.blocks)
        data = dR.dataXd if isinstance(dR, Ragged) else None
        n_rows = int(sum(sum(n) for n in self.span_lengths))
        expected = (n_rows, self.width)
        # no values at all: no rows, or width 0 (Thinc's Ragged keeps (n, 0) data as (0, 0),
        # so the rows are told by its lengths)
        empty = data is not None and int(data.size) == 0 and (
            n_rows == 0
            or (
                tuple(data.shape) in ((0, 0), (n_rows, 0))
                and int(cast(Any, dR).lengths.sum()) == n_rows
            )
        )
        if data is None or tuple(data.shape) != expected and not empty:
            raise LayerGradientError(
                f"{layer}: backprop expected the gradient of the wordpieces, a Ragged with data of "
                f"shape {expected} ({self.dtype}), got {describe(dR)}."
            )
        if n_rows and data.dtype != self.dtype:
            raise LayerGradientError(
                f"{layer}: backprop expected the gradient of the wordpieces in {self.dtype}, the "
                f"dtype of the transformer output, got {describe(dR)}."
            )
        xp = self.ops.xp
        grads = zeros_blocks(xp, self.block_shapes(), self.dtype)
        if empty:
            return grads
        at = 0
        for dT, lengths, firsts in zip(grads, self.span_lengths, self.span_firsts):
            if dT is None:
                continue
            for s, (n, f) in enumerate(zip(lengths, firsts)):
                if n:
                    dT[s, f : f + n] = data[at : at + n]
                    at += n
        return grads

    @classmethod
    def from_docs(cls, layer: str, ops: Ops, docs: Sequence[DocTensor]) -> "Wordpieces":
        """One row per Doc: the real wordpieces of all its spans (an adapter's ``DocTensor``)."""
        width, dtype = batch_layout(layer, docs)
        return cls(
            ops, [doc.tensor for doc in docs], [doc.lengths if doc.tensor is not None else [] for doc in docs],
            width=width, dtype=dtype,
        )

    @classmethod
    def from_padded(cls, ops: Ops, X: Any, first: Sequence[int], lengths: Sequence[int]) -> "Wordpieces":
        """One row per row of a padded batch X (batch, length, width) whose real positions
        are ``first[b] .. first[b] + lengths[b] - 1`` (right or left padding)."""
        B = int(X.shape[0])
        return cls(
            ops, [X], [list(lengths)], width=int(X.shape[2]), dtype=X.dtype,
            span_firsts=[list(first)], pieces_per_segment=[1] * B,
        )


def zeros_blocks(xp: Any, shapes: Sequence[Optional[Tuple[int, ...]]], dtype: Any) -> List[Optional[Any]]:
    """Zero arrays of the given shapes (None for None), all views of one allocation: the
    padded gradients of a batch. One large block is cheaper than many fresh ones of a
    megabyte each, whose first writes fault in page after page; a consumer that keeps
    one of the gradients keeps the whole block."""
    return zeros_block(xp, shapes, dtype)[1]


def zeros_block(
    xp: Any, shapes: Sequence[Optional[Tuple[int, ...]]], dtype: Any
) -> Tuple[Any, List[Optional[Any]]]:
    """``zeros_blocks`` and the one flat array they are views of, in order."""
    sizes = [int(math.prod(shape)) if shape is not None else 0 for shape in shapes]
    flat = zeros(xp, sum(sizes), dtype)
    out: List[Optional[Any]] = []
    at = 0
    for shape, size in zip(shapes, sizes):
        out.append(flat[at : at + size].reshape(shape) if shape is not None else None)
        at += size
    return flat, out


def batch_layout(layer: str, docs: Sequence[DocTensor]) -> Tuple[int, Any]:
    """The width and dtype every Doc's tensor shares (0 and float32 for a batch without
    one); a batch that mixes widths or dtypes is refused, naming the first odd Doc."""
    first: Optional[Tuple[int, Any]] = None
    first_i = 0
    for i, doc in enumerate(docs):
        if doc.tensor is None:
            continue
        here = (int(doc.tensor.shape[2]), doc.tensor.dtype)
        if first is None:
            first = here
            first_i = i
        elif here != first:
            raise LayerInputError(
                f"{layer}: Doc {i} of the batch has a tensor of width {here[0]} ({here[1]}), but "
                f"Doc {first_i} has width {first[0]} ({first[1]}); expected every Doc of a batch "
                "to come from the same transformer, with one width and dtype."
            )
    return first if first is not None else (0, "float32")


__all__ = ["Wordpieces", "batch_layout", "zeros_block", "zeros_blocks"]
