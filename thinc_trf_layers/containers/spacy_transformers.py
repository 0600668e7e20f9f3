"""spacy-transformers' ``TransformerData`` and TransformerModel.v1's ``AllLayersData`` (every tensor
reaches); nothing here imports spacy-transformers: gradients are built with ``type(X)``."""

from functools import partial
from typing import Any, Dict, List, Optional, Tuple

from thinc.api import Ops
from thinc.types import Floats3d

from ..errors import LayerInputError, check_3d, check_index, check_lengths
from .base import ContainerAdapter, DocLayers, DocTensor, module_class


class SpacyTransformersAdapter(ContainerAdapter):
    name = "spacy-transformers TransformerData"
    unreached_reason = (
        "spacy-transformers' TransformerModel backpropagates into last_hidden_state only "
        "(spacy_transformers.layers.transformer_model._convert_transformer_outputs)"
    )

    def accepts(self, X: Any) -> bool:
        cls = module_class("spacy_transformers.data_classes", "TransformerData")
        return cls is not None and isinstance(X, cls)

    @staticmethod
    def all_layers(X: Any) -> bool:
        """Whether X came out of thinc_trf_layers.TransformerModel.v1 (every tensor reaches)."""
        cls = module_class("thinc_trf_layers.spacy.transformer_model", "AllLayersData")
        return cls is not None and isinstance(X, cls)

    def read_tensor(self, layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
        model_output = X.model_output
        keys = list(model_output.keys())
        tensors = list(model_output.values())
        if not tensors:
            # An empty Doc: spacy-transformers gives it no output and wants no gradient.
            return DocTensor(None, [], True, lambda dT: [], self)
        container = f"the TransformerData (tensors: {', '.join(keys)})"
        i = check_index(layer, container, index, len(tensors))
        key, T = keys[i], tensors[i]
        if isinstance(T, (list, tuple)):
            raise LayerInputError(
                f"{layer}: tensor {index} of the TransformerData ({key!r}) is a list of {len(T)} "
                "arrays, one per layer; use trf2layers() to read every hidden layer."
            )
        where = "tensor {0[0]} of the TransformerData ({0[1]!r})"  # formatted for a message only
        check_3d(layer, where, T, (index, key))
        lengths = _lengths(layer, where, X, tuple(T.shape), (index, key))
        every = self.all_layers(X)
        # a TransformerData's gradient holds last_hidden_state alone
        reaches = every or key == "last_hidden_state"
        return DocTensor(T, lengths, reaches, partial(_grad, ops, X, every, key), self)

    def read_layers(
        self, layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]
    ) -> DocLayers:
        model_output = X.model_output
        if not list(model_output.keys()):
            return DocLayers([], [], [], lambda dLs: [], self)
        hidden = model_output.get("hidden_states")
        if hidden is None and n_layers is not None and self.is_placeholder(X):
            # the listener's stand-in for a Doc the transformer did not run on (as while
            # spaCy initializes the pipeline): zeros for last_hidden_state only
            hidden = [model_output["last_hidden_state"]] * n_layers
        if not isinstance(hidden, (list, tuple)) or not hidden:
            raise LayerInputError(
                f"{layer}: the TransformerData has no hidden states (its tensors are "
                f"{', '.join(model_output.keys())}). Set output_hidden_states = true in the "
                "transformer model's [transformer_config] (spacy-transformers.TransformerModel.v3)."
                + (
                    " This is the listener's zero placeholder (for a Doc the transformer did not "
                    "run on, as while spaCy initializes the pipeline): give trf2layers the number "
                    "of layers, trf2layers(n_layers=...)."
                    if self.is_placeholder(X)
                    else ""
                )
            )
        for j, h in enumerate(hidden):
            check_3d(layer, "hidden_states[{}] of the TransformerData", h, j)
            if tuple(h.shape) != tuple(hidden[0].shape):
                raise LayerInputError(
                    f"{layer}: hidden_states[{j}] of the TransformerData has shape "
                    f"{tuple(h.shape)}, but hidden_states[0] has {tuple(hidden[0].shape)}; "
                    "expected every layer of one shape."
                )
        # one shape for every layer: the lengths and the mask are checked once
        where = "hidden_states[0] of the TransformerData"
        lengths = _lengths(layer, where, X, tuple(hidden[0].shape))
        if self.all_layers(X):
            entries = partial(_grad, ops, X, True, "hidden_states")
            return DocLayers(list(hidden), lengths, [True] * len(hidden), entries, self)
        last = model_output.get("last_hidden_state")
        # The last hidden layer is last_hidden_state in Hugging Face models: its gradient
        # can go there; the other layers' gradients cannot reach the transformer.
        top = hidden[-1]
        same_shape = is_train and last is not None and tuple(top.shape) == tuple(last.shape)
        last_is_top = top is last or (same_shape and bool(ops.xp.array_equal(top, last)))
        reaches = [False] * (len(hidden) - 1) + [last_is_top]

        def grad_entries(dLs: "Optional[List[Floats3d]]") -> "List[Any]":
            d_last = dLs[-1] if (dLs is not None and last_is_top) else None
            return _grad(ops, X, False, "last_hidden_state", d_last)

        return DocLayers(list(hidden), lengths, reaches, grad_entries, self)

    def is_placeholder(self, X: Any) -> bool:
        """Whether X is spacy-transformers' ``TransformerData.zeros``: no real wordpieces."""
        if list(X.model_output.keys()) != ["last_hidden_state"]:
            return False
        strings = getattr(X.wordpieces, "strings", None)
        return isinstance(strings, list) and all(piece == "" for span in strings for piece in span)

    def token_alignment(self, X: Any) -> Optional[Tuple[Any, Any]]:
        # align: per token, its positions in the flattened (spans, wordpieces) tensor; a
        # token in two overlapping spans has positions in both; [CLS]/[SEP] have none
        return X.align.dataXd.reshape(-1), X.align.lengths


def _lengths(layer: str, where: str, X: Any, shape: Tuple[int, ...], at: Any = None) -> List[int]:
    """The real wordpieces of every span, checked against the attention mask (on the CPU,
    where spacy-transformers keeps wordpiece data): our layers take span ``s``'s to be its
    first ``lengths[s]`` positions (right padding, the tokenizers' default), so its first
    position must be real and its first padding one not."""
    lengths = [int(n) for n in X.wordpieces.lengths]
    check_lengths(layer, where, lengths, shape, at)
    mask = getattr(X.wordpieces, "attention_mask", None)
    if mask is not None and tuple(getattr(mask, "shape", ())) == tuple(shape[:2]):
        if any(0 < n < shape[1] and (not mask[s, 0] or mask[s, n]) for s, n in enumerate(lengths)):
            raise LayerInputError(
                f"{layer}: the attention mask of the TransformerData does not mark the first "
                f"wordpieces.lengths={lengths} positions of each span as the real ones (is the "
                "tokenizer padding on the left?). Our layers need right padding: set "
                'padding_side = "right" in the transformer\'s tokenizer_config.'
            )
    return lengths


def _grad(ops: Ops, X: Any, every: bool, key: str, d: Any) -> List[Any]:
    """The Doc's gradient entries (docs/design.md#what-backprop-hands-back): ``d`` for ``key``,
    zeros for None and every other key, each array writable and owned (the pipe adds into the
    first listener's in place). An ``AllLayersData`` (``every``) gets every tensor,
    ``hidden_states`` stacked in one array so that the pipe's ``+=`` adds two listeners' layers."""
    model_output = X.model_output
    keys = list(model_output.keys()) if every else ["last_hidden_state"]
    if not keys or keys[0] not in model_output:
        return []
    entries: Dict[str, Any] = {}
    for name in keys:
        value, given = model_output[name], d if name == key else None
        if isinstance(value, (list, tuple)):
            if given is None:
                shape = (len(value), *tuple(value[0].shape)) if len(value) else (0,)
                dtype: Any = value[0].dtype if len(value) else "float32"
                entries[name] = ops.alloc(shape, dtype=dtype)
            else:
                entries[name] = ops.xp.stack(list(given))  # a copy: owned and writable
        elif given is None:
            entries[name] = ops.alloc(tuple(value.shape), dtype=value.dtype)
        elif not getattr(getattr(given, "flags", None), "writeable", True):
            entries[name] = ops.xp.array(given)  # read-only (shared): the upstream adds into it
        else:
            entries[name] = given
    # type(X) and type(model_output): no import of spacy_transformers / transformers; every
    # field of the Hugging Face ModelOutput classes defaults to None.
    output_cls: Any = type(model_output)
    return [type(X)(wordpieces=X.wordpieces, model_output=output_cls(**entries), align=X.align)]
