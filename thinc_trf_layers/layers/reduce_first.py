from thinc.api import Model, registry
from thinc.types import Ragged

from ..backends.reduce import backprop_reduce_first, reduce_first as reduce
from ..types import PoolingModelT
from ._pooling import ReductionOut, reduction


@registry.layers("thinc_trf_layers.reduce_first.v1")
def reduce_first() -> PoolingModelT:
    """The first vector of every row of a ``Ragged`` (zeros for an empty row).
    See docs/pooling.md#reduce_first-reduce_last."""
    return Model("reduce_first", forward)


def forward(model: PoolingModelT, X: Ragged, is_train: bool) -> ReductionOut:
    return reduction(model, X, is_train, reduce, backprop_reduce_first)
