from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d

from ..errors import LayerGradientError, describe
from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ._pooling import pool_rows, pooled_reader
from .reduce_mean import reduce_mean
from .trf2tokens import trf2tokens

InT = Sequence[TransformerOutputT]
OutT = List[Floats2d]


@registry.layers("thinc_trf_layers.token_pool.v1")
def token_pool(
    pooling: Optional[PoolingModelT] = None,
    *,
    mix: Optional[MixModelT] = None,
    index: int = 0,
    grad_factor: float = 1.0,
    on_unreached: str = "warn",
) -> Model[Sequence[TransformerOutputT], List[Floats2d]]:
    """One (tokens, width) array per Doc: ``pooling`` (default ``reduce_mean()``) over the
    rows of ``trf2tokens(index, ...)``. See docs/tokens_and_spans.md."""
    pool = reduce_mean() if pooling is None else pooling
    return pooled_reader(
        "token_pool", trf2tokens, forward, pool, index, mix, grad_factor, on_unreached
    )


def forward(model: Model[InT, OutT], Xs: InT, is_train: bool) -> Tuple[OutT, Callable[[OutT], InT]]:
    R, Y, bp_pool = pool_rows(model, Xs, is_train)
    Ys = model.ops.unflatten(Y, R.doc_rows)
    shapes = [tuple(y.shape) for y in Ys]

    def backprop(dYs: OutT) -> InT:
        if (
            not isinstance(dYs, (list, tuple))
            or [tuple(getattr(d, "shape", ())) for d in dYs] != shapes
        ):
            raise LayerGradientError(
                f"{model.name}: backprop expected {len(shapes)} gradients, one per Doc, of shapes "
                f"{shapes}, got {describe(dYs)}."
            )
        xp = model.ops.xp
        dY: Any = xp.concatenate(dYs) if dYs else xp.zeros((0, int(Y.shape[1])), dtype=Y.dtype)
        out: InT = bp_pool(dY.astype(Y.dtype, copy=False))
        return out

    return Ys, backprop
