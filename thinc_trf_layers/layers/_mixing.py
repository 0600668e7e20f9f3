"""What the layer mixes share: an empty batch, and ``nO`` set from ``nI`` at ``initialize``
(so that a spaCy architecture can size what follows without running the transformer)."""

from typing import Any, Callable, List, Optional, Tuple

from thinc.api import Model
from thinc.types import Floats3d

from ..errors import check_grad, check_layers


def no_layers(
    model: Model[Any, Any], Xs: Any
) -> Optional[Tuple[Floats3d, Callable[[Floats3d], List[Floats3d]]]]:
    """The forward's result for an empty list of layers when ``nO`` is known: (0, 0, nO)."""
    if not isinstance(Xs, (list, tuple)) or len(Xs) or not model.has_dim("nO"):
        return None
    shape = (0, 0, model.get_dim("nO"))
    Y = model.ops.alloc3f(*shape)

    def backprop(dY: Floats3d) -> List[Floats3d]:
        check_grad(model.name, dY, shape, Y.dtype)
        return []

    return Y, backprop


def init_width(
    model: Model[Any, Any], X: Optional[List[Floats3d]], times: int = 1, **counts: Any
) -> None:
    """Set ``nI`` from a sample (checked with ``counts``: ``n_layers`` or ``min_layers``)
    and ``nO`` as ``times * nI`` once ``nI`` is known."""
    if X is not None:
        shape, _ = check_layers(model.name, X, **counts)
        if model.has_dim("nI") is None:
            model.set_dim("nI", shape[-1])
    if model.has_dim("nI") and model.has_dim("nO") is None:
        model.set_dim("nO", times * model.get_dim("nI"))
