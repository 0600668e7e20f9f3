from thinc.api import Model, registry
from thinc.types import Ragged

from ..backends.reduce import backprop_reduce_sum, reduce_sum as reduce
from ..types import PoolingModelT
from ._pooling import ReductionOut, reduction


@registry.layers("thinc_trf_layers.reduce_sum.v1")
def reduce_sum() -> PoolingModelT:
    """The sum of every row of a ``Ragged``: (rows, width).
    See docs/pooling.md#reduce_sum-reduce_mean-reduce_mean_sqrt_len."""
    return Model("reduce_sum", forward)


def forward(model: PoolingModelT, X: Ragged, is_train: bool) -> ReductionOut:
    return reduction(model, X, is_train, reduce, backprop_reduce_sum)
