from typing import Any, Callable, Tuple

import numpy
from thinc.api import Model, registry
from thinc.types import Ragged

from ..errors import LayerInputError, check_int
from ..wordpieces import Wordpieces, storage_grads
from ._pooling import check_rows


@registry.layers("thinc_trf_layers.pick_token.v1")
def pick_token(token_index: int = 0) -> Model[Ragged, Ragged]:
    """The wordpiece at ``token_index`` among the real ones of every span (every piece of a
    row; a plain Ragged's row is one piece), as a ``Wordpieces`` over the same arrays. See
    docs/transformer_outputs.md#pick_tokentoken_index0."""
    check_int("pick_token", "token_index", token_index)
    return Model(f"pick_token({token_index})", forward, attrs={"token_index": token_index})


def forward(
    model: Model[Ragged, Ragged], X: Ragged, is_train: bool
) -> Tuple[Ragged, Callable[[Ragged], Ragged]]:
    t: int = model.attrs["token_index"]
    check_rows(model, X)
    W = Wordpieces.from_ragged(model.ops, X)
    n = W.length
    bad = numpy.flatnonzero((n > 0) & ((t >= n) | (t < -n)))
    if len(bad):
        p = int(bad[0])
        b = int(numpy.searchsorted(W.row_ptr, p, side="right")) - 1
        where = (
            f"span {p - int(W.row_ptr[b])} of Doc {b}" if isinstance(X, Wordpieces) else f"row {b}"
        )
        raise LayerInputError(
            f"{model.name}: token index {t} is out of range for {where}, which has {int(n[p])} "
            f"real wordpiece(s); expected an index in [{-int(n[p])}, {int(n[p])})."
        )
    P = W.pick(t, per_piece=True)

    def backprop(dP: Ragged) -> Ragged:
        grads: Any = storage_grads(model.name, P, dP)
        return W.with_arrays(grads) if isinstance(X, Wordpieces) else Ragged(grads[0], X.lengths)

    return P, backprop
