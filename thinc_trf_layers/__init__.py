"""Thinc layers for transformer outputs: [CLS] selection, padding-aware pooling and
layer mixing, typed for Thinc's mypy plugin and registered for configs."""

# --- combinators
from .layers.array_getitem import array_getitem
from .layers.map_list import map_list
from .layers.select_token import select_token

# --- pooling (imports)
from .layers.reduce_first import reduce_first
from .layers.reduce_last import reduce_last
from .layers.reduce_mean import reduce_mean
from .layers.reduce_max import reduce_max
from .layers.reduce_sum import reduce_sum
from .layers.reduce_mean_max import reduce_mean_max
from .layers.reduce_mean_sqrt_len import reduce_mean_sqrt_len
from .layers.reduce_weighted_mean import reduce_weighted_mean
from .layers.attention_pool import attention_pool
from .layers.reduce_gem import reduce_gem
from .layers.with_padded_mask import with_padded_mask

# --- layer mixing (imports)
from .layers.concat_last import concat_last
from .layers.mean_last import mean_last
from .layers.scalar_mix import scalar_mix
from .layers.weighted_layer_pooling import weighted_layer_pooling

# --- transformer outputs (imports)
from .layers.cls_pool import cls_pool
from .layers.trf2layers import trf2layers
from .layers.trf2ragged import trf2ragged
from .layers.trf2tensor import trf2tensor
from .layers.trf_pool import trf_pool
from .layers.trf2tokens import trf2tokens
from .layers.trf2spans import trf2spans
from .layers.pick_token import pick_token
from .layers.token_pool import token_pool
from .layers.span_pool import span_pool
from .containers import ContainerAdapter, TransformerOutput, register_adapter
from .gradients import TransformerGradientWarning
from .wordpieces import Wordpieces
from .types import TransformerOutputT
from .testing.gradcheck import GradientCheckError, check_gradients
from .errors import LayerGradientError, LayerInputError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "LayerInputError",
    "LayerGradientError",
    "check_gradients",
    "GradientCheckError",
    "array_getitem",
    "map_list",
    "select_token",
    "reduce_first",
    "reduce_last",
    "reduce_mean",
    "reduce_max",
    "reduce_sum",
    "reduce_mean_max",
    "reduce_mean_sqrt_len",
    "reduce_weighted_mean",
    "attention_pool",
    "reduce_gem",
    "with_padded_mask",
    "concat_last",
    "mean_last",
    "scalar_mix",
    "weighted_layer_pooling",
    "TransformerOutput",
    "TransformerOutputT",
    "TransformerGradientWarning",
    "trf2tensor",
    "trf2ragged",
    "trf2layers",
    "trf2tokens",
    "trf2spans",
    "pick_token",
    "Wordpieces",
    "ContainerAdapter",
    "register_adapter",
    "trf_pool",
    "cls_pool",
    "token_pool",
    "span_pool",
]
