from typing import Any, Callable, List, Optional, Sequence, Tuple, cast

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..trf_data import (
    SPACY_TRANSFORMERS,
    DocTensor,
    batch_width,
    check_batch,
    check_grad_factor,
    check_int,
    read_tensor,
    scale,
    warn_unreached,
)
from ..types import PoolingModelT, TransformerOutputT
from ..util import LayerInputError, check_grad

# Sequence, not List: List is invariant, so a List[TransformerOutput] (what
# TransformerOutput.from_hf returns) would not be accepted as a List of the Union.
InT = Sequence[TransformerOutputT]


@registry.layers("thinc_trf_layers.trf_pool.v1")
def trf_pool(
    pooling: PoolingModelT, *, index: int = 0, grad_factor: float = 1.0
) -> Model[Sequence[TransformerOutputT], Floats2d]:
    """One vector per Doc: ``pooling`` over the real wordpieces of tensor ``index``.

    Every Doc becomes one row of a ``Ragged``: the real (unpadded) wordpieces of each of
    its spans, span after span; padding never counts. When a long Doc was split into
    overlapping spans (spacy-transformers' strided spans), every span's real wordpieces
    are pooled, so wordpieces in the overlap count once per span that holds them, and so
    do each span's [CLS] and [SEP]. (spacy-curated-transformers merges overlapping spans
    itself: its Docs are one sequence.) For a Doc that fits in one span,
    ``trf_pool(reduce_mean())`` is the mean pooling of sentence-transformers.

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
    factor = check_grad_factor(name, grad_factor)
    return Model(
        name,
        forward,
        init=init,
        layers=[pooling],
        dims={"nO": pooling.maybe_get_dim("nO")},
        attrs={"index": index, "grad_factor": factor},
    )


def _gather(model: Model[InT, Floats2d], Xs: InT) -> Tuple[Ragged, List[DocTensor]]:
    """The real wordpieces of every Doc, as one Ragged row per Doc."""
    index: int = model.attrs["index"]
    kinds = check_batch(model.name, Xs)
    docs = [read_tensor(model.name, model.ops, X, index, kind) for X, kind in zip(Xs, kinds)]
    width, dtype = batch_width(docs)
    parts = []
    totals = []
    for doc in docs:
        total = 0
        if doc.tensor is not None:
            for s, n in enumerate(doc.lengths):
                if n:
                    parts.append(doc.tensor[s, :n])
                    total += n
        totals.append(total)
    xp = model.ops.xp
    if len(parts) == 1:
        data = xp.ascontiguousarray(parts[0])
    elif parts:
        data = xp.concatenate(parts, axis=0)
    else:
        data = model.ops.alloc2f(0, width, dtype=dtype)
    return Ragged(data, model.ops.asarray1i(totals)), docs


def forward(
    model: Model[InT, Floats2d], Xs: InT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], InT]]:
    pooling: PoolingModelT = model.layers[0]
    grad_factor: float = model.attrs["grad_factor"]
    R, docs = _gather(model, Xs)
    Y, bp_pooling = pooling(R, is_train)
    data_shape = tuple(R.dataXd.shape)
    data_dtype = R.dataXd.dtype

    def backprop(dY: Floats2d) -> InT:
        dR = bp_pooling(dY)
        d_data: Any = dR.dataXd if isinstance(dR, Ragged) else dR
        if data_shape[0] == 0 and getattr(d_data, "size", None) == 0:
            # No wordpiece in the batch: some poolings (Thinc's) lose the width of an
            # empty Ragged; there is nothing to scatter either way.
            d_data = model.ops.alloc(data_shape, dtype=data_dtype)
        check_grad(f"{model.name} (gradient from {pooling.name})", d_data, data_shape, data_dtype)
        if grad_factor != 0.0 and any(not doc.reaches for doc in docs):
            index = model.attrs["index"]
            warn_unreached(model.name, model.id, index)
        dXs: List[Any] = []
        start = 0
        for doc in docs:
            T = doc.tensor
            dT: Optional[Any] = None
            if T is not None and grad_factor != 0.0 and doc.reaches:
                n_spans, n_pieces = int(T.shape[0]), int(T.shape[1])
                if n_spans == 1 and doc.lengths[0] == n_pieces:
                    # no padding: the gradient is a view of the pooling's
                    d = scale(model.ops, d_data[start : start + n_pieces], grad_factor)
                    if not getattr(getattr(d, "flags", None), "writeable", True):
                        d = model.ops.xp.array(d)  # upstreams add into our gradients in place
                    dT = model.ops.xp.reshape(d, T.shape)
                else:
                    dT = model.ops.alloc(tuple(T.shape), dtype=T.dtype)
                    at = start
                    for s, n in enumerate(doc.lengths):
                        if n:
                            dT[s, :n] = d_data[at : at + n]
                            at += n
                    if grad_factor != 1.0:
                        dT *= grad_factor
            start += sum(doc.lengths) if T is not None else 0
            d_doc = doc.to_grad(dT)
            if d_doc is not None or doc.kind != SPACY_TRANSFORMERS:
                dXs.append(d_doc)
        return dXs

    return Y, backprop


def init(model: Model[InT, Floats2d], X: Optional[InT] = None, Y: Optional[Floats2d] = None) -> None:
    pooling: PoolingModelT = model.layers[0]
    R = _gather(model, X)[0] if X is not None else None
    if R is not None and int(cast(Any, R.dataXd).shape[1]) == 0:
        R = None  # an empty batch says nothing about the width
    pooling.initialize(X=R, Y=Y)
    if pooling.has_dim("nO") and model.has_dim("nO") is None:
        model.set_dim("nO", pooling.get_dim("nO"))
