from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d, Ragged

from ..alignment import Groups, Layout, span_groups, token_groups
from ..containers import ContainerAdapter
from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ..util import LayerInputError, describe
from ._doc_arrays import init_pool, pool_groups, pooling_model

InT = Tuple[Sequence[TransformerOutputT], Ragged]


@registry.layers("thinc_trf_layers.span_pool.v1")
def span_pool(
    pooling: PoolingModelT,
    *,
    mix: Optional[MixModelT] = None,
    index: int = 0,
    grad_factor: float = 1.0,
) -> Model[Tuple[Sequence[TransformerOutputT], Ragged], Floats2d]:
    """One vector per token span, pooled straight from the transformer output: for
    relation extraction, entity linking, span classification.

    Input: ``(outputs, spans)``: one transformer output per Doc, and the spans as spaCy's
    span suggesters give them, a ``Ragged`` of (start, end) token offsets (ints, shape
    (n_spans, 2)) with one length per Doc (its number of spans). Output: one row per
    span, in that order: ``pooling`` over the wordpieces aligned to the span's tokens,
    each position once (a wordpiece that two of its tokens share counts once; a token in
    two overlapping strided spans has a position in each). An empty span, or one of
    whitespace tokens only, has no wordpiece: our poolings give it zeros.

    pooling: a ``Model[Ragged, Floats2d]`` (``reduce_mean()``, ``reduce_mean_max()``,
        ``attention_pool(width)``...).
    mix, index, grad_factor: which wordpieces (tensor ``index`` or a learned mix of every
        hidden layer) and how much gradient reaches the transformer, as in ``token_pool``.

    Backprop adds each span's gradient into its wordpieces (zeros elsewhere) and hands
    back ``(gradients, spans)``: one gradient container per Doc, of the input's type, and
    the spans as they came.
    """
    model: Model[InT, Floats2d] = pooling_model("span_pool", forward, init, pooling, mix, index, grad_factor)
    return model


def forward(model: Model[InT, Floats2d], X: InT, is_train: bool) -> Tuple[Floats2d, Callable[[Floats2d], InT]]:
    Xs, spans = _check_input(model.name, X)
    offsets = [0]
    for n in _lengths(spans):
        offsets.append(offsets[-1] + n)

    def groups_of(i: int, X: TransformerOutputT, adapter: ContainerAdapter, layout: Layout) -> Groups:
        tokens = token_groups(model.name, adapter, X, layout, i)
        return span_groups(model.name, tokens, spans.dataXd[offsets[i] : offsets[i + 1]], i)

    Y, _, bp_pool = pool_groups(model, Xs, is_train, groups_of)

    def backprop(dY: Floats2d) -> InT:
        return bp_pool(dY), spans

    return Y, backprop


def init(model: Model[InT, Floats2d], X: Optional[InT] = None, Y: Optional[Floats2d] = None) -> None:
    """As ``token_pool``'s: the mix and the pooling, on the sample's outputs if given."""
    init_pool(model, None if X is None else _check_input(model.name, X)[0])


def _lengths(spans: Ragged) -> List[int]:
    lengths = spans.lengths
    return [int(n) for n in (lengths.get() if hasattr(lengths, "get") else lengths)]


def _check_input(layer: str, X: object) -> Tuple[Sequence[TransformerOutputT], Ragged]:
    if not isinstance(X, tuple) or len(X) != 2:
        raise LayerInputError(
            f"{layer}: expected a tuple (transformer outputs, spans): one transformer output per Doc "
            f"and a Ragged of (start, end) token offsets, got {describe(X)}."
        )
    Xs, spans = X
    data: Any = getattr(spans, "dataXd", None)
    kind = getattr(getattr(data, "dtype", None), "kind", "")
    if not isinstance(spans, Ragged) or kind not in ("i", "u") or getattr(data, "ndim", 0) != 2 or data.shape[1] != 2:
        raise LayerInputError(
            f"{layer}: expected the spans as a Ragged of int (start, end) token offsets, shape (n_spans, 2), "
            f"with one length per Doc (as spaCy's span suggesters give), got {describe(spans)}."
        )
    n_docs = len(Xs) if isinstance(Xs, (list, tuple)) else -1
    if len(spans.lengths) != n_docs or int(sum(_lengths(spans))) != int(data.shape[0]):
        raise LayerInputError(
            f"{layer}: the spans Ragged has {len(spans.lengths)} lengths summing to {int(sum(_lengths(spans)))} "
            f"for {int(data.shape[0])} spans; expected one length per Doc ({n_docs} Docs), summing to the spans."
        )
    return Xs, spans


__all__ = ["span_pool"]
