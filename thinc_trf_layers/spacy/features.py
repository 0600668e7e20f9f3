"""The feature part of the textcat architectures: transformer output per Doc to one row per Doc.

Each feature model checks in its forward, when training with ``grad_factor != 0``, that
the upstream can carry the gradient of what it uses into the transformer (the Docs'
containers say so), and refuses before anything is updated: the layer that reads the
transformer's output has ``attrs["require_reach"]`` set to the architecture's name
(``containers.base.check_reach``), so the models keep the structure they had (a saved
pipeline loads). The upstream model is not known when a config is resolved: spacy-transformers'
``TransformerModel.v3`` trains through ``last_hidden_state`` only, ours
(``thinc_trf_layers.TransformerModel.v1``) through every tensor.
"""
from typing import Callable, Sequence, Tuple

from thinc.api import Model
from thinc.types import Floats2d

from ..layers.cls_pool import cls_pool
from ..layers.trf_pool import trf_pool
from ..layers._doc_arrays import batch_width, mix_docs, read_docs, refuse_unreached, to_containers
from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ..util import check_grad
from ..wordpieces import Wordpieces

#: One transformer output per Doc (spacy-transformers ``TransformerData``,
#: spacy-curated-transformers ``DocTransformerOutput``, ...): see ``containers``.
TrfBatch = Sequence[TransformerOutputT]


def trf_cls(*, tensor_index: int, token_index: int, grad_factor: float, owner: str = "") -> Model[TrfBatch, Floats2d]:
    """The [CLS] (``token_index``) vector of every span, averaged over each Doc's spans."""
    model = cls_pool(index=tensor_index, token_index=token_index, grad_factor=grad_factor)
    model.attrs["require_reach"] = owner or True
    return model


def trf_pooled(
    pooling: PoolingModelT, *, tensor_index: int, grad_factor: float, owner: str = ""
) -> Model[TrfBatch, Floats2d]:
    """``pooling`` over the real wordpieces of tensor ``tensor_index`` of each Doc."""
    model = trf_pool(pooling, index=tensor_index, grad_factor=grad_factor)
    model.layers[0].attrs["require_reach"] = owner or True  # trf2ragged: what reads the tensor
    return model


def mixed_pool(
    mix: MixModelT, pooling: PoolingModelT, *, grad_factor: float, owner: str = ""
) -> Model[TrfBatch, Floats2d]:
    """Mix every hidden layer of each Doc with ``mix``, then ``pooling`` over its real wordpieces.

    The mix runs once per Doc on that Doc's layers (embeddings first), each (spans,
    wordpieces, width); the real wordpieces of the mixed array (padding dropped) of all
    spans of a Doc are one row of the Ragged that ``pooling`` reduces. Backprop scatters
    the pooling's gradient into the real positions (zeros at padding), through the mix,
    into the layers, scaled by ``grad_factor``; layers the upstream cannot train get
    none (see ``containers``).
    """
    return Model(
        f"mixed_pool({mix.name}, {pooling.name})",
        _mixed_pool_forward,
        layers=[mix, pooling],
        attrs={"grad_factor": float(grad_factor), "require_reach": owner or True},
        dims={"nO": None},
    )


def _mixed_pool_forward(
    model: Model[TrfBatch, Floats2d], Xs: TrfBatch, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], TrfBatch]]:
    mix: MixModelT = model.layers[0]
    pooling: PoolingModelT = model.layers[1]
    grad_factor: float = model.attrs["grad_factor"]
    # a listener's placeholder (spaCy initializing the pipeline) is not mixed: its row is
    # empty, so the pooling gives zeros
    docs = read_docs(model, Xs, is_train, mix, 0)
    refuse_unreached(model, docs, mix, 0, grad_factor, is_train)
    mixed, mix_callbacks = mix_docs(model, docs, mix, is_train)
    # No Doc has any wordpiece: all rows are empty; keep the width if we can know it.
    width, dtype = batch_width(model, mixed, model.attrs.get("mix_width") or 0)
    lengths = [doc.layout.lengths if M is not None else [] for doc, M in zip(docs, mixed)]
    R = Wordpieces(model.ops, mixed, lengths, width=width, dtype=dtype)
    Y, bp_pool = pooling(R, is_train)
    out_shape = tuple(Y.shape)
    out_dtype = Y.dtype

    def backprop(dY: Floats2d) -> TrfBatch:
        check_grad(model.name, dY, out_shape, out_dtype)
        d_mixed = R.padded_grads(model.name, bp_pool(dY))
        return to_containers(model, docs, d_mixed, mix_callbacks, mix, 0, grad_factor)

    return Y, backprop


__all__ = ["trf_cls", "trf_pooled", "mixed_pool", "TrfBatch"]
