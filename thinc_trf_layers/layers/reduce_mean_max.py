from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import backprop_reduce_mean_max, reduce_mean_max as reduce
from ..types import PoolingModelT
from ._pooling import reduction


@registry.layers("thinc_trf_layers.reduce_mean_max.v1")
def reduce_mean_max() -> PoolingModelT:
    """The mean and the max of every row, concatenated: (rows x wordpieces, width) to
    (rows, 2 * width), ``[mean | max]``.

    Computed in one pass over the rows (and one for the gradient), so it is cheaper than
    ``concatenate(reduce_mean(), reduce_max())``. Edge cases as ``reduce_mean`` and
    ``reduce_max``: a row of length zero gives zeros with a zero gradient, NaN in a row
    gives NaN in both halves of its output.
    """
    return Model("reduce_mean_max", forward)


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    return reduction(model, X, reduce, backprop_reduce_mean_max)
