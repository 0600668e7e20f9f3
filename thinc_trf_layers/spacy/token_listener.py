"""``thinc_trf_layers.MixedLayersListener.v1``: a ``tok2vec`` for any spaCy component
(docs/spacy.md, "MixedLayersListener.v1")."""

from importlib.util import find_spec
from typing import Any, Callable, List, Optional, Tuple, cast

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain
from thinc.types import Floats2d

from ..errors import check_grad_factor
from ..layers.token_pool import token_pool
from ..types import MixModelT, PoolingModelT
from .listeners import check_flavour, check_width, curated_batch, curated_raw_listener
from .listeners import init_curated_state, init_reading, listener_width, make_listener

NAME = "MixedLayersListener.v1"


@registry.architectures(  # type: ignore[untyped-decorator]
    "thinc_trf_layers.MixedLayersListener.v1"
)
def mixed_layers_listener(
    mix: Optional[MixModelT] = None,
    pooling: Optional[PoolingModelT] = None,
    *,
    grad_factor: float = 1.0,
    upstream: str = "*",
    flavour: Optional[str] = None,
    width: Optional[int] = None,
    transformer: Optional[Model[List[Doc], Any]] = None,
    weighting: Optional[Model[Any, Any]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """One vector per token: ``pooling`` (default ``reduce_mean``) over its wordpieces of the
    transformer's last layer or of a ``mix`` of all. See docs/spacy.md, "MixedLayersListener.v1"."""
    if weighting is not None:
        raise ValueError(
            f"{NAME}: weighting is an argument of spacy-curated-transformers' "
            "ScalarWeightingListener.v1, and its ScalarWeight layer does not fit here. Write a "
            "mix block in its place: [...tok2vec.mix] with "
            '@layers = "thinc_trf_layers.scalar_mix.v1" (it needs no layer count).'
        )
    if flavour is not None:
        check_flavour(NAME, flavour)
    check_width(NAME, width)
    if mix is not None and not isinstance(mix, Model):
        raise ValueError(
            f"{NAME}: expected mix to be null or a Thinc Model[List[Floats3d], Floats3d] (a config "
            f'block with @layers = "thinc_trf_layers.scalar_mix.v1"), got {mix!r}.'
        )
    if pooling is not None and not isinstance(pooling, Model):
        raise ValueError(
            f"{NAME}: expected pooling to be null or a Thinc Model[Ragged, Floats2d] (such as "
            f'@layers = "thinc_trf_layers.reduce_mean.v1"), got {pooling!r}.'
        )
    if transformer is not None and not isinstance(transformer, Model):
        raise ValueError(
            f"{NAME}: expected transformer to be null or a Thinc Model (a block with "
            f'@architectures = "thinc_trf_layers.TransformerModel.v1"), got {transformer!r}.'
        )
    check_grad_factor(NAME, grad_factor)
    tokens = token_pool(pooling, mix=mix, grad_factor=grad_factor, on_unreached="raise")
    tokens.layers[0].name = f"{NAME} ({tokens.layers[0].name})"  # its errors name this architecture
    source: Model[List[Doc], List[Any]]
    if transformer is not None:
        from spacy_transformers.layers import split_trf_batch

        source = chain(transformer, split_trf_batch())
    elif flavour == "spacy-curated-transformers" or find_spec("spacy_transformers") is None:
        source = curated_raw_listener(upstream=upstream, width=width, state=False)
    else:
        source = make_listener("spacy-transformers", upstream, width=width)
    model: Model[List[Doc], List[Floats2d]] = Model(
        "mixed_layers_listener",  # the name curated's WrappedTransformerAndListener shows
        _forward,
        init=_init,
        layers=[source, tokens],
        dims={"nO": None},
        refs={"listener": source, "tokens": tokens},
        attrs={"architecture": NAME},
    )
    if flavour != "spacy-transformers":  # (also with a transformer: the saved attrs stay the same)
        init_curated_state(model, upstream, all_layers=mix is not None)
    # the output width, known before initialize (spacy-curated-transformers reads it)
    if width is not None:
        probe = tokens.copy()
        model.set_dim("nO", init_reading(NAME, probe, probe.layers[1], width))
    return model


def _forward(
    model: Model[List[Doc], List[Floats2d]], docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], Any]]:
    source, tokens = model.layers
    Xs, bp_source = curated_batch(model, docs, is_train) or source(docs, is_train)
    Ys, bp_tokens = cast(Model[List[Any], List[Floats2d]], tokens)(Xs, is_train)
    shapes = [Y.shape for Y in Ys]
    width = model.maybe_get_dim("nO")
    if width:  # Docs without tokens keep the width (a batch of them has no rows to take it from)
        Ys = [Y if len(Y) or Y.shape[1] == width else model.ops.alloc2f(0, width) for Y in Ys]

    def backprop(dYs: List[Floats2d]) -> Any:
        return bp_source(
            bp_tokens([d if d.shape == s else d.reshape(s) for d, s in zip(dYs, shapes)])
        )

    return Ys, backprop


def _init(model: Model[List[Doc], List[Floats2d]], X: Any = None, Y: Any = None) -> None:
    source, tokens = model.layers
    source.initialize()  # a listener has nothing to initialize; an inline transformer loads
    n_out = init_reading(NAME, tokens, tokens.layers[1], listener_width(NAME, source))
    model.set_dim("nO", n_out, force=True)
