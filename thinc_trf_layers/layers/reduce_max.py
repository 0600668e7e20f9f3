from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import backprop_reduce_max, reduce_max as reduce
from ..types import PoolingModelT
from ._pooling import reduction


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


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    return reduction(model, X, reduce, backprop_reduce_max)
