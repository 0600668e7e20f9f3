"""``thinc_trf_layers.MixedLayersListener.v1``: a ``tok2vec`` for any spaCy component
(NER, tagger, parser, spancat...) that hands it a learned mix of the transformer's
hidden layers, pooled to one vector per spaCy token.

It listens to the transformer component upstream (spacy-transformers' or
spacy-curated-transformers'), mixes each Doc's hidden layers with ``mix``, and pools
each token's wordpieces with ``pooling`` (``token_pool``). Whitespace tokens, which
have no wordpiece, get zeros.
"""
from typing import Any, List, Optional, cast

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain
from thinc.types import Floats2d

from ..errors import check_grad_factor
from ..layers.token_pool import token_pool
from ..types import MixModelT, PoolingModelT
from .listeners import check_flavour, check_width, init_reading, listener_width, make_listener, require_curated_width

NAME = "MixedLayersListener.v1"


@registry.architectures("thinc_trf_layers.MixedLayersListener.v1")  # type: ignore[untyped-decorator]
def mixed_layers_listener(
    mix: MixModelT,
    pooling: Optional[PoolingModelT] = None,
    *,
    grad_factor: float = 1.0,
    upstream: str = "*",
    flavour: str = "spacy-transformers",
    width: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """One vector per token: ``pooling`` over the token's wordpieces of a ``mix`` of
    every hidden layer of the upstream transformer.

    mix (Model[List[Floats3d], Floats3d]): the mix of one Doc's layers, embeddings first,
        e.g. ``thinc_trf_layers.scalar_mix.v1`` (without n_layers: the count is taken from
        the transformer's first batch). The transformer must output every layer:
        ``output_hidden_states = true`` in spacy-transformers' ``transformer_config``,
        ``all_layer_outputs = true`` on spacy-curated-transformers' pipe.
    pooling (Optional[Model[Ragged, Floats2d]]): wordpieces to a token; default
        ``thinc_trf_layers.reduce_mean.v1``.
    grad_factor (float): scales the gradient passed back into the transformer; 0.0
        freezes it for this component (the mix and the pooling still learn). With
        spacy-transformers, training the transformer through a mix needs
        ``thinc_trf_layers.TransformerModel.v1`` upstream: with its
        ``TransformerModel.v3`` the first update raises an error saying so.
    upstream (str): the name of the transformer component, "*" for any.
    flavour (str): "spacy-transformers" or "spacy-curated-transformers".
    width (Optional[int]): the transformer's width; inferred from a spacy-transformers
        component when None, required for spacy-curated-transformers.
    """
    check_flavour(NAME, flavour)
    check_width(NAME, width)
    if not isinstance(mix, Model):
        raise ValueError(
            f"{NAME}: expected mix to be a Thinc Model[List[Floats3d], Floats3d] (a config block with "
            f'@layers = "thinc_trf_layers.scalar_mix.v1"), got {mix!r}.'
        )
    if pooling is not None and not isinstance(pooling, Model):
        raise ValueError(
            f"{NAME}: expected pooling to be null or a Thinc Model[Ragged, Floats2d] (such as "
            f'@layers = "thinc_trf_layers.reduce_mean.v1"), got {pooling!r}.'
        )
    check_grad_factor(NAME, grad_factor)
    require_curated_width(NAME, flavour, width)
    listener = make_listener(flavour, upstream, width=width)
    tokens = token_pool(pooling, mix=mix, grad_factor=grad_factor, on_unreached="raise")
    tokens.layers[0].name = f"{NAME} ({tokens.layers[0].name})"  # what it refuses, it refuses for this architecture
    # the listener hands on one transformer output per Doc (List[Any]); token_pool takes
    # any Sequence of them: Thinc's Model type is invariant in its input, hence the cast
    model: Model[List[Doc], List[Floats2d]] = chain(listener, cast(Model[List[Any], List[Floats2d]], tokens))
    model.name = f"MixedLayersListener({tokens.name})"
    model.init = _init
    model.set_ref("listener", listener)
    model.set_ref("tokens", tokens)
    model.attrs["architecture"] = NAME
    return model


def _init(model: Model[List[Doc], List[Floats2d]], X: Any = None, Y: Any = None) -> None:
    """Initialize from the transformer's width, without running the transformer (spaCy
    initializes components on Docs that no transformer has processed)."""
    tokens = model.get_ref("tokens")
    width = listener_width(NAME, model.get_ref("listener"))
    n_out = init_reading(NAME, tokens.layers[0], tokens.layers[1], width)
    if tokens.has_dim("nO") is None:
        tokens.set_dim("nO", n_out)
    model.set_dim("nO", n_out, force=True)


__all__ = ["mixed_layers_listener"]
