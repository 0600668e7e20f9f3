"""The poolings ``compare`` knows, by name, and the ``--poolings`` parser.

Plain Python: the command line's help lists these without importing Thinc's layers.
"""
from typing import Dict, List, Tuple

from .errors import InputError

#: name -> (registry name of the layer, what the head sees).
#: The layer mixes (``LAYER_MIXES``) combine the hidden layers, then mean-pool.
POOLINGS: Dict[str, Tuple[str, str]] = {
    "cls": ("thinc_trf_layers.reduce_first.v1", "the first wordpiece ([CLS]) of the last layer"),
    "last": (
        "thinc_trf_layers.reduce_last.v1",
        "the last real wordpiece ([SEP]) of the last layer",
    ),
    "mean": ("thinc_trf_layers.reduce_mean.v1", "mean of the real wordpieces"),
    "max": ("thinc_trf_layers.reduce_max.v1", "elementwise max of the real wordpieces"),
    "sum": ("thinc_trf_layers.reduce_sum.v1", "sum of the real wordpieces"),
    "mean_max": ("thinc_trf_layers.reduce_mean_max.v1", "mean and max, concatenated"),
    "mean_sqrt_len": (
        "thinc_trf_layers.reduce_mean_sqrt_len.v1",
        "sum divided by the square root of the length",
    ),
    "weighted_mean": (
        "thinc_trf_layers.reduce_weighted_mean.v1",
        "mean weighted by position (later wordpieces weigh more)",
    ),
    "gem": ("thinc_trf_layers.reduce_gem.v1", "generalized mean, p=3 (between mean and max)"),
    "attention": (
        "thinc_trf_layers.attention_pool.v1",
        "learned attention weights over wordpieces",
    ),
    "scalar_mix": (
        "thinc_trf_layers.scalar_mix.v1",
        "learned mix of every hidden layer, then mean of the real wordpieces",
    ),
    "weighted_layers": (
        "thinc_trf_layers.weighted_layer_pooling.v1",
        "learned weighted average of the top layers (from layer 4), then mean",
    ),
}

#: The poolings that mix the hidden layers (built as ``layer(n_layers)``, then mean-pooled).
LAYER_MIXES = ("scalar_mix", "weighted_layers")

#: The pooling that follows a layer mix.
MIX_POOLING = "mean"

DEFAULT_POOLINGS = [
    "cls",
    "mean",
    "max",
    "mean_max",
    "mean_sqrt_len",
    "weighted_mean",
    "attention",
    "scalar_mix",
]


def parse_poolings(value: str) -> List[str]:
    """Split a comma- or space-separated list of pooling names and check each one.

    Duplicates are dropped (the first one stays); an unknown name raises ``InputError``.
    """
    names = [name.strip() for name in value.replace(",", " ").split() if name.strip()]
    if not names:
        raise InputError(f"--poolings: no pooling given; known poolings: {', '.join(POOLINGS)}.")
    unknown = [name for name in names if name not in POOLINGS]
    if unknown:
        raise InputError(
            f"--poolings: unknown pooling(s) {', '.join(map(repr, unknown))}; known poolings: "
            f"{', '.join(POOLINGS)}."
        )
    seen: List[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen


__all__ = ["POOLINGS", "LAYER_MIXES", "MIX_POOLING", "DEFAULT_POOLINGS", "parse_poolings"]
