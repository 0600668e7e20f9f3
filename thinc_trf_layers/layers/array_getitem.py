from functools import lru_cache
from typing import Any, Callable, List, Sequence, Tuple, Union, cast

from thinc.api import Model, registry
from ..types import ArrayTXd
from ..errors import LayerGradientError, LayerInputError, describe, input_error

IndexT = Union[int, slice, Tuple[Any, ...], List[int], str]


@registry.layers("thinc_trf_layers.array_getitem.v1")
def array_getitem(index: IndexT) -> Model[ArrayTXd, ArrayTXd]:
    """``X[index]`` with NumPy basic indexing; ``index`` may be a string in NumPy syntax
    (``":, 0"``) for configs. See docs/combinators.md#array_getitemindex."""
    # attrs are serialized with msgpack, which has no slices and turns tuples into lists:
    # keep the index as its canonical string and parse it (cached) at forward.
    text = _repr_index(parse_index(index))
    return Model(f"array_getitem[{text}]", forward, attrs={"index": text})


def forward(
    model: Model[ArrayTXd, ArrayTXd], X: ArrayTXd, is_train: bool
) -> Tuple[ArrayTXd, Callable[[ArrayTXd], ArrayTXd]]:
    index = _parse_index_string(model.attrs["index"])
    if getattr(X, "shape", None) is None:
        raise input_error(model.name, X, "an array")
    in_shape, dtype = tuple(X.shape), X.dtype
    check_index(model.name, index, in_shape)
    Y: ArrayTXd = cast(Any, X)[index]
    out_shape = tuple(Y.shape)
    family = _kind_family(dtype)

    def backprop(dY: ArrayTXd) -> ArrayTXd:
        got_shape = getattr(dY, "shape", None)
        if (
            got_shape is None
            or tuple(got_shape) != out_shape
            or _kind_family(getattr(dY, "dtype", None)) != family
        ):
            wanted = {"f": "a floating-point dtype", "i": "an integer dtype"}.get(
                family, f"the dtype {dtype}"
            )
            raise LayerGradientError(
                f"{model.name}: backprop expected a gradient of shape {out_shape} with {wanted} "
                f"(the output's shape; the input is {dtype}), got {describe(dY)}."
            )
        dX = model.ops.alloc(in_shape, dtype=dtype)
        dX[index] = dY
        return dX  # type: ignore[no-any-return]

    return Y, backprop


def _kind_family(dtype: Any) -> str:
    """The kind a gradient must share with the input: NumPy's, with "u" (unsigned) as "i"."""
    return str(getattr(dtype, "kind", "")).replace("u", "i")


def parse_index(index: IndexT) -> Tuple[Any, ...]:
    """Normalise an index to a tuple of ints, slices, ``Ellipsis`` and ``None``."""
    if isinstance(index, str):
        return _parse_index_string(index)
    items: Tuple[Any, ...] = tuple(index) if isinstance(index, (list, tuple)) else (index,)
    for item in items:
        if isinstance(item, bool) or not (
            item is None or item is Ellipsis or isinstance(item, (int, slice))
        ):
            raise LayerInputError(
                "array_getitem: expected an index of ints, slices, '...' and None (basic "
                f"indexing), got {index!r}. Arrays and booleans (advanced indexing) are not "
                "supported."
            )
    if any(isinstance(item, slice) and item.step == 0 for item in items):
        raise LayerInputError(f"array_getitem: a slice step cannot be zero, got {index!r}.")
    if sum(1 for item in items if item is Ellipsis) > 1:
        raise LayerInputError(f"array_getitem: an index can have only one '...', got {index!r}.")
    return items


@lru_cache(maxsize=256)
def _parse_index_string(text: str) -> Tuple[Any, ...]:
    items: List[Any] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if part == "...":
                items.append(Ellipsis)
            elif part in ("None", "newaxis"):
                items.append(None)
            elif ":" in part:
                # slice() raises TypeError for more than three bits
                items.append(slice(*[int(b) if b.strip() else None for b in part.split(":")]))
            else:
                items.append(int(part))
        except (ValueError, TypeError):
            raise LayerInputError(
                f"array_getitem: could not read the index string {text!r}: expected NumPy basic "
                "indexing such as '0', ':, 0', '..., -1' or '1:3'."
            ) from None
    return parse_index(tuple(items))


def check_index(layer: str, index: Sequence[Any], shape: Tuple[int, ...]) -> None:
    """Raise a clear error where ``index`` does not fit an array of ``shape``."""
    n_axes = sum(1 for item in index if item is not None and item is not Ellipsis)
    if n_axes > len(shape):
        raise LayerInputError(
            f"{layer}: the index uses {n_axes} axes but the input has shape {shape} ({len(shape)} "
            "axes)."
        )
    # Map each int to the axis it indexes.
    axis = 0
    for item in index:
        if item is Ellipsis:
            axis += len(shape) - n_axes
        elif item is not None:
            size = shape[axis]
            if isinstance(item, int) and not -size <= item < size:
                raise LayerInputError(
                    f"{layer}: index {item} is out of range for axis {axis} of size {size} (input "
                    f"shape {shape}); expected an int in [{-size}, {size})."
                )
            axis += 1


def _repr_index(index: Tuple[Any, ...]) -> str:
    parts = []
    for item in index:
        if item is Ellipsis:
            parts.append("...")
        elif isinstance(item, slice):
            bits = ["" if b is None else str(b) for b in (item.start, item.stop, item.step)]
            parts.append(":".join(bits[:2]) if item.step is None else ":".join(bits))
        else:
            parts.append(str(item))
    # The empty index selects the whole array, as "..." does.
    return ", ".join(parts) or "..."
