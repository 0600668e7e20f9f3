"""The core data model: rows that lie inside arrays, seen as a ``Ragged`` (``Wordpieces``,
docs/design.md#rows-that-lie-inside-arrays)."""

from typing import Any, List, Optional, Sequence, Tuple

import numpy
from thinc.api import Ops
from thinc.types import Ragged

from .errors import LayerGradientError, describe

_I64 = "int64"


def host(array: Any) -> Any:
    """A NumPy array of ``array`` (copied from the GPU for a CuPy one)."""
    if hasattr(array, "get") and not isinstance(array, numpy.ndarray):
        return array.get()
    return numpy.asarray(array)


class Wordpieces(Ragged):
    """Rows made of pieces of arrays, a ``Ragged`` whose ``data`` is gathered when first read;
    its fields: docs/design.md#rows-that-lie-inside-arrays."""

    def __init__(
        self,
        ops: Ops,
        arrays: Sequence[Any],
        array: Any,
        start: Any,
        length: Any,
        row_ptr: Any,
        *,
        width: int,
        dtype: Any,
        doc_rows: Optional[Sequence[int]] = None,
    ) -> None:
        xp = ops.xp
        self.ops = ops
        self.arrays = [A if A.flags.c_contiguous else xp.ascontiguousarray(A) for A in arrays]
        #: where each array's rows start in the arrays stacked (A + 1 ints)
        self.offsets = numpy.cumsum([0] + [A.shape[0] for A in self.arrays], dtype=_I64)
        self.width = int(width)
        self.dtype = numpy.dtype(dtype)
        self.doc_rows = None if doc_rows is None else list(doc_rows)
        self._set_pieces(array, start, length, row_ptr)

    def _set_pieces(self, array: Any, start: Any, length: Any, row_ptr: Any) -> None:
        self.array, self.start, self.length, self.row_ptr = (
            numpy.asarray(a, dtype=_I64).reshape(-1) for a in (array, start, length, row_ptr)
        )
        ends = numpy.concatenate([[0], numpy.cumsum(self.length)])
        self.row_ends = ends[self.row_ptr]  # position of every row in the gathered data
        self.lengths = self.ops.asarray1i(numpy.diff(self.row_ends))
        self.data_shape = (-1, self.width)
        self.starts_ends = None
        self._data: Optional[Any] = None

    @classmethod
    def from_ragged(cls, ops: Ops, R: Ragged) -> "Wordpieces":
        """A plain Ragged as one array with one piece per row (its data is not copied)."""
        if isinstance(R, Wordpieces):
            return R
        data: Any = R.dataXd
        lengths = host(R.lengths).astype(_I64)
        B = len(lengths)
        if tuple(data.shape) == (0, 0):  # Thinc's Ragged keeps rows of width 0 as (0, 0) data
            data = ops.xp.zeros((int(lengths.sum()), 0), dtype=data.dtype)
        out = cls(
            ops,
            [data],
            numpy.zeros(B),
            numpy.cumsum(lengths) - lengths,
            lengths,
            numpy.arange(B + 1),
            width=int(data.shape[1]),
            dtype=data.dtype,
        )
        out._data = out.arrays[0]
        return out

    # --- the Ragged view ---------------------------------------------------------------
    @property
    def data(self) -> Any:
        """The rows, gathered (one copy) the first time they are asked for."""
        if self._data is None:
            xp = self.ops.xp
            rows, which = self._rows()
            out = xp.empty((len(rows), self.width), dtype=self.dtype)
            for a, (take, put) in which.items():
                out[xp.asarray(put)] = self.arrays[a][xp.asarray(take)]
            # as Thinc's Ragged keeps empty data: (0, 0), the width in data_shape
            self._data = out if len(rows) else out.reshape((0, 0))
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    def _rows(self) -> Any:
        """Every gathered row's row in its array (in order), and per array the pairs
        (rows to take from it, positions to put them at)."""
        n = self.length
        offset = numpy.repeat(self.start - (numpy.cumsum(n) - n), n)
        rows = numpy.arange(int(n.sum()), dtype=_I64) + offset
        owner = numpy.repeat(self.array, n)
        puts = {a: numpy.flatnonzero(owner == a) for a in numpy.unique(owner).tolist()}
        return rows, {a: (rows[put], put) for a, put in puts.items()}

    # --- layouts over the same arrays ----------------------------------------------------
    def with_arrays(self, arrays: Sequence[Any]) -> "Wordpieces":
        """The same rows over other arrays of the same shapes (a gradient)."""
        out: Wordpieces = object.__new__(Wordpieces)
        out.__dict__.update(self.__dict__, arrays=list(arrays), starts_ends=None, _data=None)
        out.lengths = self.lengths.copy()
        return out

    def pick(self, position: int, *, per_piece: bool) -> "Wordpieces":
        """One row of every row (``per_piece=False``: the row's first row with position 0,
        its last with -1) or of every piece (``per_piece=True``, row b then made of its
        pieces' picks), over the same arrays; an empty row (piece) gives nothing. The
        caller checks that ``position`` is in range where that matters."""
        n, ptr = self.length, self.row_ptr
        keep = numpy.flatnonzero(n > 0)  # the non-empty pieces
        if per_piece:
            new_ptr = numpy.searchsorted(keep, ptr)
            at = numpy.where(position >= 0, position, n[keep] + position)
        else:  # of each row, its first (position >= 0) or last non-empty piece
            row = numpy.searchsorted(ptr, keep, side="right") - 1
            edge = numpy.ones(len(keep), dtype=bool)
            if len(keep) > 1:
                (edge[1:] if position >= 0 else edge[:-1])[...] = row[1:] != row[:-1]
            keep, new_ptr = keep[edge], numpy.searchsorted(row[edge], numpy.arange(len(ptr)))
            at = n[keep] * 0 if position >= 0 else n[keep] - 1
        out: Wordpieces = object.__new__(Wordpieces)
        out.__dict__.update(self.__dict__)  # the same arrays
        out._set_pieces(self.array[keep], self.start[keep] + at, numpy.ones(len(keep)), new_ptr)
        return out

    # --- gradients -------------------------------------------------------------------------
    def zeros(self, *, fill: bool = True) -> Tuple[Any, List[Any]]:
        """An array of the arrays' rows stacked (zeros, or left unset without ``fill``)
        and each array's part of it (a view of its shape): one large block costs less to
        fault in than many fresh ones."""
        ends = self.offsets.tolist()
        flat = (self.ops.xp.zeros if fill else self.ops.xp.empty)(
            (ends[-1], self.width), dtype=self.dtype
        )
        return flat, [flat[a:b] for a, b in zip(ends, ends[1:])]

    def scatter(self, d_rows: Any) -> List[Any]:
        """The gradient of the arrays from the gradient of the gathered rows: zeros, and
        each row's gradient added where it lies (rows that share a place add up)."""
        xp = self.ops.xp
        _, grads = self.zeros()
        if not int(d_rows.size):
            return grads
        _, which = self._rows()
        for a, (take, put) in which.items():
            self.ops.scatter_add(
                grads[a], xp.asarray(take, dtype="int32"), xp.asarray(d_rows[xp.asarray(put)])
            )
        return grads


def check_grad_of(layer: str, X: Wordpieces, dX: Any) -> bool:
    """Check ``dX``, a gradient of ``X``'s rows: True for a ``Wordpieces`` over arrays of
    the storage's shapes, False for a plain Ragged of the rows (or with no values)."""
    if isinstance(dX, Wordpieces) and [A.shape for A in dX.arrays] == [A.shape for A in X.arrays]:
        return True
    n_rows = int(X.row_ends[-1])
    data = dX.dataXd if isinstance(dX, Ragged) else None
    expected = (n_rows, X.width)
    # Thinc's Ragged keeps (n, 0) or empty data as (0, 0): no values, told by the lengths,
    # valid only where the rows have no values either
    empty = (
        data is not None
        and int(data.size) == 0
        and (n_rows == 0 or X.width == 0)
        and int(dX.lengths.sum()) == n_rows
    )
    if data is None or (tuple(data.shape) != expected and not empty):
        raise LayerGradientError(
            f"{layer}: backprop expected the gradient of its input (its rows), a Ragged with data "
            f"of shape {expected} ({X.dtype}), got {describe(dX)}."
        )
    if n_rows and not empty and data.dtype != X.dtype:
        raise LayerGradientError(
            f"{layer}: backprop expected the gradient of its rows in {X.dtype}, got {describe(dX)}."
        )
    return False


def storage_grads(layer: str, X: Wordpieces, dX: Any) -> List[Any]:
    """One gradient per array of ``X`` from ``dX``, the gradient of its rows, in either form
    (docs/design.md#rows-that-lie-inside-arrays)."""
    if check_grad_of(layer, X, dX):
        return list(dX.arrays)
    return X.scatter(dX.dataXd)
