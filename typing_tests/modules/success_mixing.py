"""Layer mixes: Model[List[Floats3d], Floats3d], mapped over the docs after trf2layers()."""
from thinc.api import Model, Softmax, chain, list2ragged
from thinc.types import Floats2d, Floats3d

from thinc_trf_layers import (
    concat_last,
    map_list,
    mean_last,
    reduce_mean,
    scalar_mix,
    select_token,
    trf2layers,
    trf_pool,
    weighted_layer_pooling,
)
from thinc_trf_layers.types import MixModelT

# One batch's hidden layers (one array per layer) to one array.
reveal_type(scalar_mix(13))
reveal_type(scalar_mix(13, dropout=0.1))
reveal_type(weighted_layer_pooling(13, layer_start=4))
reveal_type(concat_last(4))
reveal_type(mean_last(4))

# Every doc's hidden layers, mixed per doc. Thinc's chain() types the layers after the
# first as Model[..., Any], so a generic layer such as map_list(...) written inline there
# gets its output inferred as Any: bind it to a name first to keep the precise type.
mix_per_doc = map_list(scalar_mix(13))
reveal_type(mix_per_doc)
mixed_per_doc = chain(trf2layers(), mix_per_doc)
reveal_type(mixed_per_doc)
reveal_type(chain(trf2layers(), map_list(scalar_mix(13))))  # reveals Any: inline generic layer

# Mixed layers, [CLS] of every span, averaged per doc, classified.
mixed_cls = chain(
    trf2layers(),
    map_list(scalar_mix(13)),
    map_list(select_token(0)),
    list2ragged(),
    reduce_mean(),
    Softmax(),
)
reveal_type(mixed_cls)

# The same with the mix and the selection in one per-doc chain.
mixed_cls_inner = chain(
    trf2layers(), map_list(chain(concat_last(4), select_token(0))), list2ragged()
)
reveal_type(mixed_cls_inner)

# A mix is a Model[List[Floats3d], Floats3d] wherever one is expected.
def cls_of_mix(mix: MixModelT) -> Model[list[Floats3d], Floats2d]:
    return chain(mix, select_token(0))


reveal_type(cls_of_mix(weighted_layer_pooling(13)))
reveal_type(cls_of_mix(mean_last(4)))

# Pooling the last layer instead of mixing: the same output type as mixed_cls.
last_layer_pooled = chain(trf_pool(reduce_mean()), Softmax())
reveal_type(last_layer_pooled)
