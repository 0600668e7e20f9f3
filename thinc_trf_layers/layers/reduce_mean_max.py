from thinc.api import Model, registry
from thinc.types import Ragged

from ..backends.reduce import backprop_reduce_mean_max, reduce_mean_max as reduce
from ..types import PoolingModelT
from ._pooling import ReductionOut, reduction


@registry.layers("thinc_trf_layers.reduce_mean_max.v1")
def reduce_mean_max() -> PoolingModelT:
    """``[mean | max]`` of every row of a ``Ragged``, in one pass: (rows, 2 * width).
    See docs/pooling.md#reduce_mean_max."""
    return Model("reduce_mean_max", forward)


def forward(model: PoolingModelT, X: Ragged, is_train: bool) -> ReductionOut:
    return reduction(model, X, is_train, reduce, backprop_reduce_mean_max)
