from typing import Callable, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Floats3d

from ..errors import LayerInputError, check_array, check_grad, check_int


@registry.layers("thinc_trf_layers.select_token.v1")
def select_token(index: int = 0) -> Model[Floats3d, Floats2d]:
    """``X[:, index]`` of (spans, wordpieces, width): one position of every span, padding
    included. See docs/combinators.md#select_tokenindex0."""
    check_int("select_token", "index", index)
    return Model(f"select_token({index})", forward, attrs={"index": index})


def forward(
    model: Model[Floats3d, Floats2d], X: Floats3d, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Floats3d]]:
    index: int = model.attrs["index"]
    check_array(model.name, X, 3, "a Floats3d of shape (spans, wordpieces, width)")
    n_spans, n_pieces, width = X.shape
    if n_spans and not -n_pieces <= index < n_pieces:
        raise LayerInputError(
            f"{model.name}: token index {index} is out of range for input of shape "
            f"{tuple(X.shape)}, which has {n_pieces} wordpieces per span; expected an index in "
            f"[{-n_pieces}, {n_pieces})."
        )
    Y = model.ops.as_contig(X[:, index]) if n_spans else model.ops.alloc2f(0, width, dtype=X.dtype)
    dtype = X.dtype

    def backprop(dY: Floats2d) -> Floats3d:
        check_grad(model.name, dY, (n_spans, width), dtype)
        dX = model.ops.alloc3f(n_spans, n_pieces, width, dtype=dtype)
        if n_spans:
            dX[:, index] = dY
        return dX

    return Y, backprop
