from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats2d

from ..alignment import Groups, Layout, split_rows, token_groups
from ..containers import ContainerAdapter
from ..types import MixModelT, PoolingModelT, TransformerOutputT
from ..util import LayerGradientError, describe
from ._doc_arrays import init_pool, pool_groups, pooling_model
from .reduce_mean import reduce_mean

InT = Sequence[TransformerOutputT]
OutT = List[Floats2d]


@registry.layers("thinc_trf_layers.token_pool.v1")
def token_pool(
    pooling: Optional[PoolingModelT] = None,
    *,
    mix: Optional[MixModelT] = None,
    index: int = 0,
    grad_factor: float = 1.0,
) -> Model[Sequence[TransformerOutputT], List[Floats2d]]:
    """One vector per spaCy token, from every Doc's transformer output: ``pooling`` over
    the wordpieces aligned to each token (one (tokens, width) array per Doc).

    The wordpieces are those of tensor ``index``, or, with ``mix``, of a learned mix of
    every hidden layer (``scalar_mix()``: its layer count is taken from the first
    batch), run once per Doc. The alignment is the container's: spacy-transformers'
    ``align`` (a token in two overlapping strided spans has its wordpieces in both) or
    spacy-curated-transformers' rows, token after token. A token with no wordpiece
    (whitespace) has an empty row: our poolings give it zeros (Thinc's reduce_max,
    reduce_first and reduce_last raise on it).

    pooling: a ``Model[Ragged, Floats2d]``; default ``reduce_mean()``.
    mix: a ``Model[List[Floats3d], Floats3d]`` over one Doc's layers, embeddings first
        (needs ``output_hidden_states`` / ``all_layer_outputs``); None reads ``index``.
    grad_factor: scales the gradient handed back to the transformer (0 freezes it; the
        pooling's and the mix's own weights still learn). spacy-transformers'
        ``TransformerModel.v3`` carries only ``last_hidden_state``'s gradient: other
        tensors' and the mix's lower layers' gradients are dropped, with a warning once;
        ``thinc_trf_layers.TransformerModel.v1`` carries every one.

    Backprop adds each token's gradient into its wordpieces (zeros elsewhere) and hands
    back one gradient container per Doc, of the input's type.
    """
    pool = reduce_mean() if pooling is None else pooling
    model: Model[InT, OutT] = pooling_model("token_pool", forward, init, pool, mix, index, grad_factor)
    return model


def forward(model: Model[InT, OutT], Xs: InT, is_train: bool) -> Tuple[OutT, Callable[[OutT], InT]]:
    def groups_of(i: int, X: TransformerOutputT, adapter: ContainerAdapter, layout: Layout) -> Groups:
        return token_groups(model.name, adapter, X, layout, i)

    Y, groups, bp_pool = pool_groups(model, Xs, is_train, groups_of)
    counts = [len(lengths) for _, lengths in groups]
    shapes = [(n, int(Y.shape[1])) for n in counts]

    def backprop(dYs: OutT) -> InT:
        if (
            not isinstance(dYs, (list, tuple))
            or len(dYs) != len(shapes)
            or any(tuple(getattr(d, "shape", ())) != s for d, s in zip(dYs, shapes))
        ):
            raise LayerGradientError(
                f"{model.name}: backprop expected {len(shapes)} gradients, one per Doc, of shapes "
                f"{shapes}, got {describe(dYs)}."
            )
        dY: Any = model.ops.xp.concatenate(dYs) if dYs else model.ops.alloc2f(0, int(Y.shape[1]), dtype=Y.dtype)
        out: InT = bp_pool(dY.astype(Y.dtype, copy=False))
        return out

    return split_rows(model.ops, Y, counts), backprop


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    """With a sample X: initialize the mix on the first Doc's layers and the pooling on
    rows of the mixed width. Without: a mix without a layer count, and a pooling whose
    width is unknown, take them from the first batch."""
    init_pool(model, X)


__all__ = ["token_pool"]
