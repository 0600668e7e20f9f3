from typing import Callable, List, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Ragged

from ..errors import LayerInputError
from ..reading import backprop_rows, mix, read, reader, storage
from ..types import MixModelT, TransformerOutputT
from ..wordpieces import Wordpieces

# Sequence, not List: List is invariant, so a List[TransformerOutput] (what
# TransformerOutput.from_hf returns) would not be accepted as a List of the Union.
InT = Sequence[TransformerOutputT]


@registry.layers("thinc_trf_layers.trf2ragged.v1")
def trf2ragged(
    index: int = 0,
    *,
    mix: Optional[MixModelT] = None,
    grad_factor: float = 1.0,
    on_unreached: str = "warn",
    class_token: bool = False,
) -> Model[Sequence[TransformerOutputT], Ragged]:
    """The real wordpieces of every Doc's transformer output, span after span, as a
    ``Wordpieces`` over the padded tensors with one row per Doc. See docs/wordpieces.md."""
    name = f"trf2ragged({mix.name if isinstance(mix, Model) else index})"
    return reader(
        name,
        forward,
        index=index,
        mix=mix,
        grad_factor=grad_factor,
        on_unreached=on_unreached,
        class_token=class_token,
    )


def forward(
    model: Model[InT, Ragged], Xs: InT, is_train: bool
) -> Tuple[Ragged, Callable[[Ragged], InT]]:
    docs = read(model, Xs, is_train)
    if model.attrs["class_token"]:
        for i, doc in enumerate(docs):
            if doc.adapter.no_class_token is not None:
                raise LayerInputError(
                    f"{model.name}: item {i} of the batch is a {doc.adapter.name}: "
                    f"{doc.adapter.no_class_token}"
                )
    width, dtype = mix(model, docs, is_train)
    arrays, shapes = storage(docs, width, dtype, model.ops.xp)
    array: List[int] = []
    start: List[int] = []
    length: List[int] = []
    row_ptr = [0]
    for i, (doc, shape) in enumerate(zip(docs, shapes)):
        if shape is not None:  # a piece per span: its real wordpieces, from its first position
            array += [i] * shape[0]
            start += [s * shape[1] for s in range(shape[0])]
            length += doc.lengths
        row_ptr.append(len(length))
    pieces = (array, start, length, row_ptr)
    R = Wordpieces(model.ops, arrays, *pieces, width=width, dtype=dtype, doc_rows=[1] * len(docs))

    def backprop(dR: Ragged) -> InT:
        return backprop_rows(model, docs, R, shapes, dR)

    return R, backprop
