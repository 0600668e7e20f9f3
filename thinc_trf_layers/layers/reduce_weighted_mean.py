from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import backprop_reduce_weighted_mean, reduce_weighted_mean as reduce
from ..types import PoolingModelT
from ._pooling import reduction


@registry.layers("thinc_trf_layers.reduce_weighted_mean.v1")
def reduce_weighted_mean() -> PoolingModelT:
    """Position-weighted mean of every row: the i-th vector of a row (1-based)
    has weight ``i``, so ``Y = sum_i i * x_i / sum_i i`` (sentence-transformers'
    ``weightedmean``). Positions count within the row's real wordpieces, so the result
    does not depend on the side padding was on (sentence-transformers counts padded
    slots). A row of length zero gives zeros with a zero gradient.
    """
    return Model("reduce_weighted_mean", forward)


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    return reduction(model, X, reduce, backprop_reduce_weighted_mean)
