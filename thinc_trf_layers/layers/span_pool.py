from typing import Callable, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ._pooling import pool_rows, pooled_reader
from .trf2spans import trf2spans

InT = Tuple[Sequence[TransformerOutputT], Ragged]


@registry.layers("thinc_trf_layers.span_pool.v1")
def span_pool(
    pooling: PoolingModelT,
    *,
    mix: Optional[MixModelT] = None,
    index: int = 0,
    grad_factor: float = 1.0,
    on_unreached: str = "warn",
) -> Model[Tuple[Sequence[TransformerOutputT], Ragged], Floats2d]:
    """One vector per span of tokens, ``(outputs, spans)`` to (spans, width): ``pooling``
    over the rows of ``trf2spans(index, ...)``. See docs/tokens_and_spans.md."""
    return pooled_reader(
        "span_pool", trf2spans, forward, pooling, index, mix, grad_factor, on_unreached
    )


def forward(
    model: Model[InT, Floats2d], X: InT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], InT]]:
    _, Y, backprop = pool_rows(model, X, is_train)
    return Y, backprop
