"""spacy-curated-transformers' ``DocTransformerOutput`` and the bare ``Ragged`` of one layer its
listeners hand on: each layer is read as one span ``(1, n_pieces, width)``
(docs/transformer_outputs.md)."""

from typing import Any, List, Optional, Sequence, Tuple

from thinc.api import Ops, get_array_module
from thinc.types import Floats3d, Ragged

from ..errors import LayerInputError, check_index, input_error
from ..gradients import zeros_view as _zeros_view
from .base import ContainerAdapter, DocLayers, DocTensor, module_class

#: The attribute our curated listener sets (to True) on the zeros it hands on for a Doc
#: that no transformer ran on (``spacy.listeners``).
PLACEHOLDER = "thinc_trf_layers_placeholder"

_NO_CLS = (
    "spacy-curated-transformers removes the BOS/[CLS] piece from its outputs (remove_bos_eos), "
    "so there is no [CLS] vector to pick. Use trf_pool(reduce_first()) for the first wordpiece or "
    "trf_pool(reduce_mean()); if your Ragged does start with [CLS], wrap it in a TransformerOutput."
)


class CuratedAdapter(ContainerAdapter):
    name = "spacy-curated-transformers DocTransformerOutput"
    no_class_token = _NO_CLS

    def accepts(self, X: Any) -> bool:
        cls = module_class("spacy_curated_transformers.models.output", "DocTransformerOutput")
        return cls is not None and isinstance(X, cls)

    def read_tensor(self, layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
        layers = list(X.all_outputs)
        if not layers:
            raise LayerInputError(f"{layer}: the {self.name} has no layers (all_outputs is empty).")
        only = " It has one output tensor, its last hidden layer (index 0); use trf2layers() for "
        check_index(layer, f"a {self.name}", index, 1, only + "the others.")
        T, lengths = ragged_as_span(layer, f"{self.name}.all_outputs[-1]", layers[-1])
        zeros: List[Optional[Floats3d]] = [None] * (len(layers) - 1)
        return DocTensor(T, lengths, True, lambda dT: _grads(ops, X, layers, zeros + [dT]), self)

    def read_layers(
        self, layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]
    ) -> DocLayers:
        layers = list(X.all_outputs)
        if X.last_layer_only or not layers:
            raise LayerInputError(
                f"{layer}: the {self.name} holds only its last layer "
                f"(last_layer_only={X.last_layer_only}, {len(layers)} layer(s)); set "
                "all_layer_outputs = true on the transformer pipe to read every hidden layer."
            )
        spans = [
            ragged_as_span(layer, f"{self.name}.all_outputs[{j}]", r) for j, r in enumerate(layers)
        ]
        n = spans[0][1]
        for j, (T, lengths) in enumerate(spans):
            if lengths != n or T.shape[2] != spans[0][0].shape[2]:
                raise LayerInputError(
                    f"{layer}: the layers of the {self.name} disagree: all_outputs[0] has shape "
                    f"{tuple(spans[0][0].shape[1:])}, all_outputs[{j}] has {tuple(T.shape[1:])}."
                )
        tensors, reaches = [T for T, _ in spans], [True] * len(layers)
        return DocLayers(tensors, n, reaches, lambda d: _grads(ops, X, layers, d), self)

    def is_placeholder(self, X: Any) -> bool:
        return getattr(X, PLACEHOLDER, False) is True

    def last_layer_only(self, X: Any) -> bool:
        return bool(X.last_layer_only)

    def token_alignment(self, X: Any) -> Optional[Tuple[Any, Any]]:
        return _in_order(X.all_outputs[-1]) if list(X.all_outputs) else None


class RaggedAdapter(ContainerAdapter):
    name = "Ragged (one layer of spacy-curated-transformers wordpieces)"
    no_class_token = _NO_CLS

    def accepts(self, X: Any) -> bool:
        return isinstance(X, Ragged)

    def read_tensor(self, layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
        check_index(layer, "a Ragged", index, 1, " A Ragged holds one layer (index 0).")
        T, lengths = ragged_as_span(layer, "the Ragged", X)
        return DocTensor(T, lengths, True, lambda dT: [ragged_grad(ops, X, dT)], self)

    def read_layers(
        self, layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]
    ) -> DocLayers:
        raise LayerInputError(
            f"{layer}: a Ragged holds one layer of wordpieces; to read every hidden layer, give a "
            f"{CuratedAdapter.name} (with all_layer_outputs = true), a spacy-transformers "
            "TransformerData (with output_hidden_states = true) or a TransformerOutput with "
            "hidden_states."
        )

    def token_alignment(self, X: Any) -> Optional[Tuple[Any, Any]]:
        return _in_order(X)


def ragged_as_span(layer: str, where: str, R: Any) -> Tuple[Floats3d, List[int]]:
    """A ``Ragged`` of wordpiece rows seen as one span: (1, n_pieces, width)."""
    if not isinstance(R, Ragged):
        raise input_error(layer, R, f"{where} to be a Ragged")
    data: Any = R.dataXd
    if getattr(data, "ndim", None) != 2 or data.dtype.kind != "f":
        expected = f"{where} to hold floating-point data of shape (wordpieces, width)"
        raise input_error(layer, R, expected)
    return data.reshape((1, int(data.shape[0]), int(data.shape[1]))), [int(data.shape[0])]


def ragged_grad(ops: Ops, R: Ragged, dT: Optional[Floats3d]) -> Ragged:
    """The gradient of a Ragged read as one span (read-only zeros for None)."""
    data: Any = R.dataXd
    if dT is None:
        return Ragged(_zeros_view(ops, tuple(data.shape), data.dtype), R.lengths)
    return Ragged(dT.reshape(tuple(data.shape)), R.lengths)


def _grads(ops: Ops, X: Any, layers: List[Ragged], dLs: Optional[Sequence[Any]]) -> List[Any]:
    """A ``DocTransformerOutput``'s gradient from its layers' (None: zeros)."""
    d_layers = dLs if dLs is not None else [None] * len(layers)
    grads = [ragged_grad(ops, r, d) for r, d in zip(layers, d_layers)]
    return [type(X)(all_outputs=grads, last_layer_only=X.last_layer_only)]


def _in_order(R: Ragged) -> Tuple[Any, Any]:
    """Curated's rows are the tokens' wordpieces, token after token (lengths per token)."""
    lengths = R.lengths
    xp = get_array_module(lengths)  # type: ignore[no-untyped-call]
    return xp.arange(int(R.dataXd.shape[0]), dtype="int64"), lengths
