from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import backprop_reduce_first, reduce_first as reduce
from ..types import PoolingModelT
from ._pooling import reduction


@registry.layers("thinc_trf_layers.reduce_first.v1")
def reduce_first() -> PoolingModelT:
    """The first vector of every row of a ``Ragged`` (sentence-transformers' ``cls``: the
    first wordpiece): (rows x wordpieces, width) to (rows, width).

    A row of length zero gives zeros with a zero gradient (Thinc's raises); an all-empty
    batch keeps its width; any float dtype, int32 or int64 lengths. Backprop puts the
    gradient at that position and zeros elsewhere.
    """
    return Model("reduce_first", forward)


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    return reduction(model, X, reduce, backprop_reduce_first)
