"""What every container adapter gives the layers, and the checks they share.

A layer reads one transformer output per Doc. For each kind of container there is one
``ContainerAdapter`` (``ours.py``, ``spacy_transformers.py``, ``curated.py``); the layers
ask ``adapter_for(X)`` and then see every container the same way:

- ``DocTensor``: one tensor of one Doc, (spans, wordpieces, width) padded along the
  wordpiece axis, the real length of every span, whether the upstream can carry its
  gradient into the transformer, and ``grad_entries(dT)``: the entries the batch's
  gradient list gets for this Doc (the container the upstream expects, or none);
- ``DocLayers``: every hidden layer of one Doc, the same way.

Adding a container is one new adapter, registered with ``register_adapter``: no layer
branches on which container it got.
"""
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy
from thinc.api import Ops
from thinc.types import Floats3d, Ragged

from ..util import LayerInputError, describe
from ..util import zeros_view as _zeros_view


@dataclass
class DocTensor:
    """One tensor of one Doc's container, as the layers see it."""

    #: (spans, wordpieces, width), padded along the wordpiece axis; None for a Doc with
    #: no output at all (spacy-transformers' empty Doc)
    tensor: Optional[Floats3d]
    #: the real wordpieces of every span (its first ``lengths[s]`` positions)
    lengths: List[int]
    #: whether the upstream can carry a gradient for this tensor into the transformer
    reaches: bool
    #: the entries of the batch's gradient list for a gradient of ``tensor`` (None: no
    #: gradient, e.g. grad_factor 0): one container, or none where the upstream wants no
    #: entry for this Doc
    grad_entries: Callable[[Optional[Floats3d]], List[Any]]
    #: the adapter that read it (for messages and container rules)
    adapter: "ContainerAdapter"


@dataclass
class DocLayers:
    """Every hidden layer of one Doc's container (embeddings first)."""

    layers: List[Floats3d]
    lengths: List[int]
    #: for each layer: whether the upstream can carry its gradient into the transformer
    reaches: List[bool]
    grad_entries: Callable[[Optional[List[Floats3d]]], List[Any]]
    adapter: "ContainerAdapter"


class ContainerAdapter:
    """How the layers read one kind of transformer-output container.

    Subclasses set ``name`` (used in messages) and implement ``accepts``,
    ``read_tensor`` and, where the container holds every hidden layer, ``read_layers``.
    """

    #: the container, as named in error messages
    name: str = "container"
    #: why ``cls_pool`` cannot pick [CLS] from this container (None: it can)
    no_class_token: Optional[str] = None

    def accepts(self, X: Any) -> bool:
        raise NotImplementedError

    def read_tensor(self, layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
        """Tensor ``index`` of one Doc (0: the last hidden state)."""
        raise NotImplementedError

    def read_layers(self, layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]) -> DocLayers:
        """Every hidden layer of one Doc, embeddings first. ``n_layers``: the number of
        layers expected (lets an adapter read a placeholder as that many zero layers)."""
        raise LayerInputError(f"{layer}: a {self.name} holds one layer; it has no hidden layers to read.")

    def is_placeholder(self, X: Any) -> bool:
        """Whether ``X`` is a listener's zeros standing in for a Doc that no transformer
        ran on (as when spaCy initializes a pipeline): it holds no real output."""
        return False

    def token_alignment(self, X: Any) -> Optional[Tuple[Any, Any]]:
        """The wordpieces of every spaCy token of the Doc: the positions (int array) of
        each token's wordpieces in the tensor seen as (spans * wordpieces) rows, token
        after token, and the number of wordpieces of each token. None for a container
        that holds no alignment to tokens."""
        return None


_ADAPTERS: List[ContainerAdapter] = []
#: the adapter found for each type of container, so that a batch asks once per type
_BY_TYPE: Dict[type, ContainerAdapter] = {}


def register_adapter(adapter: ContainerAdapter) -> ContainerAdapter:
    """Make the layers accept a new kind of container (tried before the built-in ones)."""
    if not isinstance(adapter, ContainerAdapter):
        raise TypeError(f"register_adapter: expected a ContainerAdapter, got {describe(adapter)}.")
    _ADAPTERS.insert(0, adapter)
    _BY_TYPE.clear()
    return adapter


def unregister_adapter(adapter: ContainerAdapter) -> None:
    """Undo ``register_adapter``."""
    _ADAPTERS.remove(adapter)
    _BY_TYPE.clear()


def supported() -> str:
    """What the error messages list as accepted."""
    names = [a.name for a in _ADAPTERS]
    return ", a ".join(names[:-1]) + (f", or a {names[-1]}" if len(names) > 1 else names[-1])


def adapter_for(X: Any) -> Optional[ContainerAdapter]:
    """The adapter that reads ``X``, or None when no adapter accepts it."""
    cached = _BY_TYPE.get(type(X))
    if cached is not None:
        return cached
    for adapter in _ADAPTERS:
        if adapter.accepts(X):
            _BY_TYPE[type(X)] = adapter
            return adapter
    return None


def unsupported(layer: str, X: Any, i: int) -> LayerInputError:
    return LayerInputError(
        f"{layer}: item {i} of the batch is {describe(X)}; expected one transformer output per "
        f"Doc: a {supported()}. In spaCy, put a listener in front that hands on each Doc's "
        "transformer output (spacy-transformers.TransformerListener.v1 does not: it pools "
        "wordpieces to token vectors), or read doc._.trf_data."
    )


def check_batch(layer: str, Xs: Any) -> List[ContainerAdapter]:
    """Check that ``Xs`` is a list of accepted containers; return their adapters."""
    if not isinstance(Xs, (list, tuple)):
        raise LayerInputError(
            f"{layer}: expected a list with one transformer output per Doc ({supported()}), "
            f"got {describe(Xs)}."
        )
    adapters = []
    for i, X in enumerate(Xs):
        adapter = adapter_for(X)
        if adapter is None:
            raise unsupported(layer, X, i)
        adapters.append(adapter)
    return adapters


def read_tensors(layer: str, ops: Ops, Xs: Any, index: int) -> List[DocTensor]:
    """Tensor ``index`` of every Doc of a batch."""
    return [a.read_tensor(layer, ops, X, index) for X, a in zip(Xs, check_batch(layer, Xs))]


def read_all_layers(layer: str, ops: Ops, Xs: Any, is_train: bool, n_layers: Optional[int]) -> List[DocLayers]:
    """Every hidden layer of every Doc of a batch."""
    return [a.read_layers(layer, ops, X, is_train, n_layers) for X, a in zip(Xs, check_batch(layer, Xs))]


# --- checks shared by the adapters ------------------------------------------------------


def dtype_kind(array: Any) -> Optional[str]:
    """The NumPy dtype kind of an array ("f", "i", ...); None for anything else (a
    torch tensor's dtype has no kind: it is not an array our layers can use)."""
    kind = getattr(getattr(array, "dtype", None), "kind", None)
    return kind if isinstance(kind, str) else None


TORCH_HINT = (
    " Our layers read NumPy or CuPy arrays: build the container from torch tensors with"
    " TransformerOutput.from_hf, which converts them."
)


def is_torch(X: Any) -> bool:
    return type(X).__module__.split(".")[0] == "torch"


def check_3d(layer: str, where: str, T: Any, at: Optional[int] = None) -> None:
    """Refuse anything but a floating-point (spans, wordpieces, width) array. ``where``
    names it, with ``{}`` for ``at`` if given: formatted only for the message."""
    if type(T) is numpy.ndarray and T.ndim == 3 and T.dtype.kind == "f":
        return  # the common case, without the lookups below
    if getattr(T, "ndim", None) != 3 or dtype_kind(T) != "f":
        hint = TORCH_HINT if is_torch(T) else ""
        raise LayerInputError(
            f"{layer}: expected {_where(where, at)} to be a floating-point array of shape "
            f"(spans, wordpieces, width), got {describe(T)}.{hint}"
        )


def check_lengths(
    layer: str, where: str, lengths: List[int], shape: Tuple[int, ...], at: Optional[int] = None
) -> None:
    """Refuse span lengths that are not one per span, each in [0, wordpieces]; ``where``
    as for ``check_3d``."""
    n_spans, n_pieces = shape[0], shape[1]
    if len(lengths) != n_spans or (n_spans and not (0 <= min(lengths) and max(lengths) <= n_pieces)):
        raise LayerInputError(
            f"{layer}: {_where(where, at)} has shape {tuple(shape)} but its span lengths are {lengths}; "
            f"expected {int(n_spans)} lengths, each in [0, {int(n_pieces)}]."
        )


def _where(where: str, at: Optional[int]) -> str:
    return where.format(at) if at is not None else where


def check_index(layer: str, where: str, index: int, n: int, hint: str = "") -> int:
    if not -n <= index < n:
        raise LayerInputError(
            f"{layer}: tensor index {index} is out of range for {where}, which has {n} "
            f"tensor(s); expected an index in [{-n}, {n}).{hint}"
        )
    return index % n


def lengths_list(layer: str, where: str, lengths: Any) -> List[int]:
    if type(lengths) is numpy.ndarray and lengths.ndim == 1 and lengths.dtype.kind in ("i", "u"):
        return lengths.tolist()  # type: ignore[no-any-return]  # the common case: Python ints
    if lengths is None or isinstance(lengths, (str, bytes)) or getattr(lengths, "ndim", 1) != 1 or (
        hasattr(lengths, "dtype") and (dtype_kind(lengths) or "") not in ("i", "u")
    ):
        hint = TORCH_HINT if is_torch(lengths) else ""
        raise LayerInputError(
            f"{layer}: expected {where} lengths as a 1d int array, got {describe(lengths)}.{hint}"
        )
    try:
        values = lengths.tolist() if hasattr(lengths, "tolist") else list(lengths)
        if dtype_kind(lengths) in ("i", "u"):
            return list(values)  # Python ints already
        return [_whole(n) for n in values]
    except (TypeError, ValueError):
        raise LayerInputError(
            f"{layer}: expected {where} lengths as a 1d int array, got {describe(lengths)}."
        ) from None


def _whole(n: Any) -> int:
    if isinstance(n, bool) or int(n) != n:
        raise ValueError(n)
    return int(n)


def ragged_as_span(layer: str, where: str, R: Any) -> Tuple[Floats3d, List[int]]:
    """A ``Ragged`` of wordpiece rows seen as one span: (1, n_pieces, width)."""
    if not isinstance(R, Ragged):
        raise LayerInputError(f"{layer}: expected {where} to be a Ragged, got {describe(R)}.")
    data: Any = R.dataXd
    if getattr(data, "ndim", None) != 2 or data.dtype.kind != "f":
        raise LayerInputError(
            f"{layer}: expected {where} to hold floating-point data of shape (wordpieces, width), "
            f"got {describe(R)}."
        )
    n, width = int(data.shape[0]), int(data.shape[1])
    return data.reshape((1, n, width)), [n]


def ragged_grad(ops: Ops, R: Ragged, dT: Optional[Floats3d]) -> Ragged:
    """The gradient of a Ragged read as one span (read-only zeros for None)."""
    data = R.dataXd
    if dT is None:
        return Ragged(_zeros_view(ops, tuple(data.shape), data.dtype), R.lengths)
    return Ragged(dT.reshape(tuple(data.shape)), R.lengths)


# --- warnings and arguments shared by the layers ------------------------------------------


class TransformerGradientWarning(UserWarning):
    """The upstream cannot carry the gradient of a picked tensor into the transformer."""


_WARNED: Set[Tuple[int, str]] = set()


def warn_once(model_id: int, key: str, message: str) -> None:
    """Warn with ``TransformerGradientWarning``, once per model and kind of problem."""
    if (model_id, key) in _WARNED:
        return
    _WARNED.add((model_id, key))
    warnings.warn(message, TransformerGradientWarning, stacklevel=3)


ST_LIMIT = (
    "spacy-transformers backpropagates into its model's last_hidden_state only "
    "(spacy_transformers.layers.transformer_model._convert_transformer_outputs), so "
    "{what} cannot reach the transformer: the transformer will not be trained through "
    "this layer. Read last_hidden_state (index 0) to fine-tune it, use grad_factor=0.0 "
    "to say that the transformer is meant to stay frozen, or see "
    "docs/transformer_outputs.md."
)


def require_reach(layer: str, what: str, reaches: bool) -> None:
    """Refuse to train the transformer through ``what`` where its gradient cannot get there.

    For components that train the transformer (``grad_factor != 0``): call it in the
    forward, when ``is_train``, before anything is updated or returned, with ``reaches``
    from the Docs' containers (``DocTensor.reaches``, ``all(DocLayers.reaches)``, over the
    batch). ``what``: what the layer uses, with its ``grad_factor``, as the message
    names it (``"tensor 1 with grad_factor = 1.0"``). Raises ``LayerInputError``."""
    if reaches:
        return
    raise LayerInputError(
        f"{layer}: got {what}, but the upstream transformer cannot carry its gradient into "
        "the transformer: spacy-transformers' TransformerModel backpropagates into "
        "last_hidden_state only, so this component would not train the transformer. Set "
        "grad_factor = 0.0 to use these features with the transformer frozen for this "
        "component, or make the transformer component's model "
        "thinc_trf_layers.TransformerModel.v1, which backpropagates into every hidden state "
        "and tensor."
    )


def check_reach(model: Any, is_train: bool, grad_factor: float, reaches: bool, what: str) -> None:
    """``require_reach`` for a layer that a spaCy architecture built: its
    ``attrs["require_reach"]`` is the architecture's name (or True), set when the
    architecture is built; other layers warn instead (``warn_unreached``). ``what``:
    what the layer reads (``"tensor 1"``, ``"mix = scalar_mix (every hidden layer)"``)."""
    owner = model.attrs.get("require_reach")
    if owner and is_train and grad_factor != 0.0 and not reaches:
        layer = model.name if owner is True else f"{owner} ({model.name})"
        require_reach(layer, f"{what} with grad_factor = {grad_factor}", False)


def warn_unreached(model_name: str, model_id: int, index: int) -> None:
    """Warn once that the gradient of tensor ``index`` cannot reach the transformer."""
    what = f"the gradient of tensor {index}"
    warn_once(model_id, "unreached", f"{model_name}: " + ST_LIMIT.format(what=what))


def check_grad_factor(layer: str, grad_factor: Any) -> float:
    """``grad_factor`` as a float; a finite real number."""
    is_number = isinstance(grad_factor, (int, float)) and not isinstance(grad_factor, bool)
    if not is_number or not math.isfinite(grad_factor):
        raise LayerInputError(f"{layer}: expected grad_factor to be a finite float, got {grad_factor!r}.")
    return float(grad_factor)


def check_int(layer: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayerInputError(f"{layer}: expected an int {name}, got {value!r}.")
    return value


def scale(ops: Ops, dY: Any, grad_factor: float) -> Any:
    """``dY * grad_factor`` in dY's dtype (dY itself when the factor is 1)."""
    if grad_factor == 1.0:
        return dY
    return (dY * grad_factor).astype(dY.dtype, copy=False)


def tensor_gradients(
    model_name: str, model_id: int, index: int, docs: Sequence[DocTensor], dTs: Sequence[Optional[Any]],
    grad_factor: float, *, owned: bool,
) -> List[Any]:
    """The batch's gradient list: each Doc's gradient ``dTs[i]`` (of ``docs[i].tensor``;
    None for none) scaled by ``grad_factor``, wrapped by its adapter; warns once if a
    tensor's gradient cannot reach the transformer. ``owned``: the arrays are the
    caller's own (scaled in place), else they are scaled into new arrays."""
    if grad_factor != 0.0 and any(not doc.reaches for doc in docs):
        warn_unreached(model_name, model_id, index)
    out: List[Any] = []
    if grad_factor == 1.0:  # the common case: wrap them as they are
        for doc, d in zip(docs, dTs):
            out.extend(doc.grad_entries(d if doc.reaches else None))
        return out
    for doc, d in zip(docs, dTs):
        dT: Any = d
        use = dT is not None and grad_factor != 0.0 and doc.reaches
        if use and grad_factor != 1.0:
            writable = getattr(getattr(dT, "flags", None), "writeable", True)
            if owned and writable:
                dT *= grad_factor
            else:
                dT = (dT * grad_factor).astype(dT.dtype, copy=False)
        out.extend(doc.grad_entries(dT if use else None))
    return out


__all__ = [
    "DocTensor",
    "DocLayers",
    "ContainerAdapter",
    "register_adapter",
    "unregister_adapter",
    "adapter_for",
    "check_batch",
    "read_tensors",
    "read_all_layers",
    "supported",
    "TransformerGradientWarning",
    "require_reach",
    "check_reach",
]


def module_class(module: str, name: str) -> Optional[type]:
    """``module.name`` if that module was imported (an object of a class from a module
    that was never imported cannot exist, so nothing needs importing to recognise it)."""
    import sys

    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None
