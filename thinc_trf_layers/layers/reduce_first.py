from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..types import PoolingModelT
from ..util import check_grad
from ._pooling import backend, ragged_input


@registry.layers("thinc_trf_layers.reduce_first.v1")
def reduce_first() -> PoolingModelT:
    """The first vector of every row of a ``Ragged`` (sentence-transformers' ``cls``: the first wordpiece):
    (rows x wordpieces, width) to (rows, width).

    A row of length zero gives zeros with a zero gradient (Thinc's raises); an all-empty
    batch keeps its width; any float dtype, int32 or int64 lengths. Backprop puts the
    gradient at that position and zeros elsewhere.
    """
    return Model("reduce_first", forward, attrs={"pooling": "first"})


def forward(model: Model[Ragged, Floats2d], X: Ragged, is_train: bool) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    data, lengths = ragged_input(model, X)
    be = backend(model)
    dtype = data.dtype
    n_rows, width = (int(s) for s in data.shape)
    n_out = int(lengths.shape[0])
    Y, which = be.segment_pick(data, lengths, last=False)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, width), dtype)
        return Ragged(be.scatter_rows(dY, which, lengths, n_rows), lengths)

    return Y, backprop
