from thinc.api import Model, registry
from thinc.types import Ragged

from ..backends.reduce import backprop_reduce_max, reduce_max as reduce
from ..types import PoolingModelT
from ._pooling import ReductionOut, reduction


@registry.layers("thinc_trf_layers.reduce_max.v1")
def reduce_max() -> PoolingModelT:
    """The element-wise max of every row of a ``Ragged`` (a NaN anywhere wins its column).
    See docs/pooling.md#reduce_max."""
    return Model("reduce_max", forward)


def forward(model: PoolingModelT, X: Ragged, is_train: bool) -> ReductionOut:
    return reduction(model, X, is_train, reduce, backprop_reduce_max)
