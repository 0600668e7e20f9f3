"""Poolings fed what they do not take: Thinc's plugin flags every one."""
from thinc.api import Softmax, chain, concatenate, list2ragged

from thinc_trf_layers import (
    map_list,
    reduce_max,
    reduce_mean,
    scalar_mix,
    select_token,
    trf2tensor,
    with_padded_mask,
)

# A pooling fed List[Floats3d] (trf2tensor's output) instead of a Ragged.
list_into_pooling = chain(  # E: misc
    trf2tensor(0),  # E: layer-mismatch-output
    reduce_mean(),  # E: layer-mismatch-input
    Softmax(),
)

# A pooling fed the per-span [CLS] vectors still as a list (list2ragged is missing).
cls_list_into_pooling = chain(
    trf2tensor(0),
    map_list(select_token(0)),  # E: layer-mismatch-output
    reduce_max(),  # E: layer-mismatch-input
    Softmax(),
)

# A pooling fed a layer mix's Floats3d.
mix_into_pooling = chain(  # E: misc
    scalar_mix(13),  # E: layer-mismatch-output
    reduce_mean(),  # E: layer-mismatch-input
)

# Pooling twice: the first pooling already gives one Floats2d row per doc.
pool_twice = chain(
    map_list(select_token(0)),
    list2ragged(),
    reduce_mean(),  # E: layer-mismatch-output
    reduce_max(),  # E: layer-mismatch-input
    Softmax(),
)

# select_token fed the pooled Ragged rows instead of (spans, wordpieces, width).
select_after_ragged = chain(
    trf2tensor(0),
    map_list(select_token(0)),
    list2ragged(),  # E: layer-mismatch-output
    select_token(0),  # E: layer-mismatch-input
)

# with_padded_mask takes (padded data, lengths or mask), not a Ragged.
padded_and_ragged = concatenate(
    reduce_mean(),  # E: layer-mismatch-input
    with_padded_mask(reduce_mean()),  # E: layer-mismatch-input
)
