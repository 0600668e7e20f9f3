from typing import Any, Callable, List, Optional, Sequence, Tuple

from thinc.api import Model, registry
from thinc.types import Floats3d

from ..containers import check_batch
from ..errors import LayerGradientError, LayerInputError, check_grad_factor, check_int
from ..errors import check_list_grad, describe
from ..gradients import unreached
from ..types import TransformerOutputT

InT = Sequence[TransformerOutputT]  # Sequence, not List: see trf2ragged
OutT = List[List[Floats3d]]


@registry.layers("thinc_trf_layers.trf2layers.v1")
def trf2layers(*, n_layers: Optional[int] = None, grad_factor: float = 1.0) -> Model[InT, OutT]:
    """Every hidden layer of every Doc's transformer output, embeddings first: per Doc a list
    of (spans, wordpieces, width) arrays. See docs/transformer_outputs.md."""
    factor = check_grad_factor("trf2layers", grad_factor)
    if n_layers is not None:
        check_int("trf2layers", "n_layers", n_layers, minimum=1)
    return Model("trf2layers", forward, attrs={"grad_factor": factor, "n_layers": n_layers})


def forward(model: Model[InT, OutT], Xs: InT, is_train: bool) -> Tuple[OutT, Callable[[OutT], InT]]:
    grad_factor: float = model.attrs["grad_factor"]
    expected: Optional[int] = model.attrs["n_layers"]
    adapters = check_batch(model.name, Xs)
    docs = [
        a.read_layers(model.name, model.ops, X, is_train, expected) for X, a in zip(Xs, adapters)
    ]
    for i, doc in enumerate(docs):
        if expected is not None and doc.layers and len(doc.layers) != expected:
            raise LayerInputError(
                f"{model.name}: Doc {i} has {len(doc.layers)} hidden layers ({doc.adapter.name}); "
                f"expected n_layers={expected}."
            )
    full = [doc for doc in docs if doc.layers]
    n_layers = len(full[0].layers) if full else (expected or 0)
    width = int(full[0].layers[0].shape[2]) if full else 0
    dtype = full[0].layers[0].dtype if full else "float32"
    Ys: OutT = [
        list(doc.layers) or [model.ops.alloc3f(0, 0, width, dtype=dtype) for _ in range(n_layers)]
        for doc in docs
    ]
    shapes = [[tuple(L.shape) for L in Y] for Y in Ys]
    dtypes = [[L.dtype for L in Y] for Y in Ys]

    def backprop(dYs: OutT) -> InT:
        if not isinstance(dYs, (list, tuple)) or len(dYs) != len(shapes):
            raise LayerGradientError(
                f"{model.name}: backprop expected a list of {len(shapes)} gradients, one list of "
                f"layers per Doc, got {describe(dYs)}."
            )
        for i, (dY, s, t) in enumerate(zip(dYs, shapes, dtypes)):
            check_list_grad(f"{model.name} (Doc {i})", dY, s, t)
        odd = next((doc for doc in docs if doc.layers and not all(doc.reaches)), None)
        if grad_factor != 0.0 and odd is not None and not model.attrs.get("warned"):
            n = len(odd.reaches)
            what = (
                f"the gradients of hidden layers 0..{n - 2} (all but the last one, which is "
                "last_hidden_state)"
            )
            unreached(model.name, what, odd.adapter.unreached_reason)
            model.attrs["warned"] = True  # once per layer
        dXs: List[Any] = []
        for doc, dY in zip(docs, dYs):
            if grad_factor not in (0.0, 1.0):
                # the gradients are the caller's (scaled into new arrays); the unreached are ignored
                dY = [dL * grad_factor if r else dL for dL, r in zip(dY, doc.reaches)]
            dXs.extend(doc.grad_entries(None if grad_factor == 0.0 else dY))
        return dXs

    return Ys, backprop
