"""The feature part of the textcat architectures: transformer output per Doc to one row per Doc.

Each feature model checks in its forward, when training with ``grad_factor != 0``, that
the upstream can carry the gradient of what it uses into the transformer (the Docs'
containers say so: ``containers.require_reach``), and refuses before anything is
updated. The upstream model is not known when a config is resolved: spacy-transformers'
``TransformerModel.v3`` trains through ``last_hidden_state`` only, ours
(``thinc_trf_layers.TransformerModel.v1``) through every tensor.
"""
from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model
from thinc.types import Floats2d, Floats3d

from ..layers.cls_pool import cls_pool
from ..layers.trf_pool import trf_pool
from ..containers import DocLayers, read_all_layers, read_tensors, require_reach
from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ..util import LayerInputError, check_grad
from ..wordpieces import Wordpieces

#: One transformer output per Doc (spacy-transformers ``TransformerData``,
#: spacy-curated-transformers ``DocTransformerOutput``, ...): see ``containers``.
TrfBatch = Sequence[TransformerOutputT]


def trf_cls(*, tensor_index: int, token_index: int, grad_factor: float, owner: str = "") -> Model[TrfBatch, Floats2d]:
    """The [CLS] (``token_index``) vector of every span, averaged over each Doc's spans."""
    inner = cls_pool(index=tensor_index, token_index=token_index, grad_factor=grad_factor)
    return _reach_checked(inner, tensor_index, grad_factor, owner)


def trf_pooled(
    pooling: PoolingModelT, *, tensor_index: int, grad_factor: float, owner: str = ""
) -> Model[TrfBatch, Floats2d]:
    """``pooling`` over the real wordpieces of tensor ``tensor_index`` of each Doc."""
    inner = trf_pool(pooling, index=tensor_index, grad_factor=grad_factor)
    return _reach_checked(inner, tensor_index, grad_factor, owner)


def _reach_checked(
    inner: Model[TrfBatch, Floats2d], index: int, grad_factor: float, owner: str
) -> Model[TrfBatch, Floats2d]:
    """``inner`` (which reads tensor ``index``), refusing to train the transformer
    through a tensor whose gradient cannot reach it. ``owner``: the architecture, for
    the message."""
    return Model(
        f"features({inner.name})",
        _reach_checked_forward,
        layers=[inner],
        attrs={"index": index, "grad_factor": float(grad_factor), "owner": owner},
        dims={"nO": None},
    )


def _reach_checked_forward(
    model: Model[TrfBatch, Floats2d], Xs: TrfBatch, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], TrfBatch]]:
    index: int = model.attrs["index"]
    grad_factor: float = model.attrs["grad_factor"]
    inner: Model[TrfBatch, Floats2d] = model.layers[0]
    if is_train and grad_factor != 0.0:
        docs = read_tensors(inner.name, model.ops, Xs, index)
        reaches = all(doc.reaches for doc in docs)
        what = f"tensor_index = {index} with grad_factor = {grad_factor}"
        require_reach(_who(model.attrs["owner"], inner.name), what, reaches)
    return inner(Xs, is_train)


def _who(owner: str, layer: str) -> str:
    return f"{owner} ({layer})" if owner else layer


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
        attrs={"grad_factor": float(grad_factor), "owner": owner},
        dims={"nO": None},
    )


def _mixed_pool_forward(
    model: Model[TrfBatch, Floats2d], Xs: TrfBatch, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], TrfBatch]]:
    mix: MixModelT = model.layers[0]
    pooling: PoolingModelT = model.layers[1]
    grad_factor: float = model.attrs["grad_factor"]
    ops = model.ops
    # The mix's layer count (where it has one) lets the listener's zero placeholder be
    # read as that many zero layers.
    n_layers: Optional[int] = mix.attrs.get("n_layers")
    docs: List[DocLayers] = read_all_layers(model.name, ops, Xs, is_train, n_layers)
    if is_train and grad_factor != 0.0:
        reaches = all(all(doc.reaches) for doc in docs)
        what = f"mix = {mix.name} (every hidden layer) with grad_factor = {grad_factor}"
        require_reach(_who(model.attrs["owner"], model.name), what, reaches)
    mixed: List[Optional[Floats3d]] = []
    mix_callbacks: List[Optional[Callable[[Floats3d], List[Floats3d]]]] = []
    for i, doc in enumerate(docs):
        if not doc.layers or sum(doc.lengths) == 0:
            mixed.append(None)
            mix_callbacks.append(None)
            continue
        M, bp_mix = mix(doc.layers, is_train)
        if getattr(M, "ndim", None) != 3 or tuple(M.shape[:2]) != tuple(doc.layers[0].shape[:2]):
            raise LayerInputError(
                f"{model.name}: the mix {mix.name!r} should return one (spans, wordpieces, width) "
                f"array per Doc, of the layers' shape {tuple(doc.layers[0].shape[:2])} + (width,), "
                f"got shape {getattr(M, 'shape', None)} for Doc {i}."
            )
        mixed.append(M)
        mix_callbacks.append(bp_mix)
    present = [M for M in mixed if M is not None]
    # No Doc has any wordpiece: all rows are empty; keep the width if we can know it.
    width = int(present[0].shape[2]) if present else (model.attrs.get("mix_width") or _known_width(docs))
    dtype = present[0].dtype if present else "float32"
    R = Wordpieces(
        ops, mixed, [doc.lengths if M is not None else [] for doc, M in zip(docs, mixed)], width=width, dtype=dtype
    )
    Y, bp_pool = pooling(R, is_train)
    out_shape = tuple(Y.shape)
    out_dtype = Y.dtype

    def backprop(dY: Floats2d) -> TrfBatch:
        check_grad(model.name, dY, out_shape, out_dtype)
        d_mixed = R.padded_grads(model.name, bp_pool(dY))
        grads: List[Any] = []
        for doc, dM, bp_mix in zip(docs, d_mixed, mix_callbacks):
            if dM is None or bp_mix is None:
                grads.extend(doc.grad_entries(None))
                continue
            d_layers = bp_mix(dM)  # the mix's own weights learn even with a frozen transformer
            if grad_factor == 0.0:
                grads.extend(doc.grad_entries(None))
                continue
            if grad_factor != 1.0:
                d_layers = [d * grad_factor for d in d_layers]
            grads.extend(doc.grad_entries(d_layers))
        return grads

    return Y, backprop


def _known_width(docs: List[DocLayers]) -> int:
    for doc in docs:
        if doc.layers:
            return int(doc.layers[0].shape[2])
    return 0


__all__ = ["trf_cls", "trf_pooled", "mixed_pool", "TrfBatch"]
