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
    """Each Doc's [CLS] vector, averaged over its spans: (docs, width).

    ``chain(trf2ragged(index, class_token=True), pick_token(token_index), reduce_mean())``:
    ``token_index`` counts within each span's *real* wordpieces (0 is [CLS], -1 the last
    real wordpiece, [SEP] for BERT), whatever the padding. Spans with no wordpieces are
    left out of the mean; a Doc without any span gives a row of zeros. The mean is taken
    in at least float32; the output keeps the input's dtype. Backprop gives one gradient
    of the picked tensor's shape per Doc: zeros but at the picks.

    spacy-curated-transformers strips the BOS/[CLS] piece from its outputs, so its
    containers are refused (use ``trf_pool(reduce_first())`` for the first wordpiece).
    grad_factor, on_unreached: as in ``trf2ragged``.
    """
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
