from typing import Callable, List, Optional, Tuple

from thinc.api import Model, registry
from thinc.types import Floats3d

from ..backends.mix import mix_backward, mix_forward
from ..backends.reduce import acc_dtype
from ..errors import LayerInputError, check_grad, check_initialized, check_layers
from ..types import MixModelT
from ._mixing import init_width, no_layers


@registry.layers("thinc_trf_layers.scalar_mix.v1")
def scalar_mix(n_layers: Optional[int] = None, *, dropout: float = 0.0) -> MixModelT:
    """ELMo's scalar mix of one (spans, wordpieces, width) array per hidden layer:
    ``Y = gamma * sum_i softmax(weights)_i * X_i``. See docs/mixing.md."""
    if n_layers is not None and (
        isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1
    ):
        raise LayerInputError(
            f"scalar_mix: expected n_layers to be null or an int >= 1, got {n_layers!r}."
        )
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise LayerInputError(
            f"scalar_mix({n_layers}): expected dropout to be a float in [0, 1), got {dropout!r}."
        )
    return Model(
        "scalar_mix" if n_layers is None else f"scalar_mix({n_layers})",
        forward,
        init=init,
        dims={"nI": None, "nO": None},
        params={"weights": None, "gamma": None},
        attrs={"n_layers": n_layers, "layer_dropout": float(dropout), "infer_layers": False},
    )


def forward(
    model: MixModelT, Xs: List[Floats3d], is_train: bool
) -> Tuple[Floats3d, Callable[[Floats3d], List[Floats3d]]]:
    rate: float = model.attrs["layer_dropout"]
    empty = no_layers(model, Xs)
    if empty is not None:
        return empty
    if model.attrs["n_layers"] is None and model.attrs["infer_layers"]:
        # initialized without a sample or a layer count: this first batch gives it
        init_width(model, Xs)
        _allocate(model, len(Xs))
    n: Optional[int] = model.attrs["n_layers"]
    if n is None:
        raise ValueError(
            f"{model.name}: the layer is used before it was initialized; expected "
            "model.initialize() to have been called first, on this layer or on the model it is "
            "part of (without a sample and without n_layers, the first batch then gives the layer "
            "count)."
        )
    shape, dtype = check_layers(model.name, Xs, n_layers=n)
    check_initialized(model, ("weights", "gamma"), n)
    ops, xp = model.ops, model.ops.xp
    weights = model.get_param("weights")
    gamma = model.get_param("gamma")
    logits = weights.astype("float64")
    used = list(range(n))
    if is_train and rate > 0.0:
        draws = xp.random.uniform(0.0, 1.0, (n,))
        keep = draws >= rate
        if not bool(keep.any()):
            keep[int(draws.argmax())] = True
        logits = xp.where(keep, logits, -xp.inf)
        used = [i for i, kept in enumerate(keep.tolist()) if kept]
    shifted = xp.exp(logits - logits.max())
    probs = shifted / shifted.sum()
    g = gamma.astype("float64")[0]
    coefs = (g * probs[xp.asarray(used)]).astype(acc_dtype(dtype))
    Y = mix_forward(ops, Xs, used, coefs)

    def backprop(dY: Floats3d) -> List[Floats3d]:
        check_grad(model.name, dY, shape, dtype)
        dXs, dots = mix_backward(ops, Xs, used, coefs, dY)
        # d loss / d probs[i] = gamma * dot(dY, X_i) for used layers, 0 for dropped ones
        dots_all = xp.zeros((n,), dtype="float64")
        dots_all[xp.asarray(used)] = dots
        d_gamma = (probs * dots_all).sum()
        d_probs = g * dots_all
        # softmax: d w_j = p_j * (d p_j - sum_i p_i d p_i); dropped layers have p_j = 0
        d_weights = probs * (d_probs - (probs * d_probs).sum())
        model.inc_grad("weights", d_weights.astype(weights.dtype))
        model.inc_grad("gamma", xp.reshape(d_gamma, (1,)).astype(gamma.dtype))
        return dXs

    return Y, backprop


def init(
    model: MixModelT, X: Optional[List[Floats3d]] = None, Y: Optional[Floats3d] = None
) -> None:
    n: Optional[int] = model.attrs["n_layers"]
    init_width(model, X, n_layers=n)
    if X is None and n is None:
        model.attrs["infer_layers"] = True  # the first batch gives the layer count
        return
    _allocate(model, len(X) if X is not None else n)  # type: ignore[arg-type]


def _allocate(model: MixModelT, n: int) -> None:
    model.attrs["n_layers"] = n
    model.attrs["infer_layers"] = False
    model.set_param("weights", model.ops.alloc1f(n))
    model.set_param("gamma", model.ops.asarray1f([1.0]))
