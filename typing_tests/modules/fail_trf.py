"""Transformer-output layers in wrong compositions: Thinc's plugin (and mypy) flag them."""
from thinc.api import Relu, Softmax, chain, list2ragged

from thinc_trf_layers import (
    map_list,
    pick_token,
    reduce_max,
    reduce_mean,
    scalar_mix,
    select_token,
    span_pool,
    token_pool,
    trf2layers,
    trf2ragged,
    trf2tensor,
    trf_pool,
)

# trf2tensor gives one (spans, wordpieces, width) array per doc, not rows of a Floats2d.
tensor_into_head = chain(  # E: misc
    trf2tensor(0),  # E: layer-mismatch-output
    Softmax(),  # E: layer-mismatch-input
)

# Also when a longer chain hides it: only the plugin sees past the first two layers.
tensor_into_relu = chain(
    trf2tensor(0),
    map_list(select_token(0)),  # E: layer-mismatch-output
    Relu(16),  # E: layer-mismatch-input
    Softmax(),
)

# trf2layers gives every doc's list of layers: a mix must be mapped over the docs.
unmapped_mix = chain(  # E: misc
    trf2layers(),  # E: layer-mismatch-output
    scalar_mix(13),  # E: layer-mismatch-input
)

# A mix mapped over trf2tensor's arrays: a mix takes a list of layers per doc. mypy's own
# inference of chain()'s first two layers reports this one.
mix_of_one_tensor = chain(  # E: misc
    trf2tensor(0),
    map_list(scalar_mix(13)),
)

# trf_pool already pools: its Floats2d rows cannot be pooled again.
pool_after_trf_pool = chain(
    trf_pool(reduce_mean()),
    Relu(16),  # E: layer-mismatch-output
    reduce_mean(),  # E: layer-mismatch-input
)

# trf_pool takes a pooling (Model[Ragged, Floats2d]), not a token selection.
wrong_pooling = trf_pool(select_token(0))  # E: arg-type

# A model taking transformer outputs fed the wrong thing at predict time.
predicted = trf_pool(reduce_mean()).predict(list2ragged())  # E: arg-type

# trf2ragged gives a Ragged of wordpieces: a pooling must come before a dense layer.
ragged_into_relu = chain(  # E: misc
    trf2ragged(),  # E: layer-mismatch-output
    Relu(16),  # E: layer-mismatch-input
)

# token_pool gives one (tokens, width) array per doc: map a layer over the docs, or
# list2ragged, before a pooling.
tokens_into_pooling = chain(  # E: misc
    token_pool(),  # E: layer-mismatch-output
    reduce_mean(),  # E: layer-mismatch-input
)

# span_pool takes (outputs, spans), not the outputs alone.
spans_without_offsets = chain(  # E: misc
    trf2tensor(0),  # E: layer-mismatch-output
    span_pool(reduce_mean()),  # E: layer-mismatch-input
)

# A pooling given where a mix of the hidden layers goes (and a mix as the pooling).
pooling_as_mix = token_pool(reduce_mean(), mix=reduce_max())  # E: arg-type
mix_as_pooling = trf_pool(scalar_mix())  # E: arg-type

# pick_token picks rows: its Ragged still needs a pooling before a dense layer.
picks_into_head = chain(
    trf2ragged(),
    pick_token(0),  # E: layer-mismatch-output
    Softmax(),  # E: layer-mismatch-input
)
