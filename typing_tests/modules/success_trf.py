"""Transformer outputs to features: the container types stay precise, never Any."""
from typing import Sequence

from thinc.api import Model, Relu, Softmax, chain, concatenate, list2ragged
from thinc.types import Floats2d

from thinc_trf_layers import (
    TransformerOutput,
    TransformerOutputT,
    cls_pool,
    map_list,
    pick_token,
    reduce_first,
    reduce_max,
    reduce_mean,
    select_token,
    span_pool,
    token_pool,
    scalar_mix,
    trf2layers,
    trf2ragged,
    trf2spans,
    trf2tensor,
    trf2tokens,
    trf_pool,
)

# The accepted containers: our TransformerOutput and protocols for the upstream ones.
reveal_type(trf2tensor(0))
reveal_type(trf2tensor(0, grad_factor=0.5))
reveal_type(trf2layers())
reveal_type(trf_pool(reduce_mean()))
reveal_type(cls_pool())
reveal_type(cls_pool(index=0, token_index=-1, grad_factor=0.0))
reveal_type(trf2ragged())
reveal_type(token_pool())
reveal_type(span_pool(reduce_max()))
reveal_type(trf2tokens())
reveal_type(trf2spans(mix=scalar_mix()))
reveal_type(pick_token(0))

# The composites are chains of these: read the rows, (pick,) pool. Any layer can go between.
reveal_type(chain(trf2ragged(), pick_token(0), reduce_mean()))
reveal_type(chain(trf2tokens(mix=scalar_mix()), reduce_max()))
reveal_type(chain(trf2spans(), reduce_first(), Softmax()))

# One vector per token, per doc; their mean per doc, classified.
tokens_head = chain(token_pool(reduce_max()), list2ragged(), reduce_mean(), Softmax())
reveal_type(tokens_head)

# The real wordpieces as a Ragged, for any pooling: what trf_pool is.
wordpieces_head = chain(trf2ragged(), reduce_max(), Softmax())
reveal_type(wordpieces_head)

# The [CLS] vector of every span, averaged per doc, classified.
cls_softmax = chain(
    trf2tensor(0), map_list(select_token(0)), list2ragged(), reduce_mean(), Softmax()
)
reveal_type(cls_softmax)

# Pooled real wordpieces (padding dropped), through a head.
pooled_head = chain(trf_pool(reduce_mean()), Relu(64), Softmax(2))
reveal_type(pooled_head)

# Several poolings of the same transformer output, side by side.
pooled_features = concatenate(
    trf_pool(reduce_mean()), trf_pool(reduce_max()), trf_pool(reduce_first())
)
reveal_type(pooled_features)
reveal_type(chain(pooled_features, Softmax(3)))


def predict_batch(
    model: Model[Sequence[TransformerOutputT], Floats2d], batch: Sequence[TransformerOutputT]
) -> Floats2d:
    """A batch annotated with the union type is what our models take."""
    return model.predict(batch)


def one_doc(output: TransformerOutput) -> Floats2d:
    """A list literal of TransformerOutput is inferred as the union list it must be."""
    return cls_pool().predict([output])


def from_hf_batch(mask: Floats2d, hidden: Floats2d) -> Floats2d:
    """What TransformerOutput.from_hf returns (a List[TransformerOutput]) goes straight in:
    the layers take a Sequence, which is covariant, not an invariant List."""
    return cls_pool().predict(TransformerOutput.from_hf(mask, last_hidden_state=hidden))


# A [CLS] feature and a pooled feature of the same output, side by side.
cls_and_mean = concatenate(cls_pool(), trf_pool(reduce_mean()))
reveal_type(cls_and_mean)

reveal_type(predict_batch(cls_softmax, []))
reveal_type(one_doc)
