"""What the pooling layers share: the forward of every reduction, and the ``initialize`` of
the composites (``trf_pool``, ``cls_pool``, ``token_pool``, ``span_pool``)."""

from typing import Any, Callable, Optional, Tuple

from thinc.api import Model
from thinc.types import Floats2d, Ragged

from ..errors import LayerInputError, check_grad, check_ragged, describe, input_error
from ..reading import check_reader_args
from ..wordpieces import Wordpieces

#: What a reduction layer's forward returns.
ReductionOut = Tuple[Floats2d, Callable[[Floats2d], Ragged]]


def reduction(
    model: Model[Ragged, Floats2d],
    X: Ragged,
    is_train: bool,
    reduce: Callable[..., Any],
    backprop_reduce: Callable[..., Ragged],
) -> ReductionOut:
    """What every reduction layer's forward runs (a max also returns its positions, which
    its backprop takes). Each layer keeps a named forward of its own: Thinc's data
    validation reads the forward's name and annotations."""
    check_rows(model, X)
    ops = model.ops
    out = reduce(ops, X)
    Y, which = out if isinstance(out, tuple) else (out, None)
    shape, dtype = Y.shape, Y.dtype

    def backprop(dY: Floats2d) -> Ragged:
        check_grad(model.name, dY, shape, dtype)
        return backprop_reduce(ops, dY, X) if which is None else backprop_reduce(ops, dY, which, X)

    return Y, backprop


def check_rows(model: Model[Any, Any], X: Any) -> Tuple[Any, int]:
    """A pooling's input checked (``errors.check_ragged``); its lengths and width. A
    ``Wordpieces`` is valid as built: checking it would gather its rows."""
    if isinstance(X, Wordpieces):
        return X.lengths, X.width
    return check_ragged(model.name, model.ops, X)


def check_pooling(layer: str, pooling: Any) -> None:
    """A composite's pooling argument: a Thinc Model."""
    if not isinstance(pooling, Model):
        raise input_error(
            layer, pooling, "pooling to be a Thinc Model[Ragged, Floats2d] (such as reduce_mean())"
        )


def plain(X: Any) -> Any:
    """A ``Wordpieces`` as a plain Ragged of its rows, for a child's ``initialize`` (Thinc's
    validation reads a Ragged's fields; a Wordpieces gathers its rows only when asked)."""
    if not isinstance(X, Wordpieces):
        return X
    data: Any = X.dataXd
    R = Ragged(data, X.lengths)
    R.data = data  # as it is: Thinc's Ragged would keep rows of width 0 as (0, 0) data
    return R


def sample_rows(ops: Any, width: int) -> Ragged:
    """Two made-up rows of three wordpieces of ``width``, to initialize a pooling on."""
    data = ops.alloc2f(6, width)
    data += ops.asarray2f(ops.xp.linspace(-1.0, 1.0, 6 * width, dtype="f").reshape(6, width))
    return Ragged(data, ops.asarray1i([3, 3]))


def init_rest(model: Model[Any, Any], width: int) -> None:
    """Initialize the layers after a composite's reader for rows of ``width``."""
    sample: Any = sample_rows(model.ops, width)
    for layer in model.layers[1:]:
        layer.initialize(X=sample)
        sample = layer.predict(sample)
    _set_dims(model, width, int(sample.shape[1]))


def _set_dims(model: Model[Any, Any], nI: Optional[int], nO: Optional[int]) -> None:
    for dim, value in (("nI", nI), ("nO", nO)):
        if value and model.has_dim(dim) is None:
            model.set_dim(dim, value)


def init_pooled(model: Model[Any, Any], X: Optional[Any] = None, Y: Optional[Any] = None) -> None:
    """Initialize a composite's layers in order, each on the sample as the layers before it
    turn it; ``nI`` is the width the reader reads, ``nO`` the pooling's output width."""
    sample = X
    for i, layer in enumerate(model.layers):
        layer.initialize(
            X=plain(sample) if i else sample, Y=Y if i == len(model.layers) - 1 else None
        )
        if sample is not None:
            sample = layer.predict(sample)
    nO = int(sample.shape[1]) if sample is not None else model.layers[-1].maybe_get_dim("nO")
    _set_dims(model, model.layers[0].maybe_get_dim("nO"), nO)


def init_lazy(model: Model[Any, Any], X: Optional[Any] = None, Y: Optional[Any] = None) -> None:
    """``init_pooled``; without a sample, the layers after the reader are initialized for the
    width the reader knows, or by ``pool_rows`` on the first batch (attention_pool needs one)."""
    if X is not None:
        init_pooled(model, X, Y)
        return
    model.layers[0].initialize()
    width = model.layers[0].maybe_get_dim("nO")
    if width:
        init_rest(model, width)


def pooled_reader(
    layer: str,
    reader: Callable[..., Model[Any, Any]],
    forward: Callable[..., Any],
    pooling: Any,
    index: int,
    mix: Any,
    grad_factor: float,
    on_unreached: str,
) -> Model[Any, Any]:
    """``token_pool`` and ``span_pool``: ``pooling`` over the rows of ``reader(index, ...)``."""
    check_pooling(layer, pooling)
    check_reader_args(layer, index, mix, grad_factor, on_unreached)
    name = f"{layer}({pooling.name}{', ' + mix.name if mix is not None else ''})"
    read = reader(index, mix=mix, grad_factor=grad_factor, on_unreached=on_unreached)
    read.name = f"{name}.{read.name}"  # its errors name the layer the user built
    dims = {"nI": None, "nO": pooling.maybe_get_dim("nO")}
    return Model(name, forward, init=init_lazy, layers=[read, pooling], dims=dims)


def pool_rows(
    model: Model[Any, Any], X: Any, is_train: bool
) -> Tuple[Any, Floats2d, Callable[[Floats2d], Any]]:
    """Read ``X`` with a composite's reader and run the layers after it on the rows ``R``
    (initialized here if ``init_lazy`` could not), checking that the result has one row per
    row of ``R``; returns ``R`` too."""
    R, bp_read = model.layers[0](X, is_train)
    if model.has_dim("nI") is None and R.width:
        init_rest(model, R.width)
    callbacks = [bp_read]
    Y = R
    for layer in model.layers[1:]:
        Y, bp = layer(Y, is_train)
        callbacks.append(bp)
    if getattr(Y, "ndim", None) != 2 or int(Y.shape[0]) != len(R.lengths):
        raise LayerInputError(
            f"{model.name}: the pooling {model.layers[-1].name!r} should return one row per group "
            f"of wordpieces ({len(R.lengths)}), a Floats2d, got {describe(Y)}."
        )

    def backprop(dY: Floats2d) -> Any:
        for bp in reversed(callbacks):
            dY = bp(dY)
        return dY

    return R, Y, backprop
