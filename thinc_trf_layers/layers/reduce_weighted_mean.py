from thinc.api import registry

from ..backends.reduce import backprop_reduce_weighted_mean, reduce_weighted_mean as reduce
from ..types import PoolingModelT
from ._pooling import reduction_layer


@registry.layers("thinc_trf_layers.reduce_weighted_mean.v1")
def reduce_weighted_mean() -> PoolingModelT:
    """The mean of every row of a ``Ragged``, its i-th real vector (1-based) weighted by i.
    See docs/pooling.md#reduce_weighted_mean."""
    return reduction_layer("reduce_weighted_mean", reduce, backprop_reduce_weighted_mean)
