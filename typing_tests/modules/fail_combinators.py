"""Wrong compositions of the combinators that Thinc's plugin must flag."""
from thinc.api import Relu, Softmax, chain, concatenate, list2ragged, reduce_mean

from thinc_trf_layers import map_list, select_token

# select_token takes (spans, wordpieces, width), not a Ragged.
ragged_into_select = chain(  # E: misc
    list2ragged(),  # E: layer-mismatch-output
    select_token(0),  # E: layer-mismatch-input
    Softmax(),
)

# Selecting twice: the first selection already dropped the wordpiece axis.
select_twice = chain(
    map_list(select_token(0)),
    list2ragged(),
    reduce_mean(),  # E: layer-mismatch-output
    select_token(0),  # E: layer-mismatch-input
    Softmax(),
)

# A pooling needs a Ragged: map_list gives a list of Floats2d.
list_into_pooling = chain(  # E: misc
    map_list(select_token(0)),  # E: layer-mismatch-output
    reduce_mean(),  # E: layer-mismatch-input
    Softmax(),
)

# A head that takes one array of rows fed the list of per-doc arrays (list2ragged and a
# pooling are missing in between).
head_on_list = chain(  # E: misc
    map_list(select_token(0)),  # E: layer-mismatch-output
    Relu(8),  # E: layer-mismatch-input
    Softmax(),
)

# concatenate needs layers of the same input type.
mixed_concat = concatenate(
    reduce_mean(),  # E: layer-mismatch-input
    select_token(0),  # E: layer-mismatch-input
)
