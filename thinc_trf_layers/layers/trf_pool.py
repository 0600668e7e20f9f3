from typing import Any, Callable, Optional, Sequence, Tuple, cast

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..containers.base import check_grad_factor, check_int
from ..types import PoolingModelT, TransformerOutputT
from ..util import LayerInputError
from ..wordpieces import Wordpieces
from .trf2ragged import trf2ragged

# Sequence, not List: List is invariant, so a List[TransformerOutput] (what
# TransformerOutput.from_hf returns) would not be accepted as a List of the Union.
InT = Sequence[TransformerOutputT]


@registry.layers("thinc_trf_layers.trf_pool.v1")
def trf_pool(
    pooling: PoolingModelT, *, index: int = 0, grad_factor: float = 1.0
) -> Model[Sequence[TransformerOutputT], Floats2d]:
    """One vector per Doc: ``pooling`` over the real wordpieces of tensor ``index``.

    ``chain(trf2ragged(index, grad_factor=grad_factor), pooling)``, under one name:
    every Doc becomes one row of a ``Ragged`` (the real wordpieces of each of its
    spans, span after span; padding never counts), which ``pooling`` reduces. Our
    poolings run on the padded tensors where they lie (see ``trf2ragged``). For a Doc
    that fits in one span, ``trf_pool(reduce_mean())`` is the mean pooling of
    sentence-transformers (before its L2 normalisation, for models that end with one).

    pooling: any ``Model[Ragged, Floats2d]`` (``reduce_mean()``, ``reduce_max()``,
        ``attention_pool(...)``...). It decides what an empty Doc gives.
    index, grad_factor: as in ``trf2tensor``.
    """
    if not isinstance(pooling, Model):
        raise LayerInputError(
            f"trf_pool: expected pooling to be a thinc Model[Ragged, Floats2d], got {pooling!r}."
        )
    name = f"trf_pool({pooling.name})"
    check_int(name, "index", index)
    check_grad_factor(name, grad_factor)
    gather = trf2ragged(index, grad_factor=grad_factor)
    gather.name = f"{name}.{gather.name}"  # its errors name the layer the user built
    return Model(
        name,
        forward,
        init=init,
        layers=[gather, pooling],
        dims={"nO": pooling.maybe_get_dim("nO")},
    )


def forward(
    model: Model[InT, Floats2d], Xs: InT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], InT]]:
    gather: Model[InT, Ragged] = model.layers[0]
    pooling: PoolingModelT = model.layers[1]
    R, bp_gather = gather(Xs, is_train)
    Y, bp_pooling = pooling(R, is_train)

    def backprop(dY: Floats2d) -> InT:
        dXs: InT = bp_gather(bp_pooling(dY))
        return dXs

    return Y, backprop


def init(model: Model[InT, Floats2d], X: Optional[InT] = None, Y: Optional[Floats2d] = None) -> None:
    pooling: PoolingModelT = model.layers[1]
    R: Optional[Ragged] = model.layers[0].predict(X) if X is not None else None
    if R is not None and int(cast(Any, R.dataXd).shape[1]) == 0 and not (
        isinstance(R, Wordpieces) and any(T is not None for T in R.blocks)
    ):
        R = None  # an empty batch says nothing about the width (a batch of arrays does)
    pooling.initialize(X=R, Y=Y)
    if pooling.has_dim("nO") and model.has_dim("nO") is None:
        model.set_dim("nO", pooling.get_dim("nO"))
