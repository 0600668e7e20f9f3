from typing import Any, Callable, Optional, Tuple, Union

from thinc.api import Model, registry
from thinc.types import Floats2d, Floats3d, Ints1d, Ints2d, Ragged

from ..backends.pooling import acc_dtype
from ..types import PoolingModelT
from ..util import check_grad, input_error
from ._pooling import SUM_LIKE, backend, row_scale

#: A padded batch: (batch, length, width) data and either the real lengths (batch,) or
#: an attention mask (batch, length) of 0/1.
PaddedBatchT = Tuple[Floats3d, Union[Ints1d, Ints2d, Floats2d]]
#: Backprop returns the data's gradient and a zero gradient for the lengths or mask.
PaddedGradT = Tuple[Floats3d, Union[Ints1d, Ints2d, Floats2d]]

_DIRECT = SUM_LIKE + ("max", "mean_max", "first", "last")


@registry.layers("thinc_trf_layers.with_padded_mask.v1")
def with_padded_mask(pooling: PoolingModelT) -> Model[PaddedBatchT, Floats2d]:
    """Run a pooling on a padded batch: ``(X, lengths)`` or ``(X, attention_mask)`` to
    one vector per batch row.

    ``X`` is (batch, length, width); the second item is either the real lengths (batch,)
    of right-padded rows (int32/int64) or an attention mask (batch, length) of 0/1 (any
    int, bool or float dtype) with the real positions at 1, right- or left-padded (any
    pattern works: the real positions are taken in order). Padding never counts, even
    if it holds NaN.

    Our reductions (``reduce_sum``, ``reduce_mean``, ``reduce_mean_sqrt_len``,
    ``reduce_weighted_mean``, ``reduce_max``, ``reduce_mean_max``, ``reduce_first``,
    ``reduce_last``) are computed on the padded array directly (no copy into a
    ``Ragged``). Any other ``Model[Ragged, Floats2d]`` (``attention_pool``,
    ``reduce_gem``, your own) is run on a ``Ragged`` gathered from the real positions,
    and its gradient scattered back. Backprop returns ``(dX, zeros)``: the gradient of
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


def _weights(model: Model[PaddedBatchT, Floats2d], kind: str, mask: Any, lengths: Any, dtype: Any) -> Any:
    """Per-position weights (batch, length) of a sum-like pooling, zero at padding."""
    xp = model.ops.xp
    acc = acc_dtype(dtype)
    w = mask.astype(acc)
    if kind == "weighted_mean":
        w = xp.cumsum(w, axis=1) * w
    scale = row_scale(model, kind, lengths, dtype)
    if scale is not None:
        w *= scale[:, None]
    return w


def forward(
    model: Model[PaddedBatchT, Floats2d], inputs: PaddedBatchT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], PaddedGradT]]:
    X, mask, lengths = _unpack(model, inputs)
    second = inputs[1]
    pooling = model.layers[0]
    kind = pooling.attrs.get("pooling")
    if kind not in _DIRECT:
        return _forward_ragged(model, X, mask, lengths, second, is_train)
    be = backend(model)
    xp = model.ops.xp
    dtype = X.dtype
    B, L, W = (int(s) for s in X.shape)
    nonempty = lengths > 0
    out_width = 2 * W if kind == "mean_max" else W
    weights: Optional[Any] = None
    pos: Optional[Any] = None
    # one block of real positions per row (right/left padding): the backend's segment
    # kernels where it has them, else faster max and gradients
    blocks = be.padded_blocks(mask) if kind not in ("first", "last") else None
    segments = be.padded_segments(X, blocks) if blocks is not None else None
    if segments is not None:
        assert blocks is not None
        return _forward_segments(model, X, segments, blocks[1], kind, second)
    if kind == "weighted_mean":
        blocks = None  # the padded kernels' block gradient has no position weights
    if kind in SUM_LIKE or kind == "mean_max":
        sum_kind = "mean" if kind == "mean_max" else kind
        weights = _weights(model, sum_kind, mask, lengths, dtype)
        scale = row_scale(model, sum_kind, lengths, dtype)
        sums = be.padded_weighted_sum(X, weights)
    if kind in ("max", "mean_max"):
        maxes, pos = be.padded_max(X, mask, blocks)
    if kind in ("first", "last"):
        if B and L:
            m = mask[:, ::-1] if kind == "last" else mask
            pos = m.astype("int8").argmax(axis=1)
            if kind == "last":
                pos = L - 1 - pos
            picked = X[xp.arange(B), pos]
        else:
            pos = xp.zeros((B,), dtype="int64")
            picked = xp.zeros((B, W), dtype=dtype)
        Y = xp.where(nonempty[:, None], picked, 0).astype(dtype, copy=False)
    elif kind == "mean_max":
        Y = xp.empty((B, 2 * W), dtype=dtype)
        Y[:, :W] = sums
        Y[:, W:] = maxes
    elif kind == "max":
        Y = maxes
    else:
        Y = sums.astype(dtype, copy=False)

    def backprop(dY: Floats2d) -> PaddedGradT:
        check_grad(model.name, dY, (B, out_width), dtype)
        if kind in SUM_LIKE or kind == "mean_max":
            d_sum = dY[:, :W] if kind == "mean_max" else dY
            dX = None
            if blocks is not None:
                d_rows = d_sum if scale is None else (d_sum * scale[:, None]).astype(dtype, copy=False)
                dX = be.padded_block_grad(d_rows, blocks, L, dtype)
            if dX is None:
                dX = be.padded_weighted_grad(d_sum, weights, dtype)
            if kind == "mean_max":
                be.padded_scatter(dY[:, W:], pos, nonempty, (B, L, W), into=dX)
        else:
            dX = be.padded_scatter(dY, pos, nonempty, (B, L, W))
        return dX, xp.zeros_like(second)

    return Y, backprop


def _forward_segments(
    model: Model[PaddedBatchT, Floats2d], X: Any, segments: Tuple[Any, Any], lengths: Any, kind: str, second: Any
) -> Tuple[Floats2d, Callable[[Floats2d], PaddedGradT]]:
    """One block of real positions per row, on a backend with segment kernels: pool the
    blocks of X seen as (B * L, W) in place, write the whole padded gradient in one pass."""
    be = backend(model)
    xp = model.ops.xp
    dtype = X.dtype
    acc = acc_dtype(dtype)
    B, L, W = (int(s) for s in X.shape)
    rows, starts = segments
    out_width = 2 * W if kind == "mean_max" else W
    weighted = kind == "weighted_mean"
    scale = row_scale(model, "mean" if kind == "mean_max" else kind, lengths, dtype) if kind != "max" else None
    if kind == "max":
        Y, which = be.segment_max(rows, lengths, starts=starts)
    elif kind == "mean_max":
        assert scale is not None
        Y, which = be.segment_mean_max(rows, lengths, scale, starts=starts)
    else:
        Y = be.segment_sum(rows, lengths, weighted=weighted, starts=starts, scale=scale).astype(dtype, copy=False)

    def backprop(dY: Floats2d) -> PaddedGradT:
        check_grad(model.name, dY, (B, out_width), dtype)
        if kind == "max":
            dX = be.max_backprop(dY, which, lengths, B * L, starts=starts, block=L)
        elif kind == "mean_max":
            dX = be.mean_max_backprop(dY, which, lengths, B * L, scale, starts=starts, block=L)
        else:
            d = dY.astype(acc, copy=False)
            dX = be.sum_backprop(d, lengths, B * L, weighted=weighted, starts=starts, block=L, scale=scale)
        return dX.astype(dtype, copy=False).reshape(B, L, W), xp.zeros_like(second)

    return Y, backprop


def _forward_ragged(
    model: Model[PaddedBatchT, Floats2d], X: Any, mask: Any, lengths: Any, second: Any, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], PaddedGradT]]:
    """Any other pooling: gather the real positions into a Ragged, run it, scatter back."""
    xp = model.ops.xp
    B, L, W = (int(s) for s in X.shape)
    rows = xp.nonzero(mask.reshape(-1))[0]
    data = X.reshape(B * L, W)[rows]
    # int32 lengths: Thinc's own poolings (NumpyOps kernels) take no other.
    Y, get_dR = model.layers[0](Ragged(data, lengths.astype("int32")), is_train)

    def backprop(dY: Floats2d) -> PaddedGradT:
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
        data, mask, lengths = _unpack(model, X)
        B, L, W = (int(s) for s in data.shape)
        rows = model.ops.xp.nonzero(mask.reshape(-1))[0]
        sample = Ragged(data.reshape(B * L, W)[rows], lengths.astype("int32"))
    pooling.initialize(X=sample, Y=Y)
    for dim in ("nO", "nI"):
        if pooling.has_dim(dim) and model.has_dim(dim) is None:
            model.set_dim(dim, pooling.get_dim(dim))
