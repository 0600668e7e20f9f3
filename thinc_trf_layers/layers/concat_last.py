from typing import Callable, List, Tuple

from thinc.api import registry
from thinc.types import Floats3d

from ..backends.mix import concat_last_axis
from ..errors import check_grad, check_layers
from ..gradients import zeros_view
from ..types import MixModelT
from ._mixing import last_layers, no_layers


@registry.layers("thinc_trf_layers.concat_last.v1")
def concat_last(k: int) -> MixModelT:
    """The last ``k`` hidden layers side by side, ``concatenate(Xs[-k:], axis=-1)``: (spans,
    wordpieces, k * width). See docs/mixing.md."""
    return last_layers("concat_last", forward, k, concat=True)


def forward(
    model: MixModelT, Xs: List[Floats3d], is_train: bool
) -> Tuple[Floats3d, Callable[[Floats3d], List[Floats3d]]]:
    k: int = model.attrs["k"]
    empty = no_layers(model, Xs)
    if empty is not None:
        return empty
    shape, dtype = check_layers(model.name, Xs, min_layers=k)
    ops = model.ops
    n = len(Xs)
    width = shape[-1]
    Y = concat_last_axis(ops, Xs[n - k :])
    out_shape = (shape[0], shape[1], k * width)

    def backprop(dY: Floats3d) -> List[Floats3d]:
        check_grad(model.name, dY, out_shape, dtype)
        # each used layer's gradient is a view of its block of dY, as in Thinc's concatenate
        blocks = [dY[:, :, j * width : (j + 1) * width] for j in range(k)]
        return [zeros_view(ops, shape, dtype) for _ in range(n - k)] + blocks

    return Y, backprop
