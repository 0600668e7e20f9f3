"""Our combinators composed with Thinc's layers: the plugin infers precise model types."""
from typing import List

from thinc.api import (
    Model,
    Relu,
    Softmax,
    chain,
    concatenate,
    list2ragged,
    reduce_max,
    reduce_mean,
)
from thinc.types import Floats2d, Floats3d

from thinc_trf_layers import array_getitem, map_list, select_token

# The [CLS] vector of every span drops the wordpiece axis.
reveal_type(select_token(0))

# Over a batch of docs: one (spans, wordpieces, width) array per doc.
reveal_type(map_list(select_token(0)))

# Nested lists map too.
cls_per_doc_per_batch = map_list(map_list(select_token(0)))
reveal_type(cls_per_doc_per_batch)

# [CLS] of every span, averaged per doc, classified.
cls_mean_softmax = chain(map_list(select_token(0)), list2ragged(), reduce_mean(), Softmax())
reveal_type(cls_mean_softmax)

# Two poolings side by side: concatenate needs the same input and output types.
mean_max = concatenate(reduce_mean(), reduce_max())
reveal_type(mean_max)

cls_mean_max = chain(map_list(select_token(0)), list2ragged(), mean_max, Relu(16), Softmax())
reveal_type(cls_mean_max)

# array_getitem keeps the array type it is given; on its own there is none to keep
# (Never), so annotate it.
reveal_type(array_getitem(0))
first_two_pieces: Model[Floats3d, Floats3d] = array_getitem((slice(None), slice(0, 2)))
reveal_type(first_two_pieces)

last_of_first_two = chain(first_two_pieces, select_token(-1), Softmax())
reveal_type(last_of_first_two)

# The last wordpiece position of every span (padding included), through a small head.
last_position_head = chain(
    map_list(select_token(-1)), list2ragged(), reduce_max(), Relu(8), Softmax(2)
)
reveal_type(last_position_head)


def build_classifier(n_classes: int) -> Model[List[Floats3d], Floats2d]:
    """Annotated builders check against the inferred type."""
    return chain(map_list(select_token(0)), list2ragged(), reduce_mean(), Softmax(n_classes))


reveal_type(build_classifier(3))
