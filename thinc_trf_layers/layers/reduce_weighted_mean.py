from thinc.api import Model, registry
from thinc.types import Ragged

from ..backends.reduce import backprop_reduce_weighted_mean, reduce_weighted_mean as reduce
from ..types import PoolingModelT
from ._pooling import ReductionOut, reduction


@registry.layers("thinc_trf_layers.reduce_weighted_mean.v1")
def reduce_weighted_mean() -> PoolingModelT:
    """The mean of every row of a ``Ragged``, its i-th real vector (1-based) weighted by i.
    See docs/pooling.md#reduce_weighted_mean."""
    return Model("reduce_weighted_mean", forward)


def forward(model: PoolingModelT, X: Ragged, is_train: bool) -> ReductionOut:
    return reduction(model, X, is_train, reduce, backprop_reduce_weighted_mean)
