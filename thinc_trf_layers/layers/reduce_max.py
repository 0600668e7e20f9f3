from thinc.api import registry

from ..backends.reduce import backprop_reduce_max, reduce_max as reduce
from ..types import PoolingModelT
from ._pooling import reduction_layer


@registry.layers("thinc_trf_layers.reduce_max.v1")
def reduce_max() -> PoolingModelT:
    """The element-wise max of every row of a ``Ragged`` (a NaN anywhere wins its column).
    See docs/pooling.md#reduce_max."""
    return reduction_layer("reduce_max", reduce, backprop_reduce_max)
