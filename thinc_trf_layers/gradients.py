"""Gradients handed back to the transformer: zero views for what got none, the scaling
by ``grad_factor``, and what to do when the upstream cannot carry a gradient."""

import warnings
from typing import Any, Optional, Tuple

import numpy
from thinc.api import Ops

from .errors import LayerInputError


class TransformerGradientWarning(UserWarning):
    """The upstream cannot carry the gradient of a picked tensor into the transformer."""


def zeros_view(ops: Ops, shape: Tuple[int, ...], dtype: Any) -> Any:
    """Zeros of ``shape`` that take no memory: a view of one zero with strides 0
    (read-only on NumPy), the gradient of what received none."""
    if ops.xp is numpy:
        view = numpy.ndarray(
            shape, dtype=dtype, buffer=numpy.zeros(1, dtype=dtype), strides=(0,) * len(shape)
        )
        view.flags.writeable = False
        return view
    return ops.xp.broadcast_to(ops.xp.zeros((), dtype=dtype), shape)


def scaled(d: Any, grad_factor: float) -> Any:
    """``d * grad_factor`` in d's dtype: in place where d is writable, ``d`` for 1."""
    if grad_factor == 1.0:
        return d
    if getattr(getattr(d, "flags", None), "writeable", False):
        d *= grad_factor
        return d
    return (d * grad_factor).astype(d.dtype, copy=False)


def unreached(layer: str, what: str, reason: str, *, grad_factor: Optional[float] = None) -> None:
    """``what`` cannot reach the transformer (``reason``: the upstream's rule): with a
    ``grad_factor`` (on_unreached="raise") raise before anything runs; else warn."""
    if grad_factor is not None:
        raise LayerInputError(
            f"{layer}: got {what} with grad_factor = {grad_factor}, but the upstream transformer "
            f"cannot carry its gradient into the transformer: {reason}, so this component would "
            "not train the transformer. Set grad_factor = 0.0 to use these features with the "
            "transformer frozen for this component, or make the transformer component's model "
            "thinc_trf_layers.TransformerModel.v1, which backpropagates into every hidden state "
            "and tensor."
        )
    warnings.warn(
        f"{layer}: {reason}, so {what} cannot reach the transformer: the transformer will not be "
        "trained through this layer. Read last_hidden_state (index 0) to fine-tune it, use "
        "grad_factor=0.0 to say that the transformer is meant to stay frozen, or see "
        "docs/transformer_outputs.md.",
        TransformerGradientWarning,
        stacklevel=3,
    )
