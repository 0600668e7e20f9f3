"""One array per Doc from a batch of transformer outputs: tensor ``index``, or a mix of
every hidden layer; the backprop from gradients of those arrays to the batch's
gradient containers; and a pooling over groups of their rows. Shared by ``token_pool``
and ``span_pool``.
"""
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model
from thinc.types import Floats2d, Ragged

from ..alignment import Groups, gather

from ..containers import check_batch, read_tensors
from ..containers.base import ST_LIMIT, scale, tensor_gradients, warn_once
from ..types import MixModelT, PoolingModelT
from ..util import LayerInputError, check_grad


@dataclass
class DocArrays:
    #: per Doc its (spans, wordpieces, width) array; None for a Doc with no output or a
    #: listener's placeholder that the mix cannot read yet (its tokens get zero rows)
    arrays: List[Optional[Any]]
    #: per Doc the rows (spans * wordpieces) its container has, for checking alignments
    n_rows: List[int]
    width: int
    dtype: Any
    #: whether every array's gradient can reach the transformer
    reaches: bool
    #: gradients of ``arrays`` (None: none) to the batch's gradient list
    backprop: Callable[[List[Optional[Any]]], List[Any]]
    #: whether ``backprop`` uses the arrays' gradients (not with grad_factor 0 and no mix)
    needs_grads: bool = True


def read_doc_arrays(
    model: Model[Any, Any], Xs: Sequence[Any], is_train: bool, *, mix: Optional[MixModelT], index: int,
    grad_factor: float, width: int,
) -> DocArrays:
    """``width``: the width to give when no Doc has an array (the model's known width).

    A model with ``attrs["require_reach"]`` (the spaCy architectures) refuses to train
    with grad_factor != 0 when the upstream cannot carry a used tensor's gradient into
    the transformer, instead of warning: the error comes before any update."""
    if mix is None:
        docs = _read_tensor(model, Xs, index, grad_factor, width)
    else:
        docs = _read_mixed(model, Xs, is_train, mix, grad_factor, width)
    if is_train and grad_factor != 0.0 and not docs.reaches and model.attrs.get("require_reach"):
        what = f"the mix {mix.name!r} of every hidden layer" if mix is not None else f"tensor {index}"
        raise LayerInputError(
            f"{model.attrs['require_reach']}: grad_factor = {grad_factor} asks to train the transformer "
            f"through {what}, but the upstream transformer can carry the gradient of its "
            "last_hidden_state only (spacy-transformers.TransformerModel.v3). Use "
            "thinc_trf_layers.TransformerModel.v1 as the transformer component's model (it "
            "backpropagates into every hidden layer), or set grad_factor = 0.0 to keep the "
            "transformer frozen for this component."
        )
    return docs


def _read_tensor(model: Model[Any, Any], Xs: Sequence[Any], index: int, grad_factor: float, width: int) -> DocArrays:
    docs = read_tensors(model.name, model.ops, Xs, index)
    present = [doc.tensor for doc in docs if doc.tensor is not None]
    arrays = [doc.tensor for doc in docs]

    def backprop(dAs: List[Optional[Any]]) -> List[Any]:
        return tensor_gradients(model.name, model.id, index, docs, dAs, grad_factor, owned=True)

    return DocArrays(
        arrays,
        [0 if T is None else int(T.shape[0] * T.shape[1]) for T in arrays],
        int(present[0].shape[2]) if present else width,
        present[0].dtype if present else "float32",
        all(doc.reaches for doc in docs),
        backprop,
        grad_factor != 0.0,
    )


def _read_mixed(
    model: Model[Any, Any], Xs: Sequence[Any], is_train: bool, mix: MixModelT, grad_factor: float, width: int
) -> DocArrays:
    ops = model.ops
    n_layers: Optional[int] = mix.attrs.get("n_layers")
    adapters = check_batch(model.name, Xs)
    arrays: List[Optional[Any]] = []
    n_rows: List[int] = []
    entries: List[Callable[[Optional[List[Any]]], List[Any]]] = []
    callbacks: List[Optional[Callable[[Any], List[Any]]]] = []
    reaches = True
    fallback = width  # the width when no Doc has an array: the model's, else a placeholder's
    for i, (X, adapter) in enumerate(zip(Xs, adapters)):
        if adapter.is_placeholder(X):
            # a listener's zeros for a Doc no transformer ran on (spaCy initializing the
            # pipeline): it has no hidden layers to mix (and a mix that takes its layer
            # count from the transformer has none yet); the Doc's tokens get zero rows
            first = adapter.read_tensor(model.name, ops, X, 0)
            T = first.tensor
            arrays.append(None)
            n_rows.append(0 if T is None else int(T.shape[0] * T.shape[1]))
            fallback = fallback or (0 if T is None else int(T.shape[2]))
            entries.append(_no_gradient(first.grad_entries))
            callbacks.append(None)
            continue
        doc = adapter.read_layers(model.name, ops, X, is_train, n_layers)
        entries.append(doc.grad_entries)
        if not doc.layers:
            arrays.append(None)
            n_rows.append(0)
            callbacks.append(None)
            continue
        shape = tuple(doc.layers[0].shape)
        n_rows.append(int(shape[0] * shape[1]))
        reaches = reaches and all(doc.reaches)
        M, bp_mix = mix(doc.layers, is_train)
        if getattr(M, "ndim", None) != 3 or tuple(M.shape[:2]) != shape[:2]:
            raise LayerInputError(
                f"{model.name}: the mix {mix.name!r} should return one (spans, wordpieces, width) array per "
                f"Doc, of the layers' shape {shape[:2]} + (width,), got shape {getattr(M, 'shape', None)} "
                f"for Doc {i}."
            )
        arrays.append(M)
        callbacks.append(bp_mix)
    present = [M for M in arrays if M is not None]

    def backprop(dMs: List[Optional[Any]]) -> List[Any]:
        if grad_factor != 0.0 and not reaches:
            warn_once(model.id, "unreached", f"{model.name}: " + ST_LIMIT.format(what="the mix's gradients"))
        out: List[Any] = []
        for dM, bp_mix, grad_entries in zip(dMs, callbacks, entries):
            if dM is None or bp_mix is None:
                out.extend(grad_entries(None))
                continue
            d_layers = bp_mix(dM)  # the mix's own weights learn even with a frozen transformer
            if grad_factor == 0.0:
                out.extend(grad_entries(None))
            else:
                out.extend(grad_entries([scale(ops, d, grad_factor) for d in d_layers]))
        return out

    return DocArrays(
        arrays,
        n_rows,
        int(present[0].shape[2]) if present else fallback,
        present[0].dtype if present else "float32",
        reaches,
        backprop,
    )


def pool_groups(
    model: Model[Any, Any], pooling: PoolingModelT, docs: DocArrays, groups: Sequence[Groups], is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], List[Any]]]:
    """``pooling`` over every group of every Doc (one output row per group, Doc after
    Doc); the backprop hands back the batch's gradient containers."""
    R, bp_gather = gather(model.name, model.ops, docs.arrays, groups, docs.width, docs.dtype)
    Y, bp_pool = pooling(R, is_train)
    n_groups = len(R.lengths)
    if getattr(Y, "ndim", None) != 2 or int(Y.shape[0]) != n_groups:
        raise LayerInputError(
            f"{model.name}: the pooling {pooling.name!r} should return one row per group of "
            f"wordpieces ({n_groups}), a Floats2d, got shape {getattr(Y, 'shape', None)}."
        )
    shape, dtype = tuple(Y.shape), Y.dtype

    def backprop(dY: Floats2d) -> List[Any]:
        check_grad(model.name, dY, shape, dtype)
        dR = bp_pool(dY)  # the pooling's own weights learn even with a frozen transformer
        return docs.backprop(bp_gather(dR) if docs.needs_grads else [None] * len(docs.arrays))

    return Y, backprop


def _no_gradient(grad_entries: Callable[[Optional[Any]], List[Any]]) -> Callable[[Optional[List[Any]]], List[Any]]:
    return lambda d_layers: grad_entries(None)


def parts(model: Model[Any, Any]) -> Tuple[PoolingModelT, Optional[MixModelT]]:
    """A pooling model's pooling (its first layer) and mix (its second, if any)."""
    return model.layers[0], (model.layers[1] if len(model.layers) > 1 else None)


def init_pool(model: Model[Any, Any], Xs: Optional[Sequence[Any]]) -> None:
    """Initialize a pooling model's mix (if any) and pooling (see ``parts``):
    on a sample of outputs ``Xs`` (the mix on the first Doc's layers, the pooling on rows
    of the mixed width), or bare (a mix without a layer count then takes it from the
    first batch; the pooling, if the width ``nI`` is known, on rows of that width)."""
    pooling, mix = parts(model)
    width = model.maybe_get_dim("nI")
    if Xs is not None:
        width = read_doc_arrays(model, Xs, False, mix=None, index=model.attrs["index"], grad_factor=0.0, width=0).width
    if mix is not None:
        sample = None
        if Xs is not None:
            adapters = check_batch(model.name, Xs)
            real = [(X, a) for X, a in zip(Xs, adapters) if not a.is_placeholder(X)]
            layered = [a.read_layers(model.name, model.ops, X, False, mix.attrs.get("n_layers")) for X, a in real]
            sample = next((d.layers for d in layered if d.layers), None)
        mix.initialize(X=sample)
        if sample is not None:
            width = int(mix.predict(sample).shape[2])
    if width:
        init_pooling(model, int(width))


def init_pooling(model: Model[Any, Any], width: int) -> None:
    """Initialize the pooling on rows of ``width``; set the model's ``nI`` and ``nO``."""
    pooling, _ = parts(model)
    ops = model.ops
    rows = Ragged(ops.alloc2f(2, width) + 1.0, ops.asarray1i([1, 1]))
    pooling.initialize(X=rows)
    if model.has_dim("nI") is None:
        model.set_dim("nI", width)
    if model.has_dim("nO") is None:
        model.set_dim("nO", int(pooling.predict(rows).shape[1]))


__all__ = ["DocArrays", "read_doc_arrays", "pool_groups", "parts", "init_pool", "init_pooling"]
