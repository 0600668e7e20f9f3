"""Our own container, ``TransformerOutput``, for plain Thinc / PyTorch users."""
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, cast

from thinc.api import Ops, get_current_ops
from thinc.types import Floats3d, Ints1d, Ragged

from ..errors import LayerInputError, check_3d, check_index, check_lengths, describe, is_torch, lengths_list
from ..gradients import zeros_view as _zeros_view
from .base import ContainerAdapter, DocLayers, DocTensor


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
    align: optional, the wordpieces of every token (word) of the Doc, for ``token_pool``
        and ``span_pool``: a ``Ragged`` with one row per token holding the positions of
        its wordpieces in the tensors seen as (spans * wordpieces) rows (as
        spacy-transformers' ``align``); a token with no wordpiece has an empty row.

    A Doc with no spans has tensors of shape (0, wordpieces, width) and empty lengths.
    Build a batch from a Hugging Face model's output with ``TransformerOutput.from_hf``.

    In a gradient returned by our layers, the entries that received no gradient are
    read-only zero views (``xp.broadcast_to``): they cost no memory; do not write to them.
    """

    tensors: List[Floats3d]
    lengths: Ints1d
    hidden_states: Optional[List[Floats3d]] = None
    align: Optional[Ragged] = None

    def __post_init__(self) -> None:
        if self.lengths is None or not hasattr(self.lengths, "shape"):
            raise LayerInputError(
                f"TransformerOutput: expected lengths as a 1d int array with the real wordpieces "
                f"of every span, got {describe(self.lengths)}. "
                "For one span of n wordpieces: lengths=numpy.array([n]); or build the outputs "
                "with TransformerOutput.from_hf(attention_mask, ...)."
            )

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
            with ``torch2xp`` (detached: no gradient flows back into torch from here);
            bfloat16 ones become float32 first (NumPy and CuPy have no bfloat16), so the
            layers compute on them in float32.
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
    if is_torch(array):
        from thinc.api import torch2xp

        array = array.detach()
        # NumPy and CuPy have no bfloat16: float32 holds every bfloat16 value exactly
        return torch2xp(array.float() if str(array.dtype) == "torch.bfloat16" else array)
    return ops.asarray(array) if hasattr(array, "shape") else array


class OursAdapter(ContainerAdapter):
    """``TransformerOutput``: ``tensors[index]`` and ``hidden_states`` as they are."""

    name = "thinc_trf_layers TransformerOutput"

    def accepts(self, X: Any) -> bool:
        return isinstance(X, TransformerOutput)

    def read_tensor(self, layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
        tensors = X.tensors
        if not isinstance(tensors, (list, tuple)) or not tensors:
            raise LayerInputError(
                f"{layer}: expected TransformerOutput.tensors to be a non-empty list of "
                f"(spans, wordpieces, width) arrays, got {describe(tensors)}."
            )
        i = check_index(layer, "the TransformerOutput", index, len(tensors))
        T = tensors[i]
        check_3d(layer, "TransformerOutput.tensors[{}]", T, i)
        lengths = lengths_list(layer, "TransformerOutput", X.lengths)
        check_lengths(layer, "TransformerOutput.tensors[{}]", lengths, T.shape, i)

        # (string annotations: a nested def evaluates them on every call otherwise)
        def grad_entries(dT: "Optional[Floats3d]") -> "List[Any]":
            if dT is not None and len(tensors) == 1:
                grads = [dT]
            else:
                grads = [
                    dT if (j == i and dT is not None) else _zeros_view(ops, tuple(t.shape), t.dtype)
                    for j, t in enumerate(tensors)
                ]
            return [TransformerOutput(tensors=grads, lengths=X.lengths, hidden_states=_zero_layers(ops, X), align=X.align)]

        return DocTensor(T, lengths, True, grad_entries, self)

    def read_layers(self, layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]) -> DocLayers:
        hidden = X.hidden_states
        if not isinstance(hidden, (list, tuple)) or not hidden:
            raise LayerInputError(
                f"{layer}: expected TransformerOutput.hidden_states to be a non-empty list of "
                f"(spans, wordpieces, width) arrays, got {describe(hidden)}. "
                "Build the output with TransformerOutput.from_hf(..., hidden_states=...) or set hidden_states."
            )
        lengths = lengths_list(layer, "TransformerOutput", X.lengths)
        for j, h in enumerate(hidden):
            check_3d(layer, "TransformerOutput.hidden_states[{}]", h, j)
            check_lengths(layer, "TransformerOutput.hidden_states[{}]", lengths, h.shape, j)

        def grad_entries(dLs: "Optional[List[Floats3d]]") -> "List[Any]":
            d_hidden = [
                dLs[j] if dLs is not None else _zeros_view(ops, tuple(h.shape), h.dtype)
                for j, h in enumerate(hidden)
            ]
            d_tensors = [_zeros_view(ops, tuple(t.shape), t.dtype) for t in X.tensors]
            return [TransformerOutput(tensors=d_tensors, lengths=X.lengths, hidden_states=d_hidden, align=X.align)]

        return DocLayers(list(hidden), lengths, [True] * len(hidden), grad_entries, self)

    def token_alignment(self, X: Any) -> Optional[Tuple[Any, Any]]:
        align = X.align
        if align is None:
            return None
        if not isinstance(align, Ragged):
            raise LayerInputError(
                f"TransformerOutput: expected align to be None or a Ragged of wordpiece positions, one "
                f"row per token, got {describe(align)}."
            )
        return align.dataXd.reshape((-1,)), align.lengths


def _zero_layers(ops: Ops, X: TransformerOutput) -> Optional[List[Floats3d]]:
    if X.hidden_states is None:
        return None
    return [_zeros_view(ops, tuple(h.shape), h.dtype) for h in X.hidden_states]


__all__ = ["TransformerOutput", "OursAdapter"]
