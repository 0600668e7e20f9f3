from thinc.api import registry

from ..backends.reduce import backprop_reduce_last, reduce_last as reduce
from ..types import PoolingModelT
from ._pooling import reduction_layer


@registry.layers("thinc_trf_layers.reduce_last.v1")
def reduce_last() -> PoolingModelT:
    """The last vector of every row of a ``Ragged`` (zeros for an empty row).
    See docs/pooling.md#reduce_first-reduce_last."""
    return reduction_layer("reduce_last", reduce, backprop_reduce_last)
