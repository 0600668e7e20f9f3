from typing import Any, Callable, List, Optional, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..backends.pooling import acc_dtype
from ..types import PoolingModelT
from ..util import LayerInputError, check_grad
from ._pooling import backend, long_segments, ragged_input, row_scale, segment_bounds

#: A learned ``p`` is used as ``max(p, MIN_P)`` (and gets no gradient below it).
MIN_P = 1e-3


@registry.layers("thinc_trf_layers.reduce_gem.v1")
def reduce_gem(p: float = 3.0, *, eps: float = 1e-6, learn_p: bool = False) -> PoolingModelT:
    """Generalized mean (GeM) pooling of every row of a ``Ragged``:
    ``Y = mean(max(x, eps) ** p) ** (1 / p)``, (rows x wordpieces, width) to (rows, width).

    ``p = 1`` is the mean of the clamped values; large ``p`` approaches the max. Values
    at or below ``eps`` are clamped (and get no gradient), so the output is positive for
    a non-empty row. With ``learn_p=True``, ``p`` is a parameter (``"p"``, shape (1,),
    starting at the given value, used as ``max(p, 1e-3)``) trained with the rest of the
    model; otherwise it is fixed. A row of length zero gives zeros with a zero gradient;
    NaN propagates; float16 is computed in float32.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise LayerInputError(f"reduce_gem: expected a positive number p, got {p!r}.")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise LayerInputError(f"reduce_gem: expected a positive number eps, got {eps!r}.")
    if not isinstance(learn_p, bool):
        raise LayerInputError(f"reduce_gem: expected learn_p to be True or False, got {learn_p!r}.")
    attrs = {"p": float(p), "eps": float(eps), "learn_p": learn_p}
    if learn_p:
        return Model(f"reduce_gem(p={p:g}, learned)", forward, init=init, params={"p": None}, attrs=attrs)
    return Model(f"reduce_gem(p={p:g})", forward, attrs=attrs)


def init(model: Model[Ragged, Floats2d], X: Optional[Ragged] = None, Y: Optional[Floats2d] = None) -> None:
    if X is not None:
        ragged_input(model, X)
    p = model.ops.alloc1f(1)
    p[0] = model.attrs["p"]
    model.set_param("p", p)


def forward(model: Model[Ragged, Floats2d], X: Ragged, is_train: bool) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    data, lengths = ragged_input(model, X)
    learn_p: bool = model.attrs["learn_p"]
    p: float = max(float(model.get_param("p")[0]), MIN_P) if learn_p else model.attrs["p"]
    p_clamped = learn_p and float(model.get_param("p")[0]) < MIN_P
    eps: float = model.attrs["eps"]
    be = backend(model)
    xp = model.ops.xp
    dtype = data.dtype
    acc = acc_dtype(dtype)
    n_rows, width = (int(s) for s in data.shape)
    n_out = int(lengths.shape[0])
    if not learn_p:
        sums = be.gem_sum(data, lengths, p, eps)  # compiled: one pass, no temporaries
        if sums is not None:
            return _forward_kernel(model, data, lengths, sums, p, eps)
    Xc = xp.maximum(data.astype(acc, copy=False), eps)  # a new array; NaN stays NaN
    P1 = _power(xp, Xc, p - 1)  # x ** (p - 1): the gradient's factor; x ** p = P1 * x
    per_row = long_segments(n_rows, n_out)
    bounds = segment_bounds(lengths) if per_row else []
    scale = row_scale(model, "mean", lengths, dtype)
    assert scale is not None
    if per_row:  # one pass over each row's data, no (rows, width) temporary
        sums = xp.zeros((n_out, width), dtype=acc)
        for b, (start, end) in enumerate(bounds):
            if end > start:
                sums[b] = xp.einsum("ij,ij->j", P1[start:end], Xc[start:end])
    else:
        sums = be.segment_sum(P1 * Xc, lengths)
    means = sums * scale[:, None]
    Yacc = means ** (1.0 / p)
    Y = Yacc.astype(dtype)
    # The backward writes the gradient into P1's memory (the one large array it keeps;
    # fresh memory costs page faults): a second call recomputes P1 from the data.
    kept: List[Any] = [P1]
    clamped = Xc if learn_p else None  # dY/dp needs max(x, eps); nothing else does
    del Xc

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, width), dtype)
        dYa = dY.astype(acc)
        positive = means > 0
        safe = xp.where(positive, means, 1)
        Z: Any = clamped
        if Z is None and not kept:
            Z = xp.maximum(data.astype(acc, copy=False), eps)
        G: Any = kept.pop() if kept else _power(xp, Z, p - 1)
        if G is Z:  # p = 2: x ** (p - 1) is max(x, eps) itself, which dY/dp still reads
            G = G.copy()
        if learn_p and not p_clamped:
            # dY/dp = Y * (-ln(m) / p**2 + mean(z**p * ln z) / (p * m)), z = max(x, eps)
            dm_dp = be.segment_sum(G * Z * xp.log(Z), lengths) * scale[:, None]
            dy_dp = xp.where(positive, Yacc * (-xp.log(safe) / p**2 + dm_dp / (p * safe)), 0)
            model.inc_grad("p", (dYa * dy_dp).sum().reshape(1).astype(model.get_param("p").dtype))
        # dY/dx = mean**(1/p - 1) * x**(p - 1) / n  for x > eps; the clamp has no gradient
        d = dYa * xp.where(positive, safe ** (1.0 / p - 1.0), 0) * scale[:, None]
        G *= data > eps  # x ** (p - 1) where x > eps, else 0 (NaN stays NaN)
        if per_row:
            for b, (start, end) in enumerate(bounds):
                if end > start:
                    G[start:end] *= d[b]
        else:
            G *= be.repeat_rows(d, lengths, n_rows)
        return Ragged(G.astype(dtype, copy=False), lengths)

    return Y, backprop


def _forward_kernel(
    model: Model[Ragged, Floats2d], data: Any, lengths: Any, sums: Any, p: float, eps: float
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    """The rest of the forward (fixed p) after the backend's ``gem_sum``: the backward
    recomputes ``max(x, eps) ** (p - 1)`` from the data in the same pass that writes the
    gradient, so that nothing of the data's size is kept."""
    xp = model.ops.xp
    dtype = data.dtype
    n_out, width = (int(s) for s in sums.shape)
    scale = row_scale(model, "mean", lengths, dtype)
    assert scale is not None
    means = sums * scale[:, None]
    Y = (means ** (1.0 / p)).astype(dtype, copy=False)

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, (n_out, width), dtype)
        positive = means > 0
        safe = xp.where(positive, means, 1)
        # dY/dx = mean**(1/p - 1) * x**(p - 1) / n  for x > eps; the clamp has no gradient
        d = dY.astype(means.dtype) * xp.where(positive, safe ** (1.0 / p - 1.0), 0) * scale[:, None]
        return Ragged(backend(model).gem_grad(data, lengths, p, eps, d), lengths)

    return Y, backprop


def _power(xp: Any, X: Any, p: float) -> Any:
    """``X ** p``, by repeated multiplication for small whole ``p`` (much faster than pow);
    may be ``X`` itself (p = 1): do not write into the result."""
    if p == 0:
        return xp.ones_like(X)
    if p == 1:
        return X
    if float(p).is_integer() and 2 <= p <= 8:
        out = X * X
        for _ in range(int(p) - 2):
            out *= X
        return out
    return xp.power(X, p)
