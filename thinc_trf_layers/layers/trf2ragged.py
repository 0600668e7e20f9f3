from typing import Callable, List, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Ragged

from ..containers.base import check_grad_factor, check_int, check_reach, read_tensors, tensor_gradients
from ..types import TransformerOutputT
from ..wordpieces import Wordpieces

# Sequence, not List: List is invariant, so a List[TransformerOutput] (what
# TransformerOutput.from_hf returns) would not be accepted as a List of the Union.
InT = Sequence[TransformerOutputT]


@registry.layers("thinc_trf_layers.trf2ragged.v1")
def trf2ragged(index: int = 0, *, grad_factor: float = 1.0) -> Model[Sequence[TransformerOutputT], Ragged]:
    """The real wordpieces of tensor ``index`` of every Doc's transformer output, as a
    ``Ragged`` with one row per Doc: the real (unpadded) wordpieces of each of its spans,
    span after span; padding never counts. ``trf_pool(p)`` is ``chain(trf2ragged(), p)``.

    The Ragged is a ``Wordpieces``: it refers to the padded tensors instead of copying
    the rows. A layer that reads its ``data`` gets the rows, gathered once; our poolings
    run on the padded tensors where they lie, and their gradient is written once into
    one padded gradient per Doc. When a long Doc was split into overlapping spans
    (spacy-transformers' strided spans), every span's real wordpieces are in the row, so
    wordpieces in an overlap count once per span that holds them, and so do each span's
    [CLS] and [SEP] (spacy-curated-transformers merges overlapping spans itself).

    Backprop takes the gradient of the Ragged (any Ragged of the same rows, or the
    ``Wordpieces`` gradient of our poolings) and hands back one gradient container per
    Doc, of the input's type, carrying a gradient for tensor ``index`` only, scaled by
    ``grad_factor`` (0 freezes the transformer); see ``trf2tensor`` for the rules per
    container. A batch that mixes widths or dtypes is refused.
    """
    name = f"trf2ragged({index})"
    check_int(name, "index", index)
    factor = check_grad_factor(name, grad_factor)
    return Model(name, forward, attrs={"index": index, "grad_factor": factor})


def forward(model: Model[InT, Ragged], Xs: InT, is_train: bool) -> Tuple[Ragged, Callable[[Ragged], InT]]:
    index: int = model.attrs["index"]
    grad_factor: float = model.attrs["grad_factor"]
    docs = read_tensors(model.name, model.ops, Xs, index)
    check_reach(model, is_train, grad_factor, all(doc.reaches for doc in docs), f"tensor {index}")
    R = Wordpieces.from_docs(model.name, model.ops, docs)

    def backprop(dR: Ragged) -> InT:
        grads = R.padded_grads(model.name, dR) if grad_factor != 0.0 else [None] * len(docs)
        out: List[TransformerOutputT] = tensor_gradients(
            model.name, model.id, index, docs, grads, grad_factor, owned=True
        )
        return out

    return R, backprop
