from typing import Any, Callable, Optional, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.pooling import acc_dtype
from ..types import PoolingModelT
from ..util import LayerInputError, check_grad, input_error
from ._pooling import backend, long_segments, ragged_input, segment_bounds


@registry.layers("thinc_trf_layers.attention_pool.v1")
def attention_pool(nI: Optional[int] = None) -> PoolingModelT:
    """Learned attention pooling of every row of a ``Ragged``: (rows x wordpieces, nI) to
    (rows, nI).

    Each position gets a score ``s_i = q . x_i`` from a learned query vector ``q`` (the
    parameter ``"q"``, shape (nI,)); the scores are soft-maxed within the row and the
    output is the weighted sum ``sum_i a_i x_i``. ``q`` starts at zeros, so an untrained
    layer is ``reduce_mean``. ``nI`` (= ``nO``) is inferred from the data at
    ``initialize`` when not given. A row of length zero gives zeros with a zero
    gradient; NaN in a row gives NaN in that row's output. Computed in at least float32.
    """
    if nI is not None and (isinstance(nI, bool) or not isinstance(nI, int) or nI < 1):
        raise LayerInputError(f"attention_pool: expected a positive int nI or None, got {nI!r}.")
    return Model(
        "attention_pool",
        forward,
        init=init,
        params={"q": None},
        dims={"nI": nI, "nO": nI},
    )


def init(model: Model[Ragged, Floats2d], X: Optional[Ragged] = None, Y: Optional[Floats2d] = None) -> None:
    # Work out the width from everything given, and check it, before setting any dim.
    width: Optional[int] = model.get_dim("nI") if model.has_dim("nI") else None
    if X is not None:
        data, _ = ragged_input(model, X)
        # data of (0, 0) says nothing about the width (a Ragged built from it; an empty
        # Ragged of width W reads as (0, W)); rows of width 0 are a width of 0
        x_width = int(data.shape[1])
        if x_width == 0 and int(data.shape[0]) > 0:
            raise input_error(
                model.name, X, "data of a positive width (the attention learns a query vector of that width)"
            )
        if x_width and width is not None and width != x_width:
            raise input_error(model.name, X, f"data of width nI={width}")
        width = x_width or width
    if Y is not None:
        y_width = int(Y.shape[1])
        if width is not None and width != y_width:
            raise input_error(
                model.name, Y, f"an output sample of width nO = nI = {width} (attention pooling keeps the width)"
            )
        width = y_width
    if width is None and model.has_dim("nO"):
        width = model.get_dim("nO")
    if width is None:
        raise input_error(model.name, X, "a sample Ragged (or nI) to infer the width from")
    model.set_dim("nI", width)
    model.set_dim("nO", width)
    model.set_param("q", model.ops.alloc1f(width))


def forward(model: Model[Ragged, Floats2d], X: Ragged, is_train: bool) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    data, lengths = ragged_input(model, X)
    nI = model.get_dim("nI")
    if int(data.shape[1]) != nI:
        if tuple(data.shape) != (0, 0):
            raise input_error(model.name, X, f"data of width nI={nI}")
        data = model.ops.xp.zeros((0, nI), dtype=data.dtype)  # no rows: (0, 0) is of any width
    q: Any = model.get_param("q")
    be = backend(model)
    xp = model.ops.xp
    dtype = data.dtype
    acc = acc_dtype(dtype)
    n_rows = int(data.shape[0])
    n_out = int(lengths.shape[0])
    if long_segments(n_rows, n_out):
        return _forward_per_segment(model, data, lengths, q)
    Xa = data.astype(acc, copy=False)
    qa = q.astype(acc, copy=False)
    scores = Xa @ qa
    row_max, _ = be.segment_max(scores[:, None], lengths)
    e = xp.exp(scores - be.repeat_rows(row_max, lengths, n_rows)[:, 0])
    z = be.segment_sum(e[:, None], lengths)
    z = xp.where(z > 0, z, 1)
    a = e / be.repeat_rows(z, lengths, n_rows)[:, 0]
    Yacc = be.segment_sum(Xa * a[:, None], lengths)
    Y = Yacc.astype(dtype)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, nI), dtype)
        dYa = dY.astype(acc, copy=False)
        G = be.repeat_rows(dYa, lengths, n_rows)  # dY of each position's row
        dot_y = be.repeat_rows((dYa * Yacc).sum(axis=1, keepdims=True), lengths, n_rows)[:, 0]
        ds = a * ((G * Xa).sum(axis=1) - dot_y)
        model.inc_grad("q", (ds @ Xa).astype(q.dtype, copy=False))
        G *= a[:, None]
        G += ds[:, None] * qa[None, :]
        return Ragged(G.astype(dtype, copy=False), lengths)

    return Y, backprop


def _forward_per_segment(
    model: Model[Ragged, Floats2d], data: Any, lengths: Any, q: Any
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    """Few, long rows: each row's scores, softmax and weighted sum as matrix-vector
    products on its own rows (no (rows, width) temporaries), and its gradient written
    with one (n, 2) x (2, width) product: ``dX = a dY + ds q``."""
    xp = model.ops.xp
    dtype = data.dtype
    acc = acc_dtype(dtype)
    n_rows, width = (int(s) for s in data.shape)
    bounds = segment_bounds(lengths)
    qa = q.astype(acc, copy=False)
    Y = xp.zeros((len(bounds), width), dtype=acc)
    A = xp.empty((n_rows,), dtype=acc)
    for b, (start, end) in enumerate(bounds):
        if end > start:
            rows = data[start:end].astype(acc, copy=False)
            scores = rows @ qa
            e = xp.exp(scores - scores.max())
            a = e / e.sum()
            A[start:end] = a
            Y[b] = a @ rows

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (len(bounds), width), dtype)
        dYa = dY.astype(acc, copy=False)
        dX = xp.empty((n_rows, width), dtype=acc)
        dq = xp.zeros((width,), dtype=acc)
        for b, (start, end) in enumerate(bounds):
            if end == start:
                continue
            rows = data[start:end].astype(acc, copy=False)
            a = A[start:end]
            ds = a * (rows @ dYa[b] - dYa[b] @ Y[b])
            dq += ds @ rows
            xp.matmul(xp.stack([a, ds], axis=1), xp.stack([dYa[b], qa]), out=dX[start:end])
        model.inc_grad("q", dq.astype(q.dtype, copy=False))
        return Ragged(dX.astype(dtype, copy=False), lengths)

    return Y.astype(dtype), backprop
