from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Ragged

from ..alignment import runs, span_rows, token_rows
from ..errors import LayerInputError, describe
from ..reading import backprop_rows, init_reader, mix, read, reader, storage
from ..types import MixModelT, TransformerOutputT
from ..wordpieces import Wordpieces, host

InT = Tuple[Sequence[TransformerOutputT], Ragged]


@registry.layers("thinc_trf_layers.trf2spans.v1")
def trf2spans(
    index: int = 0,
    *,
    mix: Optional[MixModelT] = None,
    grad_factor: float = 1.0,
    on_unreached: str = "warn",
) -> Model[Tuple[Sequence[TransformerOutputT], Ragged], Ragged]:
    """The wordpieces of every span of tokens, ``(outputs, spans)`` to a ``Wordpieces`` with
    one row per span (``doc_rows``: the spans of each Doc). See docs/tokens_and_spans.md."""
    name = f"trf2spans({mix.name if isinstance(mix, Model) else index})"
    return reader(
        name,
        forward,
        index=index,
        mix=mix,
        grad_factor=grad_factor,
        on_unreached=on_unreached,
        init=init,
    )


def init(model: Model[InT, Ragged], X: Optional[InT] = None, Y: Optional[Ragged] = None) -> None:
    init_reader(model, None if X is None else check_spans(model.name, X)[0])


def check_spans(layer: str, X: Any) -> Tuple[Sequence[TransformerOutputT], Ragged, Any, List[int]]:
    """``(outputs, spans)``, and the spans (n, 2) and their counts per Doc, on the host."""
    if not isinstance(X, tuple) or len(X) != 2:
        raise LayerInputError(
            f"{layer}: expected a tuple (transformer outputs, spans): one transformer output per "
            f"Doc and a Ragged of (start, end) token offsets, got {describe(X)}."
        )
    Xs, spans = X
    data: Any = getattr(spans, "dataXd", None)
    if (
        not isinstance(spans, Ragged)
        or getattr(data, "ndim", 0) != 2
        or data.shape[1] != 2
        or data.dtype.kind not in "iu"
    ):
        raise LayerInputError(
            f"{layer}: expected the spans as a Ragged of int (start, end) token offsets, shape "
            "(n_spans, 2), with one length per Doc (as spaCy's span suggesters give), got "
            f"{describe(spans)}."
        )
    counts = host(spans.lengths).astype("int64").tolist()
    n_docs = len(Xs) if isinstance(Xs, (list, tuple)) else -1
    if len(counts) != n_docs or sum(counts) != int(data.shape[0]):
        raise LayerInputError(
            f"{layer}: the spans Ragged has {len(counts)} lengths summing to {sum(counts)} for "
            f"{int(data.shape[0])} spans; expected one length per Doc ({n_docs} Docs), summing to "
            "the spans."
        )
    if min(counts, default=0) < 0:
        raise LayerInputError(
            f"{layer}: the spans Ragged has a negative length ({min(counts)}, lengths {counts}); "
            "expected the number of spans of each Doc, >= 0."
        )
    return Xs, spans, host(data).astype("int64"), counts


def forward(
    model: Model[InT, Ragged], X: InT, is_train: bool
) -> Tuple[Ragged, Callable[[Ragged], InT]]:
    Xs, spans, pairs, counts = check_spans(model.name, X)
    docs = read(model, Xs, is_train)
    # checked before a mix runs
    positions, owner, per_token, n_tokens = token_rows(model.name, docs)
    pieces = runs(*span_rows(model.name, positions, owner, per_token, n_tokens, pairs, counts))
    width, dtype = mix(model, docs, is_train)
    arrays, shapes = storage(docs, width, dtype, model.ops.xp)
    R = Wordpieces(model.ops, arrays, *pieces, width=width, dtype=dtype, doc_rows=counts)

    def backprop(dR: Ragged) -> InT:
        return backprop_rows(model, docs, R, shapes, dR), spans

    return R, backprop
