"""The adapter protocol and its registry: a layer asks ``check_batch(layer, Xs)`` for each Doc's
adapter and reads every container through it (docs/wordpieces.md#a-container-of-your-own)."""

import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from thinc.api import Ops
from thinc.types import Floats3d

from ..errors import LayerInputError, describe, input_error


@dataclass
class DocTensor:
    """One tensor of one Doc's container (fields: docs/wordpieces.md#a-container-of-your-own)."""

    tensor: Optional[Floats3d]
    lengths: List[int]
    reaches: bool
    grad_entries: Callable[[Optional[Floats3d]], List[Any]]
    adapter: "ContainerAdapter"


@dataclass
class DocLayers:
    """Every hidden layer of one Doc's container (embeddings first), ``reaches`` per layer."""

    layers: List[Floats3d]
    lengths: List[int]
    reaches: List[bool]
    grad_entries: Callable[[Optional[List[Floats3d]]], List[Any]]
    adapter: "ContainerAdapter"


class ContainerAdapter:
    """How the layers read one kind of transformer-output container; each member is
    described in docs/wordpieces.md#a-container-of-your-own."""

    name: str = "container"
    no_class_token: Optional[str] = None
    unreached_reason: str = "the upstream does not carry this gradient into the transformer"

    def accepts(self, X: Any) -> bool:
        raise NotImplementedError

    def read_tensor(self, layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
        raise NotImplementedError

    def read_layers(
        self, layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]
    ) -> DocLayers:
        raise LayerInputError(
            f"{layer}: a {self.name} holds one layer; it has no hidden layers to read."
        )

    def is_placeholder(self, X: Any) -> bool:
        return False

    def last_layer_only(self, X: Any) -> bool:
        return False

    def token_alignment(self, X: Any) -> Optional[Tuple[Any, Any]]:
        return None


_ADAPTERS: List[ContainerAdapter] = []
#: the registry's lookups by type, so that a batch asks once per type of container
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


def adapter_for(X: Any) -> Optional[ContainerAdapter]:
    """The adapter that reads ``X``, or None when no adapter accepts it."""
    adapter = _BY_TYPE.get(type(X))
    if adapter is None:
        adapter = next((a for a in _ADAPTERS if a.accepts(X)), None)
        if adapter is not None:
            _BY_TYPE[type(X)] = adapter
    return adapter


def supported() -> str:
    """What the error messages list as accepted."""
    names = [a.name for a in _ADAPTERS]
    return ", a ".join(names[:-1]) + (f", or a {names[-1]}" if len(names) > 1 else names[-1])


def check_batch(layer: str, Xs: Any) -> List[ContainerAdapter]:
    """The adapters of a batch: a list of accepted containers, one per Doc."""
    if not isinstance(Xs, (list, tuple)):
        raise input_error(layer, Xs, f"a list with one transformer output per Doc ({supported()})")
    adapters = [adapter_for(X) for X in Xs]
    if None in adapters:
        i = adapters.index(None)
        raise LayerInputError(
            f"{layer}: item {i} of the batch is {describe(Xs[i])}; expected one transformer output "
            f"per Doc: a {supported()}. In spaCy, put a listener in front that hands on each Doc's "
            "transformer output (spacy-transformers.TransformerListener.v1 does not: it pools "
            "wordpieces to token vectors), or read doc._.trf_data."
        )
    return adapters  # type: ignore[return-value]


def module_class(module: str, name: str) -> Optional[type]:
    """``module.name`` if that module was imported (an object of a class from a module
    that was never imported cannot exist, so nothing is imported to recognise it)."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None
