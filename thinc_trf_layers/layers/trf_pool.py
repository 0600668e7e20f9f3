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
    """One vector per Doc: ``pooling`` over the real wordpieces of tensor ``index`` (or of
    a ``mix`` of every hidden layer): ``chain(trf2ragged(index, ...), pooling)``.

    Every Doc becomes one row of a ``Ragged`` (the real wordpieces of each of its spans,
    span after span; padding never counts), which ``pooling`` reduces; our poolings read
    the rows where they lie (see ``trf2ragged``). For a Doc that fits in one span,
    ``trf_pool(reduce_mean())`` is the mean pooling of sentence-transformers (before its
    L2 normalisation, for models that end with one).

    pooling: any ``Model[Ragged, Floats2d]`` (``reduce_mean()``, ``reduce_max()``,
        ``attention_pool(...)``...). It decides what an empty Doc gives.
    index, mix, grad_factor, on_unreached: as in ``trf2ragged``.
    """
    check_pooling("trf_pool", pooling)
    check_reader_args("trf_pool", index, mix, grad_factor, on_unreached)
    name = f"trf_pool({pooling.name})"
    read = trf2ragged(index, mix=mix, grad_factor=grad_factor, on_unreached=on_unreached)
    read.name = f"{name}.{read.name}"  # its errors name the layer the user built
    model: Model[Sequence[TransformerOutputT], Floats2d] = chain(read, pooling)
    model.name = name
    model.init = init_pooled
    return model
