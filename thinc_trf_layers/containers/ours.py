"""Our own container, ``TransformerOutput``, for plain Thinc / PyTorch users."""

from dataclasses import dataclass
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

from thinc.api import Ops, get_current_ops
from thinc.types import Floats3d, Ints1d, Ragged

from ..errors import LayerInputError, check_3d, check_index, check_lengths, input_error
from ..errors import is_torch, lengths_list
from ..gradients import zeros_view as _zeros_view
from .base import ContainerAdapter, DocLayers, DocTensor

_HF = "TransformerOutput.from_hf"
_LIST = "a non-empty list of (spans, wordpieces, width) arrays"


@dataclass
class TransformerOutput:
    """One Doc's (or sequence's) transformer output, for plain Thinc users; fields, ``align``
    and gradients: docs/transformer_outputs.md#transformeroutput."""

    tensors: List[Floats3d]
    lengths: Ints1d
    hidden_states: Optional[List[Floats3d]] = None
    align: Optional[Ragged] = None

    def __post_init__(self) -> None:
        if not hasattr(self.lengths, "shape"):
            raise input_error(
                "TransformerOutput",
                self.lengths,
                "lengths as a 1d int array with the real wordpieces of every span",
                "For one span of n wordpieces: lengths=numpy.array([n]); or build the outputs "
                "with TransformerOutput.from_hf(attention_mask, ...).",
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
        """One ``TransformerOutput`` per sequence of a Hugging Face-style batch, each one span of
        its real positions; torch tensors converted (docs/transformer_outputs.md, from_hf)."""
        ops = ops or get_current_ops()
        if last_hidden_state is None and not hidden_states:
            raise LayerInputError(
                f"{_HF}: expected last_hidden_state or hidden_states, got neither."
            )
        mask = _to_xp(ops, attention_mask)
        if getattr(mask, "ndim", None) != 2:
            raise input_error(_HF, mask, "an attention_mask of shape (batch, wordpieces)")
        layers = [_to_xp(ops, h) for h in hidden_states] if hidden_states else None
        last = _to_xp(ops, last_hidden_state)
        batch, n_pieces = (int(d) for d in mask.shape)
        for name, array in [("last_hidden_state", last)] + [
            (f"hidden_states[{i}]", h) for i, h in enumerate(layers or [])
        ]:
            if array is None:
                continue
            if getattr(array, "ndim", None) != 3 or tuple(array.shape[:2]) != (batch, n_pieces):
                expected = f"{name} of shape ({batch}, {n_pieces}, width)"
                raise input_error(_HF, array, expected + " to match the attention_mask")
            if array.dtype.kind != "f":
                raise input_error(_HF, array, f"{name} with a floating-point dtype")
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
            outputs.append(cls([first], ops.asarray1i([n]), hidden_states=own_layers))
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
            raise input_error(layer, tensors, f"TransformerOutput.tensors to be {_LIST}")
        i = check_index(layer, "the TransformerOutput", index, len(tensors))
        T = tensors[i]
        check_3d(layer, "TransformerOutput.tensors[{}]", T, i)
        lengths = lengths_list(layer, "TransformerOutput", X.lengths)
        check_lengths(layer, "TransformerOutput.tensors[{}]", lengths, T.shape, i)
        return DocTensor(T, lengths, True, lambda dT: _grad(ops, X, {i: dT}, None), self)

    def read_layers(
        self, layer: str, ops: Ops, X: Any, is_train: bool, n_layers: Optional[int]
    ) -> DocLayers:
        hidden = X.hidden_states
        if not isinstance(hidden, (list, tuple)) or not hidden:
            hf = "TransformerOutput.from_hf(..., hidden_states=...)"
            fix = f"Build the output with {hf} or set hidden_states."
            expected = f"TransformerOutput.hidden_states to be {_LIST}"
            raise input_error(layer, hidden, expected, fix)
        lengths = lengths_list(layer, "TransformerOutput", X.lengths)
        for j, h in enumerate(hidden):
            check_3d(layer, "TransformerOutput.hidden_states[{}]", h, j)
            check_lengths(layer, "TransformerOutput.hidden_states[{}]", lengths, h.shape, j)
        entries = partial(_grad, ops, X, {})  # with the layers' gradients
        return DocLayers(list(hidden), lengths, [True] * len(hidden), entries, self)

    def token_alignment(self, X: Any) -> Optional[Tuple[Any, Any]]:
        align = X.align
        if align is None:
            return None
        if not isinstance(align, Ragged):
            expected = "align to be None or a Ragged of wordpiece positions, one row per token"
            raise input_error("TransformerOutput", align, expected)
        return align.dataXd.reshape((-1,)), align.lengths


def _grad(ops: Ops, X: TransformerOutput, dTs: Dict[int, Any], dLs: Any) -> List[Any]:
    """X's gradient entry: ``dTs`` (by index) for its tensors, ``dLs`` for its hidden states,
    a read-only zero view where a gradient is None or not given."""
    d_tensors = _grads(ops, X.tensors, dTs)
    hidden = _grads(ops, X.hidden_states, dict(enumerate(dLs or [])))
    return [TransformerOutput(d_tensors, X.lengths, hidden_states=hidden, align=X.align)]


def _grads(ops: Ops, arrays: Any, given: Dict[int, Any]) -> Any:
    if arrays is None:
        return None
    return [
        _zeros_view(ops, tuple(A.shape), A.dtype) if given.get(j) is None else given[j]
        for j, A in enumerate(arrays)
    ]
