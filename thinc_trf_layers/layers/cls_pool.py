from typing import Any, Callable, List, Optional, Sequence, Tuple, cast

from thinc.api import Model, registry
from thinc.types import Floats2d

from ..containers.base import check_batch, check_grad_factor, check_int, tensor_gradients
from ..types import TransformerOutputT
from ..util import LayerInputError, check_grad
from ..wordpieces import batch_layout

# Sequence, not List: List is invariant, so a List[TransformerOutput] (what
# TransformerOutput.from_hf returns) would not be accepted as a List of the Union.
InT = Sequence[TransformerOutputT]


@registry.layers("thinc_trf_layers.cls_pool.v1")
def cls_pool(
    *, index: int = 0, token_index: int = 0, grad_factor: float = 1.0
) -> Model[Sequence[TransformerOutputT], Floats2d]:
    """Each Doc's [CLS] vector, averaged over its spans: (docs, width).

    The one-call form of ``chain(trf2tensor(index), map_list(select_token(token_index)),
    list2ragged(), reduce_mean())``. ``token_index`` counts within each span's *real*
    wordpieces: 0 is [CLS], -1 the last real wordpiece ([SEP] for BERT), whatever the
    padding. Spans with no wordpieces are left out of the mean; a Doc without any span
    gives a row of zeros. The mean is taken in at least float32; the output keeps the
    input's dtype.

    Backprop allocates one gradient of the picked tensor's shape per Doc (the upstream
    containers want the full tensor) and writes the selected rows into it; nothing else.

    spacy-curated-transformers strips the BOS/[CLS] piece from its outputs, so its
    containers are refused (use ``trf_pool(reduce_first())`` for the first wordpiece).
    """
    name = f"cls_pool({index}, {token_index})"
    check_int(name, "index", index)
    check_int(name, "token_index", token_index)
    factor = check_grad_factor(name, grad_factor)
    return Model(
        name, forward, attrs={"index": index, "token_index": token_index, "grad_factor": factor}
    )


def forward(
    model: Model[InT, Floats2d], Xs: InT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], InT]]:
    index: int = model.attrs["index"]
    token_index: int = model.attrs["token_index"]
    grad_factor: float = model.attrs["grad_factor"]
    adapters = check_batch(model.name, Xs)
    for i, adapter in enumerate(adapters):
        if adapter.no_class_token is not None:
            raise LayerInputError(
                f"{model.name}: item {i} of the batch is a {adapter.name}: {adapter.no_class_token}"
            )
    docs = [a.read_tensor(model.name, model.ops, X, index) for X, a in zip(Xs, adapters)]
    width, dtype = batch_layout(model.name, docs)
    xp = model.ops.xp
    acc: Any = "float64" if xp.dtype(dtype) == xp.dtype("float64") else "float32"
    Y: Any = model.ops.alloc2f(len(docs), width, dtype=acc)
    picks: List[Tuple[Any, Any, int]] = []
    for i, doc in enumerate(docs):
        spans: List[int] = []
        positions: List[int] = []
        for s, n in enumerate(doc.lengths):
            if n == 0:
                continue
            p = token_index if token_index >= 0 else n + token_index
            if not 0 <= p < n:
                raise LayerInputError(
                    f"{model.name}: token index {token_index} is out of range for span {s} of "
                    f"Doc {i}, which has {n} real wordpiece(s); expected an index in [{-n}, {n})."
                )
            spans.append(s)
            positions.append(p)
        if spans and doc.tensor is not None:
            s_idx = model.ops.asarray1i(spans)
            p_idx = model.ops.asarray1i(positions)
            rows: Any = doc.tensor[s_idx, p_idx]
            Y[i] = rows.astype(acc).sum(axis=0) / len(spans)
            picks.append((s_idx, p_idx, len(spans)))
        else:
            picks.append((None, None, 0))
    Yout: Floats2d = Y.astype(dtype, copy=False)
    out_dtype = Yout.dtype
    out_shape = tuple(Yout.shape)

    def backprop(dY: Floats2d) -> InT:
        check_grad(model.name, dY, out_shape, out_dtype)
        grads: List[Optional[Any]] = []
        for i, (doc, (s_idx, p_idx, k)) in enumerate(zip(docs, picks)):
            dT: Optional[Any] = None
            T: Any = doc.tensor
            if T is not None and k and grad_factor != 0.0 and doc.reaches:
                dT = model.ops.alloc(tuple(T.shape), dtype=T.dtype)
                dT[s_idx, p_idx] = (cast(Any, dY)[i].astype(acc) * (grad_factor / k)).astype(T.dtype)
            grads.append(dT)
        # the rows carry grad_factor already: wrap them unscaled (1.0), or say "frozen" (0.0)
        factor = 1.0 if grad_factor else 0.0
        out: List[TransformerOutputT] = tensor_gradients(
            model.name, model.id, index, docs, grads, factor, owned=True
        )
        return out

    return Yout, backprop
