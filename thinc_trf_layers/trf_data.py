"""Adapters for the transformer-output containers our layers read.

A layer such as ``trf2tensor`` takes one container per Doc. Three kinds are accepted
(see ``docs/transformer_outputs.md``):

- spacy-transformers 1.x ``TransformerData`` (``doc._.trf_data`` and what its
  ``TransformerListener`` hands on): ``tensors`` is ``model_output.to_tuple()``; every
  tensor is (spans, wordpieces, width) padded to the longest span of the batch;
  ``wordpieces.lengths`` gives the real wordpieces of every span.
- spacy-curated-transformers ``DocTransformerOutput`` (``all_outputs``: one ``Ragged`` of
  wordpiece rows per layer, embeddings first, no padding, one sequence per Doc), and the
  bare ``Ragged`` of one layer that its listeners hand their inner model. Both are read
  as one span: ``(1, n_pieces, width)``.
- our own ``TransformerOutput`` for plain Thinc / PyTorch users.

Nothing here imports spaCy, spacy-transformers, spacy-curated-transformers, transformers
or torch at module level: the containers of the spaCy packages are recognised through
``sys.modules`` (an object of a class from a module that was never imported cannot
exist), and gradient containers are built with ``type(X)(...)``.

The adapters give every layer the same view of one Doc: a ``DocTensor`` (the picked
tensor, the real length of every span, and a function that wraps the tensor's gradient
into the container the upstream expects) or a ``DocLayers`` (every hidden layer).
"""
import math
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Set, Tuple, cast

from thinc.api import Ops, get_array_module, get_current_ops
from thinc.types import Floats3d, Ints1d, Ragged

from .util import LayerInputError, describe
from .util import zeros_view as _zeros_view

SPACY_TRANSFORMERS = "spacy-transformers TransformerData"
CURATED = "spacy-curated-transformers DocTransformerOutput"
RAGGED = "Ragged (one layer of spacy-curated-transformers wordpieces)"
OURS = "thinc_trf_layers TransformerOutput"

#: What the error messages list as accepted.
SUPPORTED = (
    f"{SPACY_TRANSFORMERS}, {CURATED}, a {RAGGED}, or a {OURS}"
)


@dataclass
class TransformerOutput:
    """The output of a transformer for one Doc (or one sequence), for plain Thinc users.

    tensors: the outputs, each a (spans, wordpieces, width) array padded along the
        wordpiece axis; by convention ``tensors[0]`` is the last hidden state, which is
        what ``trf2tensor()``, ``trf_pool()`` and ``cls_pool()`` read by default.
    lengths: the real (unpadded) wordpieces of every span, an int array of shape (spans,).
        Span ``s`` holds its real wordpieces at positions ``0 .. lengths[s] - 1``.
    hidden_states: optional, every hidden layer (embeddings first, last layer last), each
        (spans, wordpieces, width) with the same ``lengths``; what ``trf2layers()`` reads.

    A Doc with no spans has tensors of shape (0, wordpieces, width) and empty lengths.
    Build a batch from a Hugging Face model's output with ``TransformerOutput.from_hf``.

    In a gradient returned by our layers, the entries that received no gradient are
    read-only zero views (``xp.broadcast_to``): they cost no memory; do not write to them.
    """

    tensors: List[Floats3d]
    lengths: Ints1d
    hidden_states: Optional[List[Floats3d]] = None

    @classmethod
    def from_hf(
        cls,
        attention_mask: Any,
        *,
        last_hidden_state: Any = None,
        hidden_states: Optional[Sequence[Any]] = None,
        ops: Optional[Ops] = None,
    ) -> List["TransformerOutput"]:
        """One ``TransformerOutput`` per sequence of a Hugging Face-style batch.

        attention_mask: (batch, wordpieces), nonzero at real positions (NumPy, CuPy or
            torch). The padding side does not matter: each sequence keeps its real
            positions, in order, as one span of ``mask.sum()`` wordpieces. When the real
            positions are the first ones (right padding), the tensors are views of the
            batch's arrays; otherwise they are gathered copies.
        last_hidden_state: (batch, wordpieces, width), becomes ``tensors[0]``.
        hidden_states: the per-layer outputs (``output_hidden_states=True``), each
            (batch, wordpieces, width); kept as ``hidden_states``. When
            ``last_hidden_state`` is not given, ``tensors[0]`` is the last of them.
        ops: where the arrays go (default: the current Ops). torch tensors are converted
            with ``torch2xp`` (detached: no gradient flows back into torch from here).
        """
        ops = ops or get_current_ops()
        if last_hidden_state is None and not hidden_states:
            raise LayerInputError(
                "TransformerOutput.from_hf: expected last_hidden_state or hidden_states, got neither."
            )
        mask = _to_xp(ops, attention_mask)
        if getattr(mask, "ndim", None) != 2:
            raise LayerInputError(
                "TransformerOutput.from_hf: expected an attention_mask of shape (batch, wordpieces), "
                f"got {describe(mask)}."
            )
        layers = [_to_xp(ops, h) for h in hidden_states] if hidden_states else None
        last = _to_xp(ops, last_hidden_state) if last_hidden_state is not None else None
        batch, n_pieces = (int(d) for d in mask.shape)
        for name, array in [("last_hidden_state", last)] + [
            (f"hidden_states[{i}]", h) for i, h in enumerate(layers or [])
        ]:
            if array is None:
                continue
            if getattr(array, "ndim", None) != 3 or tuple(array.shape[:2]) != (batch, n_pieces):
                raise LayerInputError(
                    f"TransformerOutput.from_hf: expected {name} of shape ({batch}, {n_pieces}, width) "
                    f"to match the attention_mask, got {describe(array)}."
                )
            if array.dtype.kind != "f":
                raise LayerInputError(
                    f"TransformerOutput.from_hf: expected {name} with a floating-point dtype, "
                    f"got {describe(array)}."
                )
        real = cast(Any, ops).to_numpy(mask) != 0
        outputs = []
        for i in range(batch):
            positions = real[i].nonzero()[0]
            n = int(positions.size)
            contiguous = n == 0 or int(positions[-1]) == n - 1

            def take(array: Any, i: int = i, n: int = n, positions: Any = positions) -> Floats3d:
                if contiguous:
                    return cast(Floats3d, array[i : i + 1, :n])
                index = ops.asarray1i(positions)
                return cast(Floats3d, ops.xp.ascontiguousarray(array[i][index][None]))

            own_layers = [take(h) for h in layers] if layers is not None else None
            first = take(last) if last is not None else cast(List[Floats3d], own_layers)[-1]
            outputs.append(
                cls(tensors=[first], lengths=ops.asarray1i([n]), hidden_states=own_layers)
            )
        return outputs


def _to_xp(ops: Ops, array: Any) -> Any:
    if type(array).__module__.split(".")[0] == "torch":
        from thinc.api import torch2xp

        return torch2xp(array.detach())
    return ops.asarray(array) if hasattr(array, "shape") else array


# --- what the layers see ------------------------------------------------------------


@dataclass
class DocTensor:
    """One tensor of one Doc's container, as the layers see it."""

    #: (spans, wordpieces, width), padded along the wordpiece axis; None for a
    #: spacy-transformers Doc with no output at all (an empty Doc)
    tensor: Optional[Floats3d]
    #: the real wordpieces of every span
    lengths: List[int]
    #: whether the upstream can carry a gradient for this tensor into the transformer
    reaches: bool
    #: the gradient container for a gradient of ``tensor`` (None: no gradient, e.g.
    #: grad_factor 0). Returns None where the upstream wants no entry for this Doc.
    to_grad: Callable[[Optional[Floats3d]], Any]
    #: name of the container kind, for messages
    kind: str


@dataclass
class DocLayers:
    """Every hidden layer of one Doc's container (embeddings first)."""

    layers: List[Floats3d]
    lengths: List[int]
    #: for each layer: whether the upstream can carry its gradient into the transformer
    reaches: List[bool]
    to_grad: Callable[[Optional[List[Floats3d]]], Any]
    kind: str


def _module_class(module: str, name: str) -> Optional[type]:
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def container_kind(X: Any) -> Optional[str]:
    """The kind of a container, or None when it is not one we accept."""
    if isinstance(X, TransformerOutput):
        return OURS
    if isinstance(X, Ragged):
        return RAGGED
    trf_data = _module_class("spacy_transformers.data_classes", "TransformerData")
    if trf_data is not None and isinstance(X, trf_data):
        return SPACY_TRANSFORMERS
    curated = _module_class("spacy_curated_transformers.models.output", "DocTransformerOutput")
    if curated is not None and isinstance(X, curated):
        return CURATED
    return None


def unsupported(layer: str, X: Any, i: int) -> LayerInputError:
    return LayerInputError(
        f"{layer}: item {i} of the batch is {describe(X)}; expected one transformer output per "
        f"Doc: a {SUPPORTED}. In spaCy, put a listener in front that hands on each Doc's "
        "transformer output (spacy-transformers.TransformerListener.v1 does not: it pools "
        "wordpieces to token vectors), or read doc._.trf_data."
    )


def check_batch(layer: str, Xs: Any) -> List[str]:
    """Check that ``Xs`` is a list of accepted containers; return their kinds."""
    if not isinstance(Xs, (list, tuple)):
        raise LayerInputError(
            f"{layer}: expected a list with one transformer output per Doc ({SUPPORTED}), "
            f"got {describe(Xs)}."
        )
    kinds = []
    for i, X in enumerate(Xs):
        kind = container_kind(X)
        if kind is None:
            raise unsupported(layer, X, i)
        kinds.append(kind)
    return kinds


def _dtype_kind(array: Any) -> Optional[str]:
    """The NumPy dtype kind of an array ("f", "i", ...); None for anything else (a
    torch tensor's dtype has no kind: it is not an array our layers can use)."""
    kind = getattr(getattr(array, "dtype", None), "kind", None)
    return kind if isinstance(kind, str) else None


_TORCH_HINT = (
    " Our layers read NumPy or CuPy arrays: build the container from torch tensors with"
    " TransformerOutput.from_hf, which converts them."
)


def _check_3d(layer: str, where: str, T: Any) -> None:
    if getattr(T, "ndim", None) != 3 or _dtype_kind(T) != "f":
        hint = _TORCH_HINT if type(T).__module__.split(".")[0] == "torch" else ""
        raise LayerInputError(
            f"{layer}: expected {where} to be a floating-point array of shape "
            f"(spans, wordpieces, width), got {describe(T)}.{hint}"
        )


def _check_lengths(layer: str, where: str, lengths: List[int], shape: Tuple[int, ...]) -> None:
    n_spans, n_pieces = int(shape[0]), int(shape[1])
    if len(lengths) != n_spans or any(not 0 <= n <= n_pieces for n in lengths):
        raise LayerInputError(
            f"{layer}: {where} has shape {tuple(shape)} but its span lengths are {lengths}; "
            f"expected {n_spans} lengths, each in [0, {n_pieces}]."
        )


def _check_index(layer: str, where: str, index: int, n: int, hint: str = "") -> int:
    if not -n <= index < n:
        raise LayerInputError(
            f"{layer}: tensor index {index} is out of range for {where}, which has {n} "
            f"tensor(s); expected an index in [{-n}, {n}).{hint}"
        )
    return index % n


def _lengths_list(layer: str, where: str, lengths: Any) -> List[int]:
    lengths = cast(Any, lengths)
    if getattr(lengths, "ndim", 1) != 1 or (
        hasattr(lengths, "dtype") and (_dtype_kind(lengths) or "") not in ("i", "u")
    ):
        hint = _TORCH_HINT if type(lengths).__module__.split(".")[0] == "torch" else ""
        raise LayerInputError(
            f"{layer}: expected {where} lengths as a 1d int array, got {describe(lengths)}.{hint}"
        )
    if hasattr(lengths, "tolist"):
        return [int(n) for n in lengths.tolist()]
    return [int(n) for n in lengths]


# --- one tensor -----------------------------------------------------------------------


def read_tensor(layer: str, ops: Ops, X: Any, index: int, kind: str) -> DocTensor:
    """The tensor ``index`` of one Doc's container (0: the last hidden state)."""
    if kind == OURS:
        return _ours_tensor(layer, ops, X, index)
    if kind == SPACY_TRANSFORMERS:
        return _st_tensor(layer, ops, X, index)
    if kind == CURATED:
        return _curated_tensor(layer, ops, X, index)
    return _ragged_tensor(layer, ops, X, index)


def _ours_tensor(layer: str, ops: Ops, X: TransformerOutput, index: int) -> DocTensor:
    tensors = X.tensors
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise LayerInputError(
            f"{layer}: expected TransformerOutput.tensors to be a non-empty list of "
            f"(spans, wordpieces, width) arrays, got {describe(tensors)}."
        )
    i = _check_index(layer, "the TransformerOutput", index, len(tensors))
    T = tensors[i]
    _check_3d(layer, f"TransformerOutput.tensors[{i}]", T)
    lengths = _lengths_list(layer, "TransformerOutput", X.lengths)
    _check_lengths(layer, f"TransformerOutput.tensors[{i}]", lengths, tuple(T.shape))

    def to_grad(dT: Optional[Floats3d]) -> TransformerOutput:
        grads = [
            dT if (j == i and dT is not None) else _zeros_view(ops, tuple(t.shape), t.dtype)
            for j, t in enumerate(tensors)
        ]
        hidden = X.hidden_states
        d_hidden = (
            [_zeros_view(ops, tuple(h.shape), h.dtype) for h in hidden] if hidden is not None else None
        )
        return TransformerOutput(tensors=grads, lengths=X.lengths, hidden_states=d_hidden)

    return DocTensor(T, lengths, True, to_grad, OURS)


def _st_tensor(layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
    model_output = X.model_output
    keys = list(model_output.keys())
    tensors = list(model_output.values())
    if not tensors:
        # An empty Doc: spacy-transformers gives it no output and wants no gradient.
        return DocTensor(None, [], True, lambda dT: None, SPACY_TRANSFORMERS)
    i = _check_index(
        layer,
        f"the TransformerData (tensors: {', '.join(keys)})",
        index,
        len(tensors),
    )
    T = tensors[i]
    if isinstance(T, (list, tuple)):
        raise LayerInputError(
            f"{layer}: tensor {index} of the TransformerData ({keys[i]!r}) is a list of {len(T)} "
            "arrays, one per layer; use trf2layers() to read every hidden layer."
        )
    _check_3d(layer, f"tensor {index} of the TransformerData ({keys[i]!r})", T)
    lengths = _st_lengths(layer, f"tensor {index} of the TransformerData ({keys[i]!r})", X, tuple(T.shape))
    reaches = keys[i] == "last_hidden_state"

    def to_grad(dT: Optional[Floats3d]) -> Any:
        return _st_grad(ops, X, dT if reaches else None)

    return DocTensor(T, lengths, reaches, to_grad, SPACY_TRANSFORMERS)


def _st_lengths(layer: str, where: str, X: Any, shape: Tuple[int, ...]) -> List[int]:
    """The real wordpieces of every span, checked against the attention mask.

    Our layers take span ``s``'s real wordpieces to be its first ``lengths[s]`` positions
    (right padding, the tokenizers' default). The mask is on the CPU (spacy-transformers
    keeps wordpiece data there), so the check is cheap.
    """
    lengths = [int(n) for n in X.wordpieces.lengths]
    _check_lengths(layer, where, lengths, shape)
    mask = getattr(X.wordpieces, "attention_mask", None)
    if mask is not None and tuple(getattr(mask, "shape", ())) == tuple(shape[:2]) and len(lengths):
        xp = get_array_module(mask)  # type: ignore[no-untyped-call]
        real = xp.asarray(mask) != 0
        prefix = xp.arange(shape[1])[None, :] < xp.asarray(lengths)[:, None]
        if not bool((real == prefix).all()):
            raise LayerInputError(
                f"{layer}: the attention mask of the TransformerData does not mark the first "
                f"wordpieces.lengths={lengths} positions of each span as the real ones (is the "
                "tokenizer padding on the left?). Our layers need right padding: set "
                'padding_side = "right" in the transformer\'s tokenizer_config.'
            )
    return lengths


def _st_grad(ops: Ops, X: Any, d_last: Optional[Floats3d]) -> Any:
    """The gradient container spacy-transformers' Transformer component reads.

    Its listener callback reads ``tensors`` of every gradient, adds later listeners'
    gradients into the first one's arrays in place and backpropagates the first tensor
    into ``last_hidden_state`` alone. So the gradient holds exactly one, writable tensor:
    the gradient of ``last_hidden_state`` (zeros when it got none). Docs without a
    ``last_hidden_state`` (empty Docs) get no entry, as in spacy-transformers' own
    ``trfs2arrays``.
    """
    if "last_hidden_state" not in X.model_output:
        return None
    last = X.model_output["last_hidden_state"]
    if d_last is None:
        d_last = cast(Floats3d, ops.alloc(tuple(last.shape), dtype=last.dtype))
    elif not getattr(getattr(d_last, "flags", None), "writeable", True):
        d_last = ops.xp.array(d_last)  # a read-only (shared) gradient: the upstream adds into it
    # type(X) and type(model_output): no import of spacy_transformers / transformers; every
    # field of the Hugging Face ModelOutput classes defaults to None.
    output_cls: Any = type(X.model_output)
    return type(X)(
        wordpieces=X.wordpieces, model_output=output_cls(last_hidden_state=d_last), align=X.align
    )


def _curated_tensor(layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
    layers = list(X.all_outputs)
    if not layers:
        raise LayerInputError(f"{layer}: the {CURATED} has no layers (all_outputs is empty).")
    _check_index(
        layer,
        f"a {CURATED}",
        index,
        1,
        " It has one output tensor, its last hidden layer (index 0); use trf2layers() for the others.",
    )
    last = layers[-1]
    T, lengths = _ragged_as_span(layer, f"{CURATED}.all_outputs[-1]", last)

    def to_grad(dT: Optional[Floats3d]) -> Any:
        grads = [_zeros_ragged(ops, r) for r in layers[:-1]]
        grads.append(_ragged_grad(ops, last, dT))
        return type(X)(all_outputs=grads, last_layer_only=X.last_layer_only)

    return DocTensor(T, lengths, True, to_grad, CURATED)


def _ragged_tensor(layer: str, ops: Ops, X: Ragged, index: int) -> DocTensor:
    _check_index(layer, "a Ragged", index, 1, " A Ragged holds one layer (index 0).")
    T, lengths = _ragged_as_span(layer, "the Ragged", X)

    def to_grad(dT: Optional[Floats3d]) -> Ragged:
        return _ragged_grad(ops, X, dT)

    return DocTensor(T, lengths, True, to_grad, RAGGED)


def _ragged_as_span(layer: str, where: str, R: Any) -> Tuple[Floats3d, List[int]]:
    if not isinstance(R, Ragged):
        raise LayerInputError(f"{layer}: expected {where} to be a Ragged, got {describe(R)}.")
    data: Any = R.dataXd
    if getattr(data, "ndim", None) != 2 or data.dtype.kind != "f":
        raise LayerInputError(
            f"{layer}: expected {where} to hold floating-point data of shape (wordpieces, width), "
            f"got {describe(R)}."
        )
    n, width = int(data.shape[0]), int(data.shape[1])
    return cast(Floats3d, data.reshape((1, n, width))), [n]


def _ragged_grad(ops: Ops, R: Ragged, dT: Optional[Floats3d]) -> Ragged:
    data = R.dataXd
    if dT is None:
        return Ragged(_zeros_view(ops, tuple(data.shape), data.dtype), R.lengths)
    return Ragged(dT.reshape(tuple(data.shape)), R.lengths)


def _zeros_ragged(ops: Ops, R: Any) -> Ragged:
    return Ragged(_zeros_view(ops, tuple(R.dataXd.shape), R.dataXd.dtype), R.lengths)


# --- every layer ----------------------------------------------------------------------


def read_layers(
    layer: str, ops: Ops, X: Any, kind: str, is_train: bool, n_layers: Optional[int] = None
) -> DocLayers:
    """Every hidden layer of one Doc's container, embeddings first.

    n_layers: the expected number of layers; spacy-transformers' zero placeholders (its
    listener's stand-in for Docs the transformer did not run on) are read as that many
    zero layers.
    """
    if kind == OURS:
        return _ours_layers(layer, ops, X)
    if kind == SPACY_TRANSFORMERS:
        return _st_layers(layer, ops, X, is_train, n_layers)
    if kind == CURATED:
        return _curated_layers(layer, ops, X)
    raise LayerInputError(
        f"{layer}: a Ragged holds one layer of wordpieces; to read every hidden layer, give a "
        f"{CURATED} (with all_layer_outputs = true), a {SPACY_TRANSFORMERS} (with "
        f"output_hidden_states = true) or a {OURS} with hidden_states."
    )


def _ours_layers(layer: str, ops: Ops, X: TransformerOutput) -> DocLayers:
    hidden = X.hidden_states
    if not isinstance(hidden, (list, tuple)) or not hidden:
        raise LayerInputError(
            f"{layer}: expected TransformerOutput.hidden_states to be a non-empty list of "
            f"(spans, wordpieces, width) arrays, got {describe(hidden) if hidden is not None else 'None'}. "
            "Build the output with TransformerOutput.from_hf(..., hidden_states=...) or set hidden_states."
        )
    lengths = _lengths_list(layer, "TransformerOutput", X.lengths)
    for j, h in enumerate(hidden):
        _check_3d(layer, f"TransformerOutput.hidden_states[{j}]", h)
        _check_lengths(layer, f"TransformerOutput.hidden_states[{j}]", lengths, tuple(h.shape))

    def to_grad(dLs: Optional[List[Floats3d]]) -> TransformerOutput:
        d_hidden = [
            dLs[j] if dLs is not None else _zeros_view(ops, tuple(h.shape), h.dtype)
            for j, h in enumerate(hidden)
        ]
        d_tensors = [_zeros_view(ops, tuple(t.shape), t.dtype) for t in X.tensors]
        return TransformerOutput(tensors=d_tensors, lengths=X.lengths, hidden_states=d_hidden)

    return DocLayers(list(hidden), lengths, [True] * len(hidden), to_grad, OURS)


def _is_listener_placeholder(X: Any) -> bool:
    """Whether X is spacy-transformers' ``TransformerData.zeros``: no real wordpieces."""
    strings = getattr(X.wordpieces, "strings", None)
    return (
        list(X.model_output.keys()) == ["last_hidden_state"]
        and isinstance(strings, list)
        and all(piece == "" for span in strings for piece in span)
    )


def _st_layers(layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]) -> DocLayers:
    model_output = X.model_output
    if not list(model_output.keys()):
        return DocLayers([], [], [], lambda dLs: None, SPACY_TRANSFORMERS)
    hidden = model_output.get("hidden_states")
    if hidden is None and n_layers is not None and _is_listener_placeholder(X):
        # spacy-transformers' listener stands in for a Doc the transformer did not run on
        # (e.g. when spaCy initializes the pipeline) with zeros for last_hidden_state only
        hidden = [model_output["last_hidden_state"]] * n_layers
    if not isinstance(hidden, (list, tuple)) or not hidden:
        raise LayerInputError(
            f"{layer}: the TransformerData has no hidden states (its tensors are "
            f"{', '.join(model_output.keys())}). Set output_hidden_states = true in the "
            "transformer model's [transformer_config] (spacy-transformers.TransformerModel.v3). "
            "If this is the listener's zero placeholder (while spaCy initializes the pipeline), "
            "give trf2layers the number of layers: trf2layers(n_layers=...)."
        )
    lengths: List[int] = []
    for j, h in enumerate(hidden):
        _check_3d(layer, f"hidden_states[{j}] of the TransformerData", h)
        lengths = _st_lengths(layer, f"hidden_states[{j}] of the TransformerData", X, tuple(h.shape))
    last = model_output.get("last_hidden_state")
    # spacy-transformers backpropagates into last_hidden_state only. The last hidden
    # layer is the same tensor in Hugging Face models: its gradient can go there.
    top = hidden[-1]
    last_is_top = last is not None and (
        top is last
        or (is_train and tuple(top.shape) == tuple(last.shape) and bool(ops.xp.array_equal(top, last)))
    )
    reaches = [False] * (len(hidden) - 1) + [last_is_top]

    def to_grad(dLs: Optional[List[Floats3d]]) -> Any:
        return _st_grad(ops, X, dLs[-1] if (dLs is not None and last_is_top) else None)

    return DocLayers(list(hidden), lengths, reaches, to_grad, SPACY_TRANSFORMERS)


def _curated_layers(layer: str, ops: Ops, X: Any) -> DocLayers:
    layers = list(X.all_outputs)
    if X.last_layer_only or not layers:
        raise LayerInputError(
            f"{layer}: the {CURATED} holds only its last layer (last_layer_only={X.last_layer_only}, "
            f"{len(layers)} layer(s)); set all_layer_outputs = true on the transformer pipe "
            "to read every hidden layer."
        )
    spans = [_ragged_as_span(layer, f"{CURATED}.all_outputs[{j}]", r) for j, r in enumerate(layers)]
    n = spans[0][1]
    for j, (T, lengths) in enumerate(spans):
        if lengths != n or T.shape[2] != spans[0][0].shape[2]:
            raise LayerInputError(
                f"{layer}: the layers of the {CURATED} disagree: all_outputs[0] has shape "
                f"{tuple(spans[0][0].shape[1:])}, all_outputs[{j}] has {tuple(T.shape[1:])}."
            )

    def to_grad(dLs: Optional[List[Floats3d]]) -> Any:
        grads = [_ragged_grad(ops, r, dLs[j] if dLs is not None else None) for j, r in enumerate(layers)]
        return type(X)(all_outputs=grads, last_layer_only=X.last_layer_only)

    return DocLayers([T for T, _ in spans], n, [True] * len(layers), to_grad, CURATED)


# --- helpers shared by the layers -------------------------------------------------------


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


def batch_width(docs: Sequence[DocTensor]) -> Tuple[int, Any]:
    """Width and dtype of the batch's tensors, for Docs without one (0, float32 if none)."""
    for doc in docs:
        if doc.tensor is not None:
            return int(doc.tensor.shape[2]), doc.tensor.dtype
    return 0, "float32"


def scale(ops: Ops, dY: Any, grad_factor: float) -> Any:
    """``dY * grad_factor`` in dY's dtype (dY itself when the factor is 1)."""
    if grad_factor == 1.0:
        return dY
    return (dY * grad_factor).astype(dY.dtype, copy=False)


__all__ = [
    "TransformerOutput",
    "TransformerGradientWarning",
    "DocTensor",
    "DocLayers",
    "container_kind",
    "check_batch",
    "read_tensor",
    "read_layers",
    "SUPPORTED",
]
