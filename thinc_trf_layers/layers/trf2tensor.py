from typing import Callable, List, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats3d

from ..errors import check_list_grad
from ..reading import backprop, mix, read, reader
from ..types import TransformerOutputT

InT = Sequence[TransformerOutputT]  # Sequence, not List: see trf2ragged
OutT = List[Floats3d]


@registry.layers("thinc_trf_layers.trf2tensor.v1")
def trf2tensor(
    index: int = 0, *, grad_factor: float = 1.0, on_unreached: str = "warn"
) -> Model[InT, OutT]:
    """Tensor ``index`` of every Doc's transformer output: one (spans, wordpieces, width)
    array per Doc, padding included. See docs/transformer_outputs.md."""
    return reader(
        f"trf2tensor({index})",
        forward,
        index=index,
        mix=None,
        grad_factor=grad_factor,
        on_unreached=on_unreached,
    )


def forward(model: Model[InT, OutT], Xs: InT, is_train: bool) -> Tuple[OutT, Callable[[OutT], InT]]:
    docs = read(model, Xs, is_train)
    width, dtype = mix(model, docs, is_train)
    Ys: OutT = [
        doc.array if doc.array is not None else model.ops.alloc3f(0, 0, width, dtype=dtype)
        for doc in docs
    ]
    shapes, dtypes = [tuple(Y.shape) for Y in Ys], [Y.dtype for Y in Ys]
    grad_factor: float = model.attrs["grad_factor"]

    def backprop_tensors(dYs: OutT) -> InT:
        check_list_grad(model.name, dYs, shapes, dtypes)
        # the gradients are the caller's: copied before backprop scales them in place
        grads = list(dYs) if grad_factor in (0.0, 1.0) else [model.ops.xp.array(d) for d in dYs]
        return backprop(model, docs, grads)

    return Ys, backprop_tensors
