from typing import Callable, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..reading import check_reader_args
from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ._pooling import check_pooling, init_lazy, pool_rows
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
    check_pooling("span_pool", pooling)
    check_reader_args("span_pool", index, mix, grad_factor, on_unreached)
    name = f"span_pool({pooling.name}{', ' + mix.name if mix is not None else ''})"
    read = trf2spans(index, mix=mix, grad_factor=grad_factor, on_unreached=on_unreached)
    read.name = f"{name}.{read.name}"  # its errors name the layer the user built
    return Model(
        name,
        forward,
        init=init_lazy,
        layers=[read, pooling],
        dims={"nI": None, "nO": pooling.maybe_get_dim("nO")},
    )


def forward(
    model: Model[InT, Floats2d], X: InT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], InT]]:
    R, bp_read = model.layers[0](X, is_train)
    Y, bp_pool = pool_rows(model, R, is_train)

    def backprop(dY: Floats2d) -> InT:
        out: InT = bp_read(bp_pool(dY))
        return out

    return Y, backprop
