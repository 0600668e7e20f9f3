from thinc.api import registry

from ..backends.reduce import backprop_reduce_mean, reduce_mean as reduce
from ..types import PoolingModelT
from ._pooling import reduction_layer


@registry.layers("thinc_trf_layers.reduce_mean.v1")
def reduce_mean() -> PoolingModelT:
    """The mean of every row of a ``Ragged``: (rows, width).
    See docs/pooling.md#reduce_sum-reduce_mean-reduce_mean_sqrt_len."""
    return reduction_layer("reduce_mean", reduce, backprop_reduce_mean)
