from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..types import PoolingModelT
from ..util import check_grad
from ..wordpieces import Wordpieces
from ._pooling import backend, pool_wordpieces, ragged_input, row_scale


@registry.layers("thinc_trf_layers.reduce_mean_max.v1")
def reduce_mean_max() -> PoolingModelT:
    """The mean and the max of every row, concatenated: (rows x wordpieces, width) to
    (rows, 2 * width), ``[mean | max]``.

    Computed in one layer (the sum and the max in one pass over the rows where the
    backend can, and one pass for the gradient), so it is cheaper than
    ``concatenate(reduce_mean(), reduce_max())``. Edge cases as ``reduce_mean`` and
    ``reduce_max``: a row of length zero gives zeros with a zero gradient, NaN in a row
    gives NaN in both halves of its output.
    """
    return Model("reduce_mean_max", forward)


def forward(model: Model[Ragged, Floats2d], X: Ragged, is_train: bool) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    if isinstance(X, Wordpieces):
        done = pool_wordpieces(model, X, "mean_max")
        if done is not None:
            return done
    data, lengths = ragged_input(model, X)
    be = backend(model)
    dtype = data.dtype
    n_rows, width = (int(s) for s in data.shape)
    n_out = int(lengths.shape[0])
    scale = row_scale(model, "mean", lengths, dtype)
    assert scale is not None
    Y, which = be.segment_mean_max(data, lengths, scale)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, 2 * width), dtype)
        dX = be.mean_max_backprop(dY, which, lengths, n_rows, scale)
        return Ragged(dX.astype(dtype, copy=False), lengths)

    return Y, backprop
