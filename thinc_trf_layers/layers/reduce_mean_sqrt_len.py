from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import backprop_reduce_mean_sqrt_len, reduce_mean_sqrt_len as reduce
from ..types import PoolingModelT
from ._pooling import reduction


@registry.layers("thinc_trf_layers.reduce_mean_sqrt_len.v1")
def reduce_mean_sqrt_len() -> PoolingModelT:
    """Sum the vectors of every row and divide by the square root of its length
    (sentence-transformers' ``mean_sqrt_len_tokens``): (rows x wordpieces, width) to
    (rows, width). A row of length zero gives zeros with a zero gradient.
    """
    return Model("reduce_mean_sqrt_len", forward)


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    return reduction(model, X, reduce, backprop_reduce_mean_sqrt_len)
