from typing import Any, Callable, List, Optional, Tuple, Union

from thinc.api import Model, registry
from thinc.types import Floats2d, Floats3d, Ints1d, Ints2d, Ragged

from ..types import PoolingModelT
from ..util import check_grad, input_error
from ..wordpieces import Wordpieces

#: A padded batch: (batch, length, width) data and either the real lengths (batch,) or
#: an attention mask (batch, length) of 0/1.
PaddedBatchT = Tuple[Floats3d, Union[Ints1d, Ints2d, Floats2d]]
#: Backprop returns the data's gradient and a zero gradient for the lengths or mask.
PaddedGradT = Tuple[Floats3d, Union[Ints1d, Ints2d, Floats2d]]

@registry.layers("thinc_trf_layers.with_padded_mask.v1")
def with_padded_mask(pooling: PoolingModelT) -> Model[PaddedBatchT, Floats2d]:
    """Run a pooling on a padded batch: ``(X, lengths)`` or ``(X, attention_mask)`` to
    one vector per batch row.

    ``X`` is (batch, length, width); the second item is either the real lengths (batch,)
    of right-padded rows (int32/int64) or an attention mask (batch, length) of 0/1 (any
    int, bool or float dtype) with the real positions at 1, right- or left-padded (any
    pattern works: the real positions are taken in order). Padding never counts, even
    if it holds NaN.

    When the real positions of every row form one block (right or left padding), the
    pooling is given a ``Wordpieces`` over X (see ``trf2ragged``): our reductions
    (``reduce_sum``, ``reduce_mean``, ``reduce_mean_sqrt_len``, ``reduce_weighted_mean``,
    ``reduce_max``, ``reduce_mean_max``, ``reduce_first``, ``reduce_last``) compute on
    the padded array directly (no copy into a ``Ragged``) and write the padded gradient
    once; any other ``Model[Ragged, Floats2d]`` (``attention_pool``, ``reduce_gem``,
    your own) reads the real rows, gathered once, and its gradient is scattered back.
    Other masks are gathered into a plain ``Ragged``. Backprop returns ``(dX, zeros)``: the gradient of
    the padded shape, zeros at padding, and a zero gradient for the lengths or mask.
    """
    return Model(
        f"with_padded_mask({pooling.name})",
        forward,
        init=init,
        layers=[pooling],
        dims={"nO": pooling.maybe_get_dim("nO"), "nI": pooling.maybe_get_dim("nI")},
    )


def _unpack(model: Model[PaddedBatchT, Floats2d], inputs: Any) -> Tuple[Any, Any, Any]:
    """Check the input; return X, the boolean mask (batch, length), the lengths (int64)."""
    name = model.name
    expected = "a tuple (X, lengths) or (X, attention_mask) with X of shape (batch, length, width)"
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        raise input_error(name, inputs, expected)
    X, second = inputs
    for item, what in ((X, "X"), (second, "the lengths or attention mask")):
        if type(item).__module__.split(".")[0] == "torch":
            raise input_error(
                name, item, f"{what} as an array of the model's Ops (NumPy or CuPy)",
                fix="Convert torch tensors first: thinc.api.torch2xp(tensor.detach()) for X "
                "and the mask, or build one TransformerOutput per sequence with "
                "TransformerOutput.from_hf(attention_mask, last_hidden_state=...), which "
                "takes torch tensors, and pool with trf_pool(pooling).",
            )
    if getattr(X, "ndim", None) != 3 or getattr(X.dtype, "kind", "") != "f":
        raise input_error(name, X, "X as a 3d floating-point array (batch, length, width)")
    B, L = int(X.shape[0]), int(X.shape[1])
    xp = model.ops.xp
    kind = getattr(getattr(second, "dtype", None), "kind", "")
    ndim = getattr(second, "ndim", None)
    if ndim == 1 and kind in "iu" and kind:
        if int(second.shape[0]) != B:
            raise input_error(name, second, f"one length per batch row ({B})")
        lengths = second.astype("int64")
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > L):
            raise input_error(
                name, second, f"lengths between 0 and the padded length {L} "
                f"(got {int(lengths.min())}..{int(lengths.max())})"
            )
        mask = xp.arange(L, dtype="int64")[None, :] < lengths[:, None]
        return X, mask, lengths
    if ndim == 2 and kind in "iufb" and kind:
        if tuple(second.shape) != (B, L):
            raise input_error(name, second, f"an attention mask of shape {(B, L)}, the first two axes of X")
        mask = second != 0
        if kind != "b" and second.size and not bool(((second == 0) | (second == 1)).all()):
            raise input_error(name, second, "an attention mask of 0s and 1s")
        return X, mask, mask.sum(axis=1).astype("int64")
    raise input_error(
        name, second, "lengths (a 1d int array, one per batch row) or an attention mask "
        "(a 2d array of 0/1, batch x length) as the second item"
    )


def forward(
    model: Model[PaddedBatchT, Floats2d], inputs: PaddedBatchT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], PaddedGradT]]:
    X, mask, lengths = _unpack(model, inputs)
    second = inputs[1]
    blocks = _blocks(model.ops.xp, mask, lengths)
    if blocks is None:
        return _forward_ragged(model, X, mask, lengths, second, is_train)
    # one block of real positions per row (right or left padding): the rows as a
    # Wordpieces over X, which our poolings reduce where they lie
    first, n = blocks
    R = Wordpieces.from_padded(model.ops, X, first, n)
    Y, get_dR = model.layers[0](R, is_train)
    out_shape, out_dtype = tuple(Y.shape), Y.dtype

    def backprop(dY: Floats2d) -> PaddedGradT:
        check_grad(model.name, dY, out_shape, out_dtype)
        dX: Any = R.padded_grads(model.name, get_dR(dY))[0]
        return dX, model.ops.xp.zeros_like(second)

    return Y, backprop


def _blocks(xp: Any, mask: Any, lengths: Any) -> Optional[Tuple[List[int], List[int]]]:
    """``(first, n)`` per row when the real positions of every row form one block
    (right- or left-padded, or a block in the middle), else None."""
    B, L = (int(s) for s in mask.shape)
    n = lengths.astype("int64")
    if B == 0 or L == 0:
        return [0] * B, [int(v) for v in n.tolist()]
    first = xp.where(n > 0, mask.astype("int8").argmax(axis=1), 0).astype("int64")
    last = xp.maximum(first + n - 1, 0)
    if not bool((xp.cumsum(mask, axis=1)[xp.arange(B), last] == n).all()):
        return None
    return [int(v) for v in first.tolist()], [int(v) for v in n.tolist()]


def _gather(model: Model[PaddedBatchT, Floats2d], X: Any, mask: Any, lengths: Any) -> Tuple[Ragged, Any]:
    """The real positions of X (B, L, W) as a Ragged (a copy), and their flat row indices.
    int32 lengths: Thinc's own poolings (NumpyOps kernels) take no other."""
    B, L, W = (int(s) for s in X.shape)
    rows = model.ops.xp.nonzero(mask.reshape(-1))[0]
    return Ragged(X.reshape(B * L, W)[rows], lengths.astype("int32")), rows


def _forward_ragged(
    model: Model[PaddedBatchT, Floats2d], X: Any, mask: Any, lengths: Any, second: Any, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], PaddedGradT]]:
    """Any other mask: gather the real positions into a Ragged, run it, scatter back."""
    xp = model.ops.xp
    B, L, W = (int(s) for s in X.shape)
    R, rows = _gather(model, X, mask, lengths)
    Y, get_dR = model.layers[0](R, is_train)
    out_shape, out_dtype = tuple(Y.shape), Y.dtype

    def backprop(dY: Floats2d) -> PaddedGradT:
        check_grad(model.name, dY, out_shape, out_dtype)
        dR = get_dR(dY)
        dX = xp.zeros((B * L, W), dtype=X.dtype)
        dX[rows] = dR.dataXd
        return dX.reshape(B, L, W), xp.zeros_like(second)

    return Y, backprop


def init(
    model: Model[PaddedBatchT, Floats2d], X: Optional[PaddedBatchT] = None, Y: Optional[Floats2d] = None
) -> None:
    pooling = model.layers[0]
    sample: Optional[Ragged] = None
    if X is not None:
        sample = _gather(model, *_unpack(model, X))[0]
    pooling.initialize(X=sample, Y=Y)
    for dim in ("nO", "nI"):
        if pooling.has_dim(dim) and model.has_dim(dim) is None:
            model.set_dim(dim, pooling.get_dim(dim))
