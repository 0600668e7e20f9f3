from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import backprop_reduce_mean, reduce_mean as reduce
from ..types import PoolingModelT
from ._pooling import reduction


@registry.layers("thinc_trf_layers.reduce_mean.v1")
def reduce_mean() -> PoolingModelT:
    """Average the vectors of every row of a ``Ragged`` (sentence-transformers'
    ``mean`` pooling): (rows x wordpieces, width) to (rows, width).

    A row of length zero gives zeros with a zero gradient; an all-empty batch keeps its
    width; float16 is accumulated in float32; int32 or int64 lengths; NaN propagates to
    its row. Backprop gives each position ``dY / length``.
    """
    return Model("reduce_mean", forward)


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    return reduction(model, X, reduce, backprop_reduce_mean)
