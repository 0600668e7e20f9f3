from thinc.api import registry

from ..backends.reduce import backprop_reduce_first, reduce_first as reduce
from ..types import PoolingModelT
from ._pooling import reduction_layer


@registry.layers("thinc_trf_layers.reduce_first.v1")
def reduce_first() -> PoolingModelT:
    """The first vector of every row of a ``Ragged`` (zeros for an empty row).
    See docs/pooling.md#reduce_first-reduce_last."""
    return reduction_layer("reduce_first", reduce, backprop_reduce_first)
