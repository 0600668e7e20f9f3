from functools import partial

from thinc.api import Model, registry

from ..backends.reduce import backprop_reduce_mean_max, reduce_mean_max as reduce
from ..types import PoolingModelT
from ._pooling import reduction


@registry.layers("thinc_trf_layers.reduce_mean_max.v1")
def reduce_mean_max() -> PoolingModelT:
    """``[mean | max]`` of every row of a ``Ragged``, in one pass: (rows, 2 * width).
    See docs/pooling.md#reduce_mean_max."""
    return Model("reduce_mean_max", partial(reduction, reduce, backprop_reduce_mean_max))
