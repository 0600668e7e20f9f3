from thinc.api import registry

from ..backends.reduce import backprop_reduce_mean_max, reduce_mean_max as reduce
from ..types import PoolingModelT
from ._pooling import reduction_layer


@registry.layers("thinc_trf_layers.reduce_mean_max.v1")
def reduce_mean_max() -> PoolingModelT:
    """``[mean | max]`` of every row of a ``Ragged``, in one pass: (rows, 2 * width).
    See docs/pooling.md#reduce_mean_max."""
    return reduction_layer("reduce_mean_max", reduce, backprop_reduce_mean_max)
