from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..types import PoolingModelT
from ._pooling import sum_like_forward


@registry.layers("thinc_trf_layers.reduce_sum.v1")
def reduce_sum() -> PoolingModelT:
    """Sum the vectors of every row of a ``Ragged``: (rows x wordpieces, width) to
    (rows, width).

    Unlike Thinc's ``reduce_sum``: a row of length zero gives zeros (and no gradient),
    an all-empty batch keeps its width, float16 data is summed in float32 and returned
    as float16, int32 and int64 lengths are both accepted. NaN in a row gives NaN in
    that row's output. Backprop gives every position of a row the row's gradient.
    """
    return Model("reduce_sum", forward)


def forward(model: Model[Ragged, Floats2d], X: Ragged, is_train: bool) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    return sum_like_forward(model, X, "sum")
