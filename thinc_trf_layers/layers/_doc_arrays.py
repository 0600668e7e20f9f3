"""Groups of wordpiece rows, pooled: what ``token_pool`` and ``span_pool`` share (and,
for reading and mixing every Doc's layers, the spaCy ``mixed_pool`` features).

A forward reads, per Doc, tensor ``index`` or every hidden layer (the adapters), checks
everything it can before running anything (the batch's width and dtype, the groups'
positions against the real wordpieces, whether the upstream can carry the gradient),
then mixes the layers (with a mix), gathers the groups' rows into one ``Ragged``
(``alignment.gather``) and pools it. Backprop scatters the pooling's gradient back into
one array per Doc, through the mix, into the batch's gradient containers.
"""
import functools
import importlib
from dataclasses import dataclass
from typing import Any, Callable, FrozenSet, List, Optional, Sequence, Tuple

from thinc.api import Model
from thinc.types import Floats2d, Ragged

from ..alignment import Groups, Layout, gather
from ..containers import ContainerAdapter, check_batch
from ..containers.base import ST_LIMIT, check_grad_factor, check_int, check_reach, scale, warn_once
from ..types import MixModelT, PoolingModelT
from ..util import LayerGradientError, LayerInputError, check_grad, describe

#: How a layer finds Doc ``i``'s groups: ``(i, container, adapter, layout) -> Groups``.
GroupsFn = Callable[[int, Any, ContainerAdapter, Layout], Groups]


@dataclass
class DocRead:
    """One Doc, read and checked, not yet mixed."""

    #: what the groups read: one (spans, wordpieces, width) array, or every layer (a
    #: mix's input); neither for a Doc with no output or a listener's placeholder
    tensor: Optional[Any]
    layers: Optional[List[Any]]
    layout: Layout
    reaches: bool
    adapter: ContainerAdapter
    #: the Doc's entries of the batch's gradient list: the tensor's gradient, or the
    #: layers' gradients (None: none)
    grad_entries: Callable[[Optional[Any]], List[Any]]


def parts(model: Model[Any, Any]) -> Tuple[PoolingModelT, Optional[MixModelT]]:
    """A pooling model's pooling (its first layer) and mix (its second, if any)."""
    return model.layers[0], (model.layers[1] if len(model.layers) > 1 else None)


def pooling_model(
    kind: str, forward: Callable[..., Any], init: Callable[..., Any], pooling: Any, mix: Any, index: int,
    grad_factor: float,
) -> Model[Any, Any]:
    """A pooling model (``token_pool``, ``span_pool``) of ``pooling`` and ``mix``, its
    arguments checked; its layers are what ``parts`` reads."""
    check_parts(kind, pooling, mix)
    name = f"{kind}({pooling.name}{', ' + mix.name if mix is not None else ''})"
    check_int(name, "index", index)
    factor = check_grad_factor(name, grad_factor)
    layers: List[Model[Any, Any]] = [pooling] if mix is None else [pooling, mix]
    return Model(
        name, forward, init=init, layers=layers, attrs={"index": index, "grad_factor": factor},
        dims={"nI": None, "nO": None},
    )


#: Ours and Thinc's poolings, and our mixes, known by the forward function of their
#: modules (not by name: a user's layer may be called anything). A pooling given as the
#: mix, or a mix as the pooling, would only fail at its first batch, with a message
#: about its own input.
POOLING_MODULES = [
    f"thinc_trf_layers.layers.{name}"
    for name in (
        "reduce_first", "reduce_last", "reduce_sum", "reduce_mean", "reduce_max", "reduce_mean_max",
        "reduce_mean_sqrt_len", "reduce_weighted_mean", "reduce_gem", "attention_pool",
    )
] + [f"thinc.layers.{name}" for name in ("reduce_first", "reduce_last", "reduce_sum", "reduce_mean", "reduce_max")]
MIX_MODULES = [
    f"thinc_trf_layers.layers.{name}" for name in ("scalar_mix", "weighted_layer_pooling", "concat_last", "mean_last")
]
SWAP_HINT = "The pooling (wordpieces to a vector) goes in pooling, the mix (of the hidden layers) in mix."


@functools.lru_cache(maxsize=None)
def _forwards(modules: Tuple[str, ...]) -> FrozenSet[Any]:
    found = set()
    for module in modules:
        try:
            found.add(getattr(importlib.import_module(module), "forward", None))
        except ImportError:  # a Thinc without that layer
            continue
    found.discard(None)
    return frozenset(found)


def _is_one_of(model: Model[Any, Any], modules: List[str]) -> bool:
    return getattr(model, "_func", None) in _forwards(tuple(modules))


def check_parts(layer: str, pooling: Any, mix: Any) -> None:
    """Refuse, when the model is built, a pooling or a mix that is not a Thinc Model, or
    one of ours (or Thinc's) given in the other's place (``check_swapped``)."""
    if not isinstance(pooling, Model):
        raise LayerInputError(
            f"{layer}: expected pooling to be a Thinc Model[Ragged, Floats2d] (such as reduce_mean()), "
            f"got {describe(pooling)}."
        )
    if mix is not None and not isinstance(mix, Model):
        raise LayerInputError(
            f"{layer}: expected mix to be None or a Thinc Model[List[Floats3d], Floats3d] (such as "
            f"scalar_mix()), got {describe(mix)}."
        )
    check_swapped(layer, pooling, mix)


def check_swapped(layer: str, pooling: Optional[Model[Any, Any]], mix: Optional[Model[Any, Any]]) -> None:
    """Refuse one of our (or Thinc's) poolings given as the mix, or one of our mixes as the
    pooling (a model of one of their forward functions)."""
    if mix is not None and _is_one_of(mix, POOLING_MODULES):
        raise LayerInputError(
            f"{layer}: expected mix to be a mix of the hidden layers, a Model[List[Floats3d], Floats3d] "
            f"(such as scalar_mix()), got the pooling {mix.name}. {SWAP_HINT}"
        )
    if pooling is not None and _is_one_of(pooling, MIX_MODULES):
        raise LayerInputError(
            f"{layer}: expected pooling to be a Model[Ragged, Floats2d] (such as reduce_mean()), got the "
            f"mix {pooling.name}. {SWAP_HINT}"
        )


def pool_groups(
    model: Model[Any, Any], Xs: Sequence[Any], is_train: bool, groups_of: GroupsFn
) -> Tuple[Floats2d, List[Groups], Callable[[Floats2d], List[Any]]]:
    """``model``'s pooling over every group of every Doc (one output row per group, Doc
    after Doc), the groups, and the backprop to the batch's gradient containers.

    ``model.attrs``: ``index``, ``grad_factor`` and, for the spaCy architectures,
    ``require_reach`` (their name): training the transformer through what the
    upstream cannot carry is then refused, before anything runs, instead of warned of.
    """
    pooling, mix = parts(model)
    index: int = model.attrs["index"]
    grad_factor: float = model.attrs["grad_factor"]
    docs = read_docs(model, Xs, is_train, mix, index)
    groups = [groups_of(i, X, doc.adapter, doc.layout) for i, (X, doc) in enumerate(zip(Xs, docs))]
    refuse_unreached(model, docs, mix, index, grad_factor, is_train)
    arrays, mix_callbacks = mix_docs(model, docs, mix, is_train)
    width, dtype = batch_width(model, arrays)
    if not model.has_dim("nI") and any(A is not None for A in arrays):
        init_pooling(model, width)  # initialized without a sample: the first batch gives the width
    R, bp_gather = gather(model.name, model.ops, arrays, groups, width, dtype)
    Y, bp_pool = pooling(R, is_train)
    n_groups = len(R.lengths)
    if getattr(Y, "ndim", None) != 2 or int(Y.shape[0]) != n_groups:
        raise LayerInputError(
            f"{model.name}: the pooling {pooling.name!r} should return one row per group of "
            f"wordpieces ({n_groups}), a Floats2d, got shape {getattr(Y, 'shape', None)}."
        )
    shape, out_dtype = tuple(Y.shape), Y.dtype
    needs_grads = grad_factor != 0.0 or mix is not None
    data_shape = tuple(R.dataXd.shape)

    def backprop(dY: Floats2d) -> List[Any]:
        check_grad(model.name, dY, shape, out_dtype)
        dR = bp_pool(dY)  # the pooling's own weights learn even with a frozen transformer
        if not needs_grads:
            got = getattr(getattr(dR, "dataXd", None), "shape", None)
            if got is None or tuple(got) != data_shape:
                raise LayerGradientError(
                    f"{model.name}: the pooling {pooling.name!r}'s backprop should give the gradient "
                    f"of its input, a Ragged with data of shape {data_shape}, got {describe(dR)}."
                )
        d_arrays = bp_gather(dR) if needs_grads else [None] * len(docs)
        return to_containers(model, docs, d_arrays, mix_callbacks, mix, index, grad_factor)

    return Y, groups, backprop


def refuse_unreached(
    model: Model[Any, Any], docs: List[DocRead], mix: Optional[MixModelT], index: int, grad_factor: float,
    is_train: bool,
) -> None:
    """``check_reach`` for a pooling model that a spaCy architecture built: refuse to
    train the transformer through what the upstream cannot carry its gradient into,
    before anything runs; other layers warn in their backprop (``to_containers``)."""
    what = f"mix = {mix.name} (every hidden layer)" if mix is not None else f"tensor {index}"
    check_reach(model, is_train, grad_factor, all(doc.reaches for doc in docs), what)


def to_containers(
    model: Model[Any, Any], docs: List[DocRead], d_arrays: Sequence[Optional[Any]],
    mix_callbacks: Sequence[Optional[Callable[[Any], List[Any]]]], mix: Optional[MixModelT], index: int,
    grad_factor: float,
) -> List[Any]:
    """The batch's gradient list from the gradients of the Docs' arrays (None: none, and
    arrays the caller owns): through the mix, scaled by ``grad_factor``, wrapped by each
    Doc's adapter; warns once if a gradient cannot reach the transformer."""
    if grad_factor != 0.0 and not all(doc.reaches for doc in docs):
        what = "the mix's gradients" if mix is not None else f"the gradient of tensor {index}"
        warn_once(model.id, "unreached", f"{model.name}: " + ST_LIMIT.format(what=what))
    out: List[Any] = []
    for doc, dA, bp_mix in zip(docs, d_arrays, mix_callbacks):
        if dA is not None and bp_mix is not None:
            d_layers = bp_mix(dA)  # the mix's own weights learn even with a frozen transformer
            scaled = None if grad_factor == 0.0 else [scale(model.ops, d, grad_factor) for d in d_layers]
            out.extend(doc.grad_entries(scaled))
        elif dA is None or grad_factor == 0.0 or not doc.reaches:
            out.extend(doc.grad_entries(None))
        else:
            if grad_factor != 1.0:
                dA *= grad_factor
            out.extend(doc.grad_entries(dA))
    return out


def read_docs(model: Model[Any, Any], Xs: Sequence[Any], is_train: bool, mix: Optional[MixModelT], index: int) -> List[DocRead]:
    ops = model.ops
    n_layers: Optional[int] = None if mix is None else mix.attrs.get("n_layers")
    docs: List[DocRead] = []
    for X, adapter in zip(Xs, check_batch(model.name, Xs)):
        if mix is None or adapter.is_placeholder(X):
            # a listener's zeros for a Doc no transformer ran on (spaCy initializing the
            # pipeline) have no hidden layers to mix: with a mix, its groups read nothing
            t = adapter.read_tensor(model.name, ops, X, index if mix is None else 0)
            use = t.tensor if mix is None else None
            docs.append(DocRead(use, None, _layout_of(t.tensor, t.lengths), t.reaches, adapter, t.grad_entries))
            continue
        d = adapter.read_layers(model.name, ops, X, is_train, n_layers)
        first = d.layers[0] if d.layers else None
        layers = list(d.layers) if d.layers else None
        docs.append(DocRead(None, layers, _layout_of(first, d.lengths), all(d.reaches), adapter, d.grad_entries))
    return docs


def _layout_of(T: Optional[Any], lengths: List[int]) -> Layout:
    if T is None:
        return Layout(0, 0, [])
    return Layout(int(T.shape[0]), int(T.shape[1]), list(lengths))


def mix_docs(
    model: Model[Any, Any], docs: List[DocRead], mix: Optional[MixModelT], is_train: bool
) -> Tuple[List[Optional[Any]], List[Optional[Callable[[Any], List[Any]]]]]:
    """Each Doc's array: its tensor, or its layers mixed."""
    if mix is None:
        return [doc.tensor for doc in docs], [None] * len(docs)
    arrays: List[Optional[Any]] = []
    callbacks: List[Optional[Callable[[Any], List[Any]]]] = []
    for i, doc in enumerate(docs):
        if doc.layers is None or sum(doc.layout.lengths) == 0:
            arrays.append(None)
            callbacks.append(None)
            continue
        M, bp_mix = mix(doc.layers, is_train)
        shape = tuple(doc.layers[0].shape[:2])
        if getattr(M, "ndim", None) != 3 or tuple(M.shape[:2]) != shape:
            raise LayerInputError(
                f"{model.name}: the mix {mix.name!r} should return one (spans, wordpieces, width) array per "
                f"Doc, of the layers' shape {shape} + (width,), got shape {getattr(M, 'shape', None)} for Doc {i}."
            )
        arrays.append(M)
        callbacks.append(bp_mix)
    return arrays, callbacks


def batch_width(model: Model[Any, Any], arrays: List[Optional[Any]], fallback: int = 0) -> Tuple[int, Any]:
    """The width and dtype the batch's arrays share (checked, also against ``nI``)."""
    first: Optional[Tuple[int, Any, int]] = None
    for i, A in enumerate(arrays):
        if A is None:
            continue
        here = (int(A.shape[2]), A.dtype)
        if first is None:
            first = (*here, i)
        elif here != first[:2]:
            raise LayerInputError(
                f"{model.name}: Doc {i} of the batch gives arrays of width {here[0]} ({here[1]}), but Doc "
                f"{first[2]} gives width {first[0]} ({first[1]}); expected every Doc of a batch to come from "
                "the same transformer, with one width and dtype."
            )
    nI = model.maybe_get_dim("nI")
    if first is not None and nI is not None and first[0] != nI:
        raise LayerInputError(
            f"{model.name}: the wordpieces have width {first[0]}, but the layer was initialized for width "
            f"{nI} (its nI; in spaCy, the width setting or the transformer it was trained with); expected "
            f"wordpieces of width {nI}."
        )
    if first is not None:
        return first[0], first[1]
    return int(nI or fallback), "float32"


def init_pool(model: Model[Any, Any], Xs: Optional[Sequence[Any]]) -> None:
    """Initialize a pooling model's mix (if any) and pooling (see ``parts``): on a sample
    of outputs ``Xs`` (the mix on the first real Doc's layers, the pooling on rows of the
    mixed width), or without one (a mix without a layer count, and a pooling whose width
    is unknown, then take them from the first batch)."""
    pooling, mix = parts(model)
    real = [(X, a) for X, a in zip(Xs, check_batch(model.name, Xs)) if not a.is_placeholder(X)] if Xs else []
    if mix is None:
        tensors = [a.read_tensor(model.name, model.ops, X, model.attrs["index"]).tensor for X, a in real]
        found = [T for T in tensors if T is not None]
        if found:
            init_pooling(model, int(found[0].shape[2]))
        elif model.has_dim("nI"):
            init_pooling(model, int(model.get_dim("nI")))
        return
    layered = [a.read_layers(model.name, model.ops, X, False, mix.attrs.get("n_layers")) for X, a in real]
    sample = next((d.layers for d in layered if d.layers), None)
    mix.initialize(X=sample)
    if sample is not None:
        init_pooling(model, int(mix.predict(sample).shape[2]))
    elif model.has_dim("nI"):
        init_pooling(model, int(model.get_dim("nI")))


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


__all__ = [
    "GroupsFn",
    "DocRead",
    "parts",
    "pooling_model",
    "check_parts",
    "check_swapped",
    "pool_groups",
    "read_docs",
    "refuse_unreached",
    "mix_docs",
    "batch_width",
    "to_containers",
    "init_pool",
    "init_pooling",
]
