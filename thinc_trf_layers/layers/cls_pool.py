from typing import Any, List, Sequence

from thinc.api import Model, chain, registry
from thinc.types import Floats2d

from ..errors import check_int
from ..types import TransformerOutputT
from ._pooling import init_pooled
from .pick_token import pick_token
from .reduce_mean import reduce_mean
from .trf2ragged import trf2ragged


@registry.layers("thinc_trf_layers.cls_pool.v1")
def cls_pool(
    *, index: int = 0, token_index: int = 0, grad_factor: float = 1.0, on_unreached: str = "warn"
) -> Model[Sequence[TransformerOutputT], Floats2d]:
    """Each Doc's [CLS] vector averaged over its spans, (docs, width): ``chain(trf2ragged(index,
    class_token=True), pick_token(token_index), reduce_mean())``. See
    docs/transformer_outputs.md#cls_pool-index0-token_index0-grad_factor10."""
    name = f"cls_pool({index}, {token_index})"
    check_int(name, "token_index", token_index)
    layers: List[Model[Any, Any]] = [
        trf2ragged(index, grad_factor=grad_factor, on_unreached=on_unreached, class_token=True),
        pick_token(token_index),
        reduce_mean(),
    ]
    for layer in layers:
        layer.name = f"{name}.{layer.name}"  # their errors name the layer the user built
    model: Model[Sequence[TransformerOutputT], Floats2d] = chain(*layers)
    model.name = name
    model.init = init_pooled
    return model
