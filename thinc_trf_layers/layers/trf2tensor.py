from typing import Any, Callable, List, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats3d

from ..containers.base import check_grad_factor, check_int, read_tensors, tensor_gradients
from ..types import TransformerOutputT
from ..util import check_list_grad
from ..wordpieces import batch_layout

# Sequence, not List: List is invariant, so a List[TransformerOutput] (what
# TransformerOutput.from_hf returns) would not be accepted as a List of the Union.
InT = Sequence[TransformerOutputT]
OutT = List[Floats3d]


@registry.layers("thinc_trf_layers.trf2tensor.v1")
def trf2tensor(
    index: int = 0, *, grad_factor: float = 1.0
) -> Model[Sequence[TransformerOutputT], List[Floats3d]]:
    """Pick tensor ``index`` of every Doc's transformer output: one (spans, wordpieces,
    width) array per Doc, padding included (``trf2ragged`` drops it).

    ``index`` 0 is the last hidden state for every container: spacy-transformers
    ``TransformerData.tensors[index]`` (which must be a 3d array, not the pooler output
    or the list of hidden states), our ``TransformerOutput.tensors[index]``; a
    spacy-curated-transformers ``DocTransformerOutput`` or ``Ragged`` has one tensor, its
    last layer, given as one span ``(1, n_pieces, width)``.

    The output arrays are the container's own arrays (no copy). Backprop hands back one
    gradient container per Doc, of the input's type, carrying a gradient for the picked
    tensor only, scaled by ``grad_factor`` (0 freezes the transformer). spacy-transformers
    can only backpropagate into ``last_hidden_state``: picking another tensor warns once
    when training, and Docs without an output (empty Docs) get no entry in the gradient
    list, as spacy-transformers wants.
    """
    name = f"trf2tensor({index})"
    check_int(name, "index", index)
    factor = check_grad_factor(name, grad_factor)
    return Model(name, forward, attrs={"index": index, "grad_factor": factor})


def forward(model: Model[InT, OutT], Xs: InT, is_train: bool) -> Tuple[OutT, Callable[[OutT], InT]]:
    index: int = model.attrs["index"]
    grad_factor: float = model.attrs["grad_factor"]
    docs = read_tensors(model.name, model.ops, Xs, index)
    width, dtype = batch_layout(model.name, docs)
    Ys: OutT = [
        doc.tensor if doc.tensor is not None else model.ops.alloc3f(0, 0, width, dtype=dtype)
        for doc in docs
    ]
    shapes = [tuple(Y.shape) for Y in Ys]
    dtypes = [Y.dtype for Y in Ys]

    def backprop(dYs: OutT) -> InT:
        check_list_grad(model.name, dYs, shapes, dtypes)
        grads: List[Any] = list(dYs)
        out: List[TransformerOutputT] = tensor_gradients(
            model.name, model.id, index, docs, grads, grad_factor, owned=False
        )
        return out

    return Ys, backprop
