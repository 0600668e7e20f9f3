from typing import Any, Callable, Optional, Tuple, cast

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import backprop_reduce_attention, reduce_attention
from ..errors import LayerInputError, check_grad, input_error
from ..types import PoolingModelT
from ._pooling import check_rows


@registry.layers("thinc_trf_layers.attention_pool.v1")
def attention_pool(nI: Optional[int] = None) -> PoolingModelT:
    """Learned attention pooling of every row of a ``Ragged``: ``sum_i softmax(q . x)_i x_i``,
    (rows, nI). See docs/pooling.md#attention_poolninone."""
    if nI is not None and (isinstance(nI, bool) or not isinstance(nI, int) or nI < 1):
        raise LayerInputError(f"attention_pool: expected a positive int nI or None, got {nI!r}.")
    return Model(
        "attention_pool", forward, init=init, params={"q": None}, dims={"nI": nI, "nO": nI}
    )


def _input(model: Model[Ragged, Floats2d], X: Ragged) -> Tuple[Any, Any, int]:
    """The rows (gathered), the lengths and the width; a batch without positions has the
    width of ``nI`` if its data is (0, 0) (as Thinc's ``Ragged`` keeps it), any other data
    its own (rows of width 0 are (0, 0) data too, of width 0)."""
    lengths, width = check_rows(model, X)
    data: Any = X.dataXd
    if tuple(data.shape) == (0, 0) and not int(lengths.sum()) and model.has_dim("nI"):
        width = model.get_dim("nI")
        data = model.ops.xp.zeros((0, width), dtype=data.dtype)
    return data, lengths, width


def init(
    model: Model[Ragged, Floats2d], X: Optional[Ragged] = None, Y: Optional[Floats2d] = None
) -> None:
    width: Optional[int] = model.maybe_get_dim("nI")
    if X is not None:
        data, _, x_width = _input(model, X)
        if x_width == 0 and int(data.shape[0]) > 0:
            raise input_error(
                model.name,
                X,
                "data of a positive width (the attention learns a query vector of that width)",
            )
        if x_width and width is not None and width != x_width:
            raise input_error(model.name, X, f"data of width nI={width}")
        width = x_width or width
    if Y is not None:
        if width is not None and width != int(Y.shape[1]):
            raise input_error(
                model.name,
                Y,
                f"an output sample of width nO = nI = {width} (attention pooling keeps the width)",
            )
        width = int(Y.shape[1])
    if not width:
        raise input_error(model.name, X, "a sample Ragged (or nI) to infer the width from")
    model.set_dim("nI", width)
    model.set_dim("nO", width)
    model.set_param("q", model.ops.alloc1f(width))


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    data, lengths, width = _input(model, X)
    nI = model.get_dim("nI")
    if width != nI:
        raise input_error(model.name, X, f"data of width nI={nI}")
    ops = model.ops
    q: Any = model.get_param("q")
    R = Ragged(data, lengths)
    Y, a = reduce_attention(ops, R, q)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, Y.shape, data.dtype)
        dX, dq = backprop_reduce_attention(ops, dY, R, q, a, Y)
        model.inc_grad("q", dq.astype(q.dtype, copy=False))
        return Ragged(dX.astype(data.dtype, copy=False), lengths)

    return cast(Floats2d, Y.astype(data.dtype, copy=False)), backprop
