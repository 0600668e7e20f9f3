from typing import Callable, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Ragged

from ..alignment import runs, token_rows
from ..reading import backprop_rows, mix, read, reader, storage
from ..types import MixModelT, TransformerOutputT
from ..wordpieces import Wordpieces

InT = Sequence[TransformerOutputT]


@registry.layers("thinc_trf_layers.trf2tokens.v1")
def trf2tokens(
    index: int = 0,
    *,
    mix: Optional[MixModelT] = None,
    grad_factor: float = 1.0,
    on_unreached: str = "warn",
) -> Model[Sequence[TransformerOutputT], Ragged]:
    """The wordpieces of every spaCy token of every Doc, a ``Wordpieces`` with one row per
    token (``doc_rows``: the tokens of each Doc). See docs/tokens_and_spans.md."""
    name = f"trf2tokens({mix.name if isinstance(mix, Model) else index})"
    return reader(
        name, forward, index=index, mix=mix, grad_factor=grad_factor, on_unreached=on_unreached
    )


def forward(
    model: Model[InT, Ragged], Xs: InT, is_train: bool
) -> Tuple[Ragged, Callable[[Ragged], InT]]:
    docs = read(model, Xs, is_train)
    positions, owner, counts, n_tokens = token_rows(model.name, docs)  # checked before a mix runs
    width, dtype = mix(model, docs, is_train)
    arrays, shapes = storage(docs, width, dtype, model.ops.xp)
    pieces = runs(positions, owner, counts)
    R = Wordpieces(model.ops, arrays, *pieces, width=width, dtype=dtype, doc_rows=n_tokens)

    def backprop(dR: Ragged) -> InT:
        return backprop_rows(model, docs, R, shapes, dR)

    return R, backprop
