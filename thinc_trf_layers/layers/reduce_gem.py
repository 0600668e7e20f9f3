from typing import Any, Callable, Optional, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.reduce import acc_dtype, backprop_reduce_gem, reduce_sum
from ..backends.reduce import reduce_gem as gem_sums
from ..errors import LayerInputError, check_grad
from ..types import PoolingModelT
from ._pooling import check_rows

#: A learned ``p`` is used as ``max(p, MIN_P)`` (and gets no gradient below it).
MIN_P = 1e-3


@registry.layers("thinc_trf_layers.reduce_gem.v1")
def reduce_gem(p: float = 3.0, *, eps: float = 1e-6, learn_p: bool = False) -> PoolingModelT:
    """Generalized mean (GeM) pooling of every row of a ``Ragged``: ``mean(max(x, eps) ** p)
    ** (1 / p)``, (rows, width). See docs/pooling.md#reduce_gemp30--eps1e-6-learn_pfalse."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise LayerInputError(f"reduce_gem: expected a positive number p, got {p!r}.")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise LayerInputError(f"reduce_gem: expected a positive number eps, got {eps!r}.")
    if not isinstance(learn_p, bool):
        raise LayerInputError(f"reduce_gem: expected learn_p to be True or False, got {learn_p!r}.")
    attrs = {"p": float(p), "eps": float(eps), "learn_p": learn_p}
    if learn_p:
        return Model(
            f"reduce_gem(p={p:g}, learned)", forward, init=init, params={"p": None}, attrs=attrs
        )
    return Model(f"reduce_gem(p={p:g})", forward, attrs=attrs)


def init(
    model: Model[Ragged, Floats2d], X: Optional[Ragged] = None, Y: Optional[Floats2d] = None
) -> None:
    if X is not None:
        check_rows(model, X)
    model.set_param("p", model.ops.asarray1f([model.attrs["p"]]))


def forward(
    model: Model[Ragged, Floats2d], X: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    lengths, width = check_rows(model, X)
    ops, xp = model.ops, model.ops.xp
    learn_p: bool = model.attrs["learn_p"]
    p_value = float(model.get_param("p")[0]) if learn_p else model.attrs["p"]
    p, eps = max(p_value, MIN_P), model.attrs["eps"]
    R = Ragged(X.dataXd, lengths)
    dtype = R.dataXd.dtype
    n = xp.maximum(xp.asarray(lengths, dtype=acc_dtype(dtype)), 1)[:, None]
    means = gem_sums(ops, R, p, eps) / n
    Yacc = means ** (1.0 / p)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (len(lengths), width), dtype)
        positive = means > 0
        safe = xp.where(positive, means, 1)
        dYa = dY.astype(means.dtype)
        if learn_p and p_value >= MIN_P:
            # dY/dp = Y * (-ln(m) / p**2 + mean(z**p * ln z) / (p * m)), z = max(x, eps)
            Z = xp.maximum(R.dataXd.astype(means.dtype), eps)
            dm_dp = reduce_sum(ops, Ragged(Z**p * xp.log(Z), lengths)) / n
            dy_dp = xp.where(positive, Yacc * (-xp.log(safe) / p**2 + dm_dp / (p * safe)), 0)
            model.inc_grad("p", (dYa * dy_dp).sum().reshape(1).astype(model.get_param("p").dtype))
        # dY/dx = mean**(1/p - 1) * x**(p - 1) / n for x > eps; the clamp has no gradient
        d = dYa * xp.where(positive, safe ** (1.0 / p - 1.0), 0) / n
        return Ragged(backprop_reduce_gem(ops, d, R, p, eps).astype(dtype, copy=False), lengths)

    return Yacc.astype(dtype, copy=False), backprop
