"""What the layer mixes share: an empty batch, and ``nO`` set from ``nI`` at ``initialize``
(so that a spaCy architecture can size what follows without running the transformer)."""

from typing import Any, Callable, Dict, List, Optional, Tuple

from thinc.api import Model
from thinc.types import Floats3d

from ..errors import LayerInputError, check_grad, check_layers


def last_layers(name: str, forward: Callable[..., Any], k: Any, concat: bool) -> Model[Any, Any]:
    """``concat_last(k)`` and ``mean_last(k)``; with ``concat``, ``nO`` is ``k * nI``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise LayerInputError(f"{name}: expected k to be an int >= 1, got {k!r}.")
    dims: Dict[str, Optional[int]] = {"nI": None, "nO": None}
    attrs = {"k": k, "concat": concat}
    return Model(f"{name}({k})", forward, init=init_last, dims=dims, attrs=attrs)


def init_last(model: Model[Any, Any], X: Any = None, Y: Any = None) -> None:
    k: int = model.attrs["k"]  # read where the forward reads it
    init_width(model, X, times=k if model.attrs["concat"] else 1, min_layers=k)


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
    model: Model[Any, Any], X: Optional[List[Any]], times: int = 1, **counts: Any
) -> None:
    """Set ``nI`` from a sample (checked with ``counts``: ``n_layers`` or ``min_layers``)
    and ``nO`` as ``times * nI`` once ``nI`` is known."""
    if X is not None:
        shape, _ = check_layers(model.name, X, **counts)
        if model.has_dim("nI") is None:
            model.set_dim("nI", shape[-1])
    if model.has_dim("nI") and model.has_dim("nO") is None:
        model.set_dim("nO", times * model.get_dim("nI"))
