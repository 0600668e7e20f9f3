from typing import Any, Callable, Optional, Tuple, Union

import numpy
from thinc.api import Model, registry
from thinc.types import Floats2d, Floats3d, Ints1d, Ints2d

from ..alignment import runs
from ..errors import check_grad, input_error, is_torch
from ..types import PoolingModelT
from ..wordpieces import Wordpieces, host, storage_grads
from ._pooling import plain

PaddedBatchT = Tuple[Floats3d, Union[Ints1d, Ints2d, Floats2d]]
PaddedGradT = PaddedBatchT  # the data's gradient, and a zero gradient for the lengths or mask


@registry.layers("thinc_trf_layers.with_padded_mask.v1")
def with_padded_mask(pooling: PoolingModelT) -> Model[PaddedBatchT, Floats2d]:
    """Run a pooling on a padded batch, ``(X, lengths)`` or ``(X, attention_mask)``, to one
    vector per batch row. See docs/pooling.md#with_padded_maskpooling."""
    return Model(
        f"with_padded_mask({pooling.name})",
        forward,
        init=init,
        layers=[pooling],
        dims={"nO": pooling.maybe_get_dim("nO"), "nI": pooling.maybe_get_dim("nI")},
    )


def _rows(model: Model[PaddedBatchT, Floats2d], inputs: Any) -> Tuple[Any, Wordpieces]:
    """Check the input; return X and its real positions, in order, as a ``Wordpieces``
    over X: each run of real positions is a piece (one per row, for right or left
    padding)."""
    name = model.name
    expected = "a tuple (X, lengths) or (X, attention_mask) with X of shape (batch, length, width)"
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        raise input_error(name, inputs, expected)
    X, second = inputs
    for item, what in ((X, "X"), (second, "the lengths or attention mask")):
        if is_torch(item):
            raise input_error(
                name,
                item,
                f"{what} as an array of the model's Ops (NumPy or CuPy)",
                fix="Convert torch tensors first: thinc.api.torch2xp(tensor.detach()) for X "
                "and the mask, or build one TransformerOutput per sequence with "
                "TransformerOutput.from_hf(attention_mask, last_hidden_state=...), which "
                "takes torch tensors, and pool with trf_pool(pooling).",
            )
    if getattr(X, "ndim", None) != 3 or getattr(X.dtype, "kind", "") != "f":
        raise input_error(name, X, "X as a 3d floating-point array (batch, length, width)")
    B, L, W = (int(s) for s in X.shape)
    kind = getattr(getattr(second, "dtype", None), "kind", "")
    ndim = getattr(second, "ndim", None)
    if ndim == 1 and kind in "iu" and kind:
        if int(second.shape[0]) != B:
            raise input_error(name, second, f"one length per batch row ({B})")
        lengths = second.astype("int64")
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > L):
            raise input_error(
                name,
                second,
                f"lengths between 0 and the padded length {L} "
                f"(got {int(lengths.min())}..{int(lengths.max())})",
            )
        mask = model.ops.xp.arange(L, dtype="int64")[None, :] < lengths[:, None]
    elif ndim == 2 and kind in "iufb" and kind:
        if tuple(second.shape) != (B, L):
            raise input_error(
                name, second, f"an attention mask of shape {(B, L)}, the first two axes of X"
            )
        if kind != "b" and second.size and not bool(((second == 0) | (second == 1)).all()):
            raise input_error(name, second, "an attention mask of 0s and 1s")
        mask = second != 0
    else:
        raise input_error(
            name,
            second,
            "lengths (a 1d int array, one per batch row) or an attention mask "
            "(a 2d array of 0/1, batch x length) as the second item",
        )
    real = host(mask).astype(bool).reshape(-1)
    P = numpy.flatnonzero(real)
    pieces = runs(P, numpy.zeros(len(P), dtype="int64"), real.reshape(B, L).sum(axis=1))
    return X, Wordpieces(model.ops, [X.reshape(B * L, W)], *pieces, width=W, dtype=X.dtype)


def forward(
    model: Model[PaddedBatchT, Floats2d], inputs: PaddedBatchT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], PaddedGradT]]:
    X, R = _rows(model, inputs)
    Y, get_dR = model.layers[0](R, is_train)
    out_shape, out_dtype = tuple(Y.shape), Y.dtype

    def backprop(dY: Floats2d) -> PaddedGradT:
        check_grad(model.name, dY, out_shape, out_dtype)
        dX: Any = storage_grads(model.name, R, get_dR(dY))[0].reshape(X.shape)
        return dX, model.ops.xp.zeros_like(inputs[1])  # no gradient for the lengths or mask

    return Y, backprop


def init(
    model: Model[PaddedBatchT, Floats2d],
    X: Optional[PaddedBatchT] = None,
    Y: Optional[Floats2d] = None,
) -> None:
    pooling = model.layers[0]
    pooling.initialize(X=None if X is None else plain(_rows(model, X)[1]), Y=Y)
    for dim in ("nO", "nI"):
        if pooling.has_dim(dim) and model.has_dim(dim) is None:
            model.set_dim(dim, pooling.get_dim(dim))
