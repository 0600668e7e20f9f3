import math
from typing import Callable, List, Optional, Tuple

from thinc.api import Model, registry
from thinc.types import Floats3d

from ..backends.mix import mix_backward, mix_forward
from ..backends.reduce import acc_dtype
from ..errors import LayerInputError, check_grad, check_initialized, check_layers
from ..types import MixModelT
from ._mixing import init_width, no_layers

#: The raw parameter value whose softplus is 1: ``log(e - 1)``.
SOFTPLUS_INV_1 = math.log(math.e - 1.0)
#: The denominator ``sum_i softplus(weights_i)`` (computed in float64) is clamped at this
#: value. It is > 0 in exact arithmetic; the clamp, reached only when every weight is below
#: about -70, guards against underflow to 0 (the output then shrinks towards 0, finite).
MIN_DENOMINATOR = 1e-30


@registry.layers("thinc_trf_layers.weighted_layer_pooling.v1")
def weighted_layer_pooling(n_layers: int, *, layer_start: int = 4) -> MixModelT:
    """A learned weighted average of the layers from ``layer_start`` on: ``sum_i a_i X_i /
    sum_i a_i``, ``a_i = softplus(weights_i)``. See docs/mixing.md."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise LayerInputError(
            f"weighted_layer_pooling: expected n_layers to be an int >= 1, got {n_layers!r}."
        )
    if (
        isinstance(layer_start, bool)
        or not isinstance(layer_start, int)
        or not -n_layers <= layer_start < n_layers
    ):
        raise LayerInputError(
            f"weighted_layer_pooling({n_layers}): expected layer_start to be an int in "
            f"[{-n_layers}, {n_layers}), got {layer_start!r}."
        )
    start = layer_start % n_layers
    return Model(
        f"weighted_layer_pooling({n_layers}, layer_start={start})",
        forward,
        init=init,
        dims={"nI": None, "nO": None},
        params={"weights": None},
        attrs={"n_layers": n_layers, "layer_start": start},
    )


def forward(
    model: MixModelT, Xs: List[Floats3d], is_train: bool
) -> Tuple[Floats3d, Callable[[Floats3d], List[Floats3d]]]:
    n: int = model.attrs["n_layers"]
    start: int = model.attrs["layer_start"]
    empty = no_layers(model, Xs)
    if empty is not None:
        return empty
    shape, dtype = check_layers(model.name, Xs, n_layers=n)
    check_initialized(model, ("weights",), n)
    ops, xp = model.ops, model.ops.xp
    weights = model.get_param("weights")
    v = weights.astype("float64")
    a = xp.logaddexp(0.0, v)  # softplus, stable for large |v|
    total = a.sum()
    clamped = bool(total < MIN_DENOMINATOR)
    denom = MIN_DENOMINATOR if clamped else total
    coefs64 = a / denom
    coefs = coefs64.astype(acc_dtype(dtype))
    used = list(range(start, n))
    Y = mix_forward(ops, Xs, used, coefs)

    def backprop(dY: Floats3d) -> List[Floats3d]:
        check_grad(model.name, dY, shape, dtype)
        dXs, dots = mix_backward(ops, Xs, used, coefs, dY)
        # c_j = a_j / D with D = sum a: d a_k = (dot_k - [not clamped] sum_j c_j dot_j) / D
        d_a = dots if clamped else dots - (coefs64 * dots).sum()
        # d softplus(v) / dv = sigmoid(v) = exp(-softplus(-v)); divide it by D first (it
        # is <= about softplus(v) <= D for very negative v), so nothing overflows
        d_v = d_a * (xp.exp(-xp.logaddexp(0.0, -v)) / denom)
        model.inc_grad("weights", d_v.astype(weights.dtype))
        return dXs

    return Y, backprop


def init(
    model: MixModelT, X: Optional[List[Floats3d]] = None, Y: Optional[Floats3d] = None
) -> None:
    n: int = model.attrs["n_layers"]
    start: int = model.attrs["layer_start"]
    init_width(model, X, n_layers=n)
    model.set_param("weights", model.ops.asarray1f([SOFTPLUS_INV_1] * (n - start)))
