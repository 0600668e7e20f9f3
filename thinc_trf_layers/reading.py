"""What the reading layers share: each Doc's array read through its adapter (tensor ``index``,
or the layers mixed by ``mix``), checked first, and the way back to the gradient containers."""

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model
from thinc.types import Floats3d

from .containers import ContainerAdapter, DocLayers, check_batch
from .errors import LayerInputError, check_grad_factor, check_int, input_error
from .gradients import scaled, unreached
from .wordpieces import check_grad_of, storage_grads


@dataclass
class DocArray:
    """One Doc, read (and, after ``mix``, mixed)."""

    container: Any
    adapter: ContainerAdapter
    #: (spans, wordpieces, width): the tensor, or (after ``mix``) the layers mixed; None
    #: for a Doc with no output (or a listener's placeholder, with a mix)
    array: Optional[Floats3d]
    lengths: List[int]
    reaches: bool
    #: the Doc's entries of the gradient list, for the array's gradient (or the layers'
    #: gradients, with a mix; None: none)
    entries: Callable[[Any], List[Any]]
    #: with a mix: the hidden layers to mix
    layers: Optional[List[Floats3d]] = None
    mix_backprop: Optional[Callable[[Floats3d], List[Floats3d]]] = None

    @property
    def shape(self) -> Optional[Tuple[int, ...]]:
        """(spans, wordpieces) of what the Doc's rows lie in."""
        A = self.array if self.array is not None else (self.layers[0] if self.layers else None)
        return None if A is None else tuple(A.shape[:2])


def check_reader_args(
    name: str, index: int, mix: Any, grad_factor: Any, on_unreached: Any
) -> float:
    """A reading layer's arguments; returns ``grad_factor`` as a float."""
    check_int(name, "index", index)
    if mix is not None and not isinstance(mix, Model):
        model = "a Thinc Model[List[Floats3d], Floats3d] (such as scalar_mix())"
        raise input_error(name, mix, f"mix to be None or {model}")
    if on_unreached not in ("warn", "raise"):
        raise LayerInputError(
            f"{name}: expected on_unreached to be 'warn' or 'raise', got {on_unreached!r}."
        )
    return check_grad_factor(name, grad_factor)


def read(model: Model[Any, Any], Xs: Any, is_train: bool) -> List[DocArray]:
    """Every Doc's tensor, or (with a mix) its hidden layers, not mixed yet (``mix`` does that,
    once the caller has checked what else it reads). With ``on_unreached="raise"``, a training
    batch whose gradient cannot reach the transformer is refused here."""
    index: int = model.attrs["index"]
    with_mix = bool(model.layers)
    ops = model.ops
    docs: List[DocArray] = []
    nO = model.maybe_get_dim("nO")
    for X, adapter in zip(Xs, check_batch(model.name, Xs)):
        if with_mix and not adapter.is_placeholder(X):
            d = read_layers(model.name, ops, adapter, X, is_train)
            layers = d.layers if d.layers and sum(d.lengths) else None
            lengths = d.lengths if layers else []
            docs.append(DocArray(X, adapter, None, lengths, all(d.reaches), d.grad_entries, layers))
            continue
        # tensor ``index``; with a mix, a listener's placeholder (zeros for a Doc no
        # transformer ran on): no layers to mix, read as zeros of the width the mix gives
        # (each token one row, as the listener made it), that get no gradient
        t = adapter.read_tensor(model.name, ops, X, 0 if with_mix else index)
        T: Any = t.tensor
        entries = t.grad_entries
        if with_mix:
            if T is not None and nO is not None and nO != T.shape[2]:
                T = ops.alloc((*T.shape[:2], nO), dtype=T.dtype)
            entries = _no_grad(t.grad_entries)
        lengths = t.lengths if T is not None else []
        docs.append(DocArray(X, adapter, T, lengths, t.reaches, entries))
    grad_factor: float = model.attrs["grad_factor"]
    raising = is_train and grad_factor != 0.0 and model.attrs["on_unreached"] == "raise"
    odd = next((doc for doc in docs if not doc.reaches), None) if raising else None
    if odd is not None:
        what = f"tensor {index}"
        if with_mix:
            what = f"mix = {model.layers[0].name} (every hidden layer)"
        unreached(model.name, what, odd.adapter.unreached_reason, grad_factor=grad_factor)
    return docs


def read_layers(
    layer: str, ops: Any, adapter: ContainerAdapter, X: Any, is_train: bool
) -> DocLayers:
    """Every hidden layer of one Doc; of a container that holds its last layer only
    (spacy-curated-transformers' ``all_layer_outputs = false``), that one layer: a mix of
    the last layer only works on it, a mix of more says what to set."""
    if not adapter.last_layer_only(X):
        return adapter.read_layers(layer, ops, X, is_train, None)
    t = adapter.read_tensor(layer, ops, X, 0)

    def grad_entries(dLs: Optional[List[Floats3d]]) -> List[Any]:
        return t.grad_entries(None if dLs is None else dLs[-1])

    layers = [] if t.tensor is None else [t.tensor]
    return DocLayers(layers, t.lengths, [t.reaches], grad_entries, adapter)


def _no_grad(grad_entries: Callable[[Any], List[Any]]) -> Callable[[Any], List[Any]]:
    """A placeholder's gradient entries: zeros, whatever its rows got."""
    return lambda d: grad_entries(None)


def mix(model: Model[Any, Any], docs: List[DocArray], is_train: bool) -> Tuple[int, Any]:
    """Run the reader's mix (if any) on every Doc's layers; the batch's width and dtype
    (checked: one per batch, and the reader's ``nO`` once it has one)."""
    for doc in docs:
        if doc.layers is None:
            continue
        mixer = model.layers[0]
        try:
            M, doc.mix_backprop = mixer(doc.layers, is_train)
        except Exception as err:  # noqa: BLE001 (a pooling in mix= fails in its own way)
            hint = (
                "the transformer output holds its last layer only: a mix of more layers needs "
                "every layer (all_layer_outputs = true on a spacy-curated-transformers pipe)"
                if len(doc.layers) == 1
                else "is a pooling given as the mix?"
            )
            raise LayerInputError(
                f"{model.name}: the mix {mixer.name!r} could not mix one Doc's hidden layers "
                f"({hint}): {type(err).__name__}: {err}"
            ) from err
        if getattr(M, "ndim", None) != 3 or tuple(M.shape[:2]) != doc.shape:
            expected = f"the mix {mixer.name!r} to return one array of the layers' shape"
            raise input_error(model.name, M, f"{expected} {doc.shape} + (width,)")
        doc.array = M
    # the width and dtype the batch's arrays share, also with the reader's nO (set from
    # the first batch that has an array, if it was not known)
    real = [
        (i, int(doc.array.shape[2]), doc.array.dtype)
        for i, doc in enumerate(docs)
        if doc.array is not None
    ]
    for i, width, dtype in real[1:]:
        if (width, dtype) != real[0][1:]:
            raise LayerInputError(
                f"{model.name}: Doc {i} of the batch has a tensor of width {width} ({dtype}), "
                f"but Doc {real[0][0]} has width {real[0][1]} ({real[0][2]}); expected every Doc "
                "of a batch to come from the same transformer, with one width and dtype."
            )
    nO = model.maybe_get_dim("nO")
    if not real:
        return int(nO or 0), "float32"
    _, width, dtype = real[0]
    if nO is not None and width != nO:
        raise LayerInputError(
            f"{model.name}: the wordpieces have width {width}, but the layer was initialized "
            f"for width {nO} (its nO; in spaCy, the transformer it was trained with); expected "
            f"wordpieces of width {nO}."
        )
    if nO is None:
        model.set_dim("nO", width)
    return width, dtype


def backprop(
    model: Model[Any, Any], docs: Sequence[DocArray], grads: Sequence[Optional[Floats3d]]
) -> List[Any]:
    """The batch's gradient list from the gradients of the Docs' arrays (the caller's
    own: scaled in place), through the mix, scaled by ``grad_factor``, wrapped by each
    Doc's adapter; warns where a gradient cannot reach the transformer."""
    grad_factor: float = model.attrs["grad_factor"]
    warning = model.attrs["on_unreached"] == "warn" and not model.attrs.get("warned")
    odd = next((doc for doc in docs if not doc.reaches), None) if warning else None
    if odd is not None and grad_factor != 0.0:
        what = f"the gradient of tensor {model.attrs['index']}"
        if model.layers:
            what = "the mix's gradients"
        unreached(model.name, what, odd.adapter.unreached_reason)
        model.attrs["warned"] = True  # once per layer
    out: List[Any] = []
    for doc, d in zip(docs, grads):
        given: Any = None  # what the entries carry: the array's gradient, or the layers'
        if d is not None and doc.mix_backprop is not None:
            d_layers = doc.mix_backprop(d)  # the mix learns even with a frozen transformer
            if grad_factor != 0.0:
                given = [scaled(dL, grad_factor) for dL in d_layers]
        elif d is not None and grad_factor != 0.0 and doc.reaches:
            given = scaled(d, grad_factor)
        out.extend(doc.entries(given))
    return out


def init_reader(model: Model[Any, Any], X: Optional[Any] = None, Y: Any = None) -> None:
    """Initialize a reading layer: its mix (on the first real Doc's layers, or without a
    sample: it then takes its layer count from the first batch) and its ``nO`` (the
    width of what it reads), from the sample when it has one."""
    mix: Optional[Model[Any, Any]] = model.layers[0] if model.layers else None
    Xs = X or []
    real = [(x, a) for x, a in zip(Xs, check_batch(model.name, Xs)) if not a.is_placeholder(x)]
    if mix is not None:
        layers = (read_layers(model.name, model.ops, a, x, False).layers for x, a in real)
        sample = next((L for L in layers if L), None)
        mix.initialize(X=sample)
        width = int(mix.predict(sample).shape[2]) if sample is not None else mix.maybe_get_dim("nO")
    else:
        tensors = (
            a.read_tensor(model.name, model.ops, x, model.attrs["index"]).tensor for x, a in real
        )
        width = next((int(T.shape[2]) for T in tensors if T is not None), None)
    if width and model.maybe_get_dim("nO") is None:
        model.set_dim("nO", width)


def reader(
    name: str,
    forward: Callable[..., Any],
    *,
    index: int,
    mix: Optional[Model[Any, Any]],
    grad_factor: Any,
    on_unreached: Any,
    init: Callable[..., None] = init_reader,
    **attrs: Any,
) -> Model[Any, Any]:
    """A reading layer: ``forward`` with the reading attrs, ``mix`` as its layer and ``nO``
    (the width it reads) as its dim."""
    factor = check_reader_args(name, index, mix, grad_factor, on_unreached)
    return Model(
        name,
        forward,
        init=init,
        layers=[mix] if mix is not None else [],
        dims={"nO": mix.maybe_get_dim("nO") if mix is not None else None},
        attrs={"index": index, "grad_factor": factor, "on_unreached": on_unreached, **attrs},
    )


def storage(
    docs: Sequence[DocArray], width: int, dtype: Any, xp: Any
) -> Tuple[List[Any], List[Optional[Tuple[int, ...]]]]:
    """Every Doc's array as (spans * wordpieces, width) rows (an empty one for a Doc
    without an array), and the arrays' shapes (None: no array)."""
    arrays: List[Any] = []
    for doc in docs:
        A: Any = doc.array if doc.array is not None else xp.zeros((0, 0, width), dtype=dtype)
        arrays.append(A.reshape(A.shape[0] * A.shape[1], width))
    return arrays, [None if doc.array is None else tuple(doc.array.shape) for doc in docs]


def backprop_rows(
    model: Model[Any, Any], docs: Sequence[DocArray], R: Any, shapes: Sequence[Any], dR: Any
) -> List[Any]:
    """``backprop`` from the gradient of the rows ``R`` (a ``Wordpieces`` over the Docs'
    arrays) that a reading layer returned."""
    if model.attrs["grad_factor"] == 0.0 and not model.layers:
        check_grad_of(model.name, R, dR)  # the transformer gets nothing
        return backprop(model, docs, [None] * len(docs))
    grads = storage_grads(model.name, R, dR)
    return backprop(
        model, docs, [None if s is None else g.reshape(s) for g, s in zip(grads, shapes)]
    )
