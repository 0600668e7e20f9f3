from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..types import PoolingModelT
from ..util import check_grad
from ..wordpieces import Wordpieces
from ._pooling import backend, pool_wordpieces, ragged_input


@registry.layers("thinc_trf_layers.reduce_max.v1")
def reduce_max() -> PoolingModelT:
    """Element-wise max over the vectors of every row of a ``Ragged``
    (sentence-transformers' ``max``): (rows x wordpieces, width) to (rows, width).

    A row of length zero gives zeros with a zero gradient (Thinc's raises); an all-empty
    batch keeps its width; float16/float32/float64 in, same dtype out; int32 or int64
    lengths. A NaN anywhere in a row gives NaN in that row's output column (Thinc's
    keeps it only when it comes first). Backprop sends each output cell's gradient to
    the position of its maximum, the first one on ties (the first NaN if any).
    """
    return Model("reduce_max", forward)


def forward(model: Model[Ragged, Floats2d], X: Ragged, is_train: bool) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    if isinstance(X, Wordpieces):
        done = pool_wordpieces(model, X, "max")
        if done is not None:
            return done
    data, lengths = ragged_input(model, X)
    be = backend(model)
    dtype = data.dtype
    n_rows, width = (int(s) for s in data.shape)
    n_out = int(lengths.shape[0])
    Y, which = be.segment_max(data, lengths)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, width), dtype)
        return Ragged(be.max_backprop(dY, which, lengths, n_rows), lengths)

    return Y, backprop
