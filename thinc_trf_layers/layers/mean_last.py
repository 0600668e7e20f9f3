from typing import Callable, List, Tuple

import numpy
from thinc.api import registry
from thinc.types import Floats3d

from ..backends.mix import mix_forward
from ..backends.reduce import acc_dtype
from ..errors import check_grad, check_layers
from ..gradients import zeros_view
from ..types import MixModelT
from ._mixing import last_layers, no_layers


@registry.layers("thinc_trf_layers.mean_last.v1")
def mean_last(k: int) -> MixModelT:
    """The mean of the last ``k`` hidden layers, ``mean(Xs[-k:])``. Its gradients are
    read-only on NumPy (the k share one array). See docs/mixing.md."""
    return last_layers("mean_last", forward, k, concat=False)


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
    used = list(range(n - k, n))
    coefs = ops.xp.full((k,), 1.0 / k, dtype=acc_dtype(dtype))
    Y = mix_forward(ops, Xs, used, coefs)

    def backprop(dY: Floats3d) -> List[Floats3d]:
        check_grad(model.name, dY, shape, dtype)
        d = ops.xp.multiply(dY, coefs[0], dtype=coefs.dtype).astype(dtype, copy=False)
        unused = [zeros_view(ops, shape, dtype) for _ in range(n - k)]
        if isinstance(d, numpy.ndarray):
            d.flags.writeable = False
            return unused + [d[...] for _ in range(k)]
        # CuPy arrays cannot be made read-only
        return unused + [d] + [d.copy() for _ in range(k - 1)]

    return Y, backprop
