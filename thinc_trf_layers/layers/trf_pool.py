from typing import Optional, Sequence

from thinc.api import Model, chain, registry
from thinc.types import Floats2d

from ..reading import check_reader_args
from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ._pooling import check_pooling, init_pooled
from .trf2ragged import trf2ragged


@registry.layers("thinc_trf_layers.trf_pool.v1")
def trf_pool(
    pooling: PoolingModelT,
    *,
    index: int = 0,
    mix: Optional[MixModelT] = None,
    grad_factor: float = 1.0,
    on_unreached: str = "warn",
) -> Model[Sequence[TransformerOutputT], Floats2d]:
    """One vector per Doc: ``chain(trf2ragged(index, ...), pooling)``, ``pooling`` over the
    real wordpieces of tensor ``index`` (or of a ``mix`` of every hidden layer). See
    docs/transformer_outputs.md#trf_poolpooling--index0-grad_factor10."""
    check_pooling("trf_pool", pooling)
    check_reader_args("trf_pool", index, mix, grad_factor, on_unreached)
    name = f"trf_pool({pooling.name})"
    read = trf2ragged(index, mix=mix, grad_factor=grad_factor, on_unreached=on_unreached)
    read.name = f"{name}.{read.name}"  # its errors name the layer the user built
    model: Model[Sequence[TransformerOutputT], Floats2d] = chain(read, pooling)
    model.name = name
    model.init = init_pooled
    return model
