"""Our poolings composed with Thinc's layers: every pooling is Model[Ragged, Floats2d]."""
from typing import Dict, List

from thinc.api import Model, Relu, Softmax, chain, concatenate, list2ragged
from thinc.types import Floats2d, Ragged

from thinc_trf_layers import (
    attention_pool,
    map_list,
    reduce_first,
    reduce_gem,
    reduce_last,
    reduce_max,
    reduce_mean,
    reduce_mean_max,
    reduce_mean_sqrt_len,
    reduce_sum,
    reduce_weighted_mean,
    select_token,
    with_padded_mask,
)
from thinc_trf_layers.types import PoolingModelT

# One vector per row of a Ragged.
reveal_type(reduce_first())
reveal_type(reduce_last())
reveal_type(reduce_mean())
reveal_type(reduce_max())
reveal_type(reduce_sum())
reveal_type(reduce_mean_max())
reveal_type(reduce_mean_sqrt_len())
reveal_type(reduce_weighted_mean())
reveal_type(reduce_gem(3.0))
reveal_type(attention_pool())
reveal_type(attention_pool(384))

# A padded batch with its lengths or attention mask, pooled without the padding.
reveal_type(with_padded_mask(reduce_mean()))
reveal_type(chain(with_padded_mask(reduce_weighted_mean()), Softmax()))

# Poolings side by side: concatenate keeps Model[Ragged, Floats2d].
mean_max_first = concatenate(reduce_mean(), reduce_max(), reduce_first())
reveal_type(mean_max_first)

# [CLS] of every span, pooled per doc with any pooling, then a head.
cls_head = chain(
    map_list(select_token(0)), list2ragged(), reduce_mean_sqrt_len(), Relu(32), Softmax(3)
)
reveal_type(cls_head)

# Thinc's list2ragged() is generic in its input: first in a chain, it needs an annotation.
attention_head: Model[List[Floats2d], Floats2d] = chain(list2ragged(), attention_pool(), Softmax(2))
reveal_type(attention_head)

# The PoolingModelT alias names the type for functions that take or return a pooling.
POOLINGS: Dict[str, PoolingModelT] = {
    "mean": reduce_mean(),
    "max": reduce_max(),
    "cls": reduce_first(),
}


def pooled_classifier(pooling: PoolingModelT, n_classes: int) -> Model[Ragged, Floats2d]:
    return chain(pooling, Relu(64), Softmax(n_classes))


reveal_type(pooled_classifier(POOLINGS["mean"], 2))
