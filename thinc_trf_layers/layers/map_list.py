from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model, get_array_module, registry
from thinc.types import Ragged

from ..types import InT, OutT
from ..errors import LayerGradientError, describe, input_error

#: How many non-empty items ``initialize`` hands the child at most.
INIT_SAMPLE_SIZE = 8


@registry.layers("thinc_trf_layers.map_list.v1")
def map_list(layer: Model[InT, OutT]) -> Model[List[InT], List[OutT]]:
    """Map a child layer over a list, one call per item. See docs/combinators.md#map_listlayer."""
    return Model(
        f"map_list({layer.name})",
        forward,
        init=init,
        layers=[layer],
        dims={"nO": layer.maybe_get_dim("nO"), "nI": layer.maybe_get_dim("nI")},
    )


def forward(
    model: Model[List[InT], List[OutT]], Xs: List[InT], is_train: bool
) -> Tuple[List[OutT], Callable[[List[OutT]], List[InT]]]:
    if not isinstance(Xs, (list, tuple)):
        raise input_error(model.name, Xs, "a list of inputs, one per item")
    layer = model.layers[0]
    results = [layer(X, is_train) for X in Xs]
    callbacks = [get_dX for _, get_dX in results]

    def backprop(dYs: List[OutT]) -> List[InT]:
        if not isinstance(dYs, (list, tuple)) or len(dYs) != len(callbacks):
            raise LayerGradientError(
                f"{model.name}: backprop expected a list of {len(callbacks)} gradients, one per "
                f"output, got {describe(dYs)}."
            )
        return [cb(dY) for cb, dY in zip(callbacks, dYs)]

    return [Y for Y, _ in results], backprop


def init(
    model: Model[List[InT], List[OutT]],
    X: Optional[List[InT]] = None,
    Y: Optional[List[OutT]] = None,
) -> None:
    layer = model.layers[0]
    first = X if X is not None else Y  # its non-empty items; Y's at the same places
    keep = [i for i, x in enumerate(first or []) if not is_empty(x)][:INIT_SAMPLE_SIZE]
    if X is not None and Y is not None and len(Y) != len(X):
        Y = None
    layer.initialize(X=_init_sample(X, keep), Y=_init_sample(Y, keep))
    for dim in ("nO", "nI"):
        if layer.has_dim(dim) and model.has_dim(dim) is None:
            model.set_dim(dim, layer.get_dim(dim))


def is_empty(item: Any) -> bool:
    """An item with nothing in it: an array of size 0, an empty Ragged or list."""
    if isinstance(item, Ragged):
        return int(item.dataXd.size) == 0
    size = getattr(item, "size", None)
    if size is not None and not callable(size):
        return int(size) == 0
    return isinstance(item, (list, tuple)) and len(item) == 0


def _init_sample(items: Optional[Sequence[Any]], keep: List[int]) -> Any:
    """One input for the child that stands for the items at ``keep`` (None: no item)."""
    if items is None or not keep:
        return None
    chosen = [items[i] for i in keep]
    first = chosen[0]
    if len(chosen) == 1:
        return first
    if isinstance(first, Ragged):
        if all(
            isinstance(it, Ragged) and it.dataXd.shape[1:] == first.dataXd.shape[1:]
            for it in chosen
        ):
            return Ragged(
                _concat([it.dataXd for it in chosen]), _concat([it.lengths for it in chosen])
            )
    elif getattr(first, "shape", None) is not None and all(
        type(it) is type(first) and it.shape[1:] == first.shape[1:] for it in chosen
    ):
        return _concat(chosen)
    return first


def _concat(arrays: List[Any]) -> Any:
    xp = get_array_module(arrays[0])  # type: ignore[no-untyped-call]
    return xp.concatenate(arrays, axis=0)
