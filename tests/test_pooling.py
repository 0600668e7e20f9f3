"""The pooling layers: gradients, values against NumPy loops, edge cases, errors."""
import contextlib
import re
from typing import Any, Callable, ContextManager, Dict, List
from unittest import mock

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from thinc.api import Model, NumpyOps, Ops
from thinc.types import Ragged

from helpers import make_ops, ops_params, set_ops, to_numpy, to_ops
from thinc_trf_layers import (
    LayerGradientError,
    LayerInputError,
    attention_pool,
    check_gradients,
    reduce_first,
    reduce_gem,
    reduce_last,
    reduce_max,
    reduce_mean,
    reduce_mean_max,
    reduce_mean_sqrt_len,
    reduce_sum,
    reduce_weighted_mean,
    trf_pool,
    with_padded_mask,
)
from thinc_trf_layers.backends import reduce as pooling
from thinc_trf_layers.testing.strategies import padded_batches, ragged


@pytest.fixture(params=ops_params(fallback=True))
def ops(request: Any, monkeypatch: Any) -> Ops:
    """As conftest's ``ops``, plus NumpyOps without the compiled kernels (the NumPy
    backend that installs built without a C compiler use)."""
    if request.param == "numpy-fallback":
        monkeypatch.setattr(pooling, "COMPILED", None)
        return NumpyOps()
    return make_ops(request.param)

# ----------------------------------------------------------------- NumPy references


def _rows(data: Any, lengths: Any) -> List[Any]:
    out, start = [], 0
    for n in lengths:
        out.append(data[start : start + int(n)])
        start += int(n)
    return out


def _max_first_nan(r: Any) -> Any:
    """Column max where any NaN wins (a loop, independent of numpy.max's NaN rules)."""
    out = numpy.empty(r.shape[1], dtype="float64")
    for j in range(r.shape[1]):
        best = float(r[0, j])
        for v in r[1:, j]:
            if numpy.isnan(best):
                break
            if numpy.isnan(v) or v > best:
                best = float(v)
        out[j] = best
    return out


def _weighted(r: Any) -> Any:
    w = numpy.arange(1, len(r) + 1, dtype="float64")
    return (r * w[:, None]).sum(0) / w.sum()


REFS: Dict[str, Callable[[Any], Any]] = {
    "reduce_first": lambda r: r[0],
    "reduce_last": lambda r: r[-1],
    "reduce_sum": lambda r: r.sum(0),
    "reduce_mean": lambda r: r.sum(0) / len(r),
    "reduce_max": _max_first_nan,
    "reduce_mean_max": lambda r: numpy.concatenate([r.sum(0) / len(r), _max_first_nan(r)]),
    "reduce_mean_sqrt_len": lambda r: r.sum(0) / numpy.sqrt(len(r)),
    "reduce_weighted_mean": _weighted,
    "reduce_gem": lambda r: (numpy.maximum(r, 1e-6) ** 3).mean(0) ** (1 / 3),
}

MAKERS: Dict[str, Callable[[], Model[Ragged, Any]]] = {
    "reduce_first": reduce_first,
    "reduce_last": reduce_last,
    "reduce_sum": reduce_sum,
    "reduce_mean": reduce_mean,
    "reduce_max": reduce_max,
    "reduce_mean_max": reduce_mean_max,
    "reduce_mean_sqrt_len": reduce_mean_sqrt_len,
    "reduce_weighted_mean": reduce_weighted_mean,
    "reduce_gem": reduce_gem,
}
NAMES = sorted(MAKERS)
ALL_NAMES = NAMES + ["attention_pool"]


def make(name: str) -> Model[Ragged, Any]:
    return attention_pool() if name == "attention_pool" else MAKERS[name]()


def reference(name: str, data: Any, lengths: Any) -> Any:
    data = numpy.asarray(data, dtype="float64")
    width = data.shape[1] * (2 if name == "reduce_mean_max" else 1)
    out = [REFS[name](r) if len(r) else numpy.zeros(width) for r in _rows(data, lengths)]
    return numpy.asarray(out, dtype="float64").reshape(len(out), width)


def run(model: Model[Any, Any], ops: Ops, X: Any) -> Any:
    set_ops(model, ops)
    Xo = to_ops(ops, X)
    model.initialize(X=Xo)
    Y, backprop = model(Xo, is_train=True)
    return Y, backprop


TOL = {"float16": 2e-3, "float32": 1e-5, "float64": 1e-10}


#: NumpyOps with the compiled kernels, and without them (the NumPy backend).
KERNELS = ["compiled", "numpy"]


def use_kernels(kernels: str) -> ContextManager[Any]:
    """Switch the compiled kernels off for NumpyOps within the block, for "numpy"."""
    return mock.patch.object(pooling, "COMPILED", None) if kernels == "numpy" else contextlib.nullcontext()


def distinct(a: Any) -> Any:
    """``a`` with no two values equal, for gradient checks of a max (finite differences
    are meaningless at a tie): steps of 0.1 in a shuffled order, the drawn values
    (clipped to +-10) nudging them by at most 0.01."""
    steps = numpy.random.RandomState(0).permutation(a.size).reshape(a.shape) * 0.1
    return steps + numpy.clip(a, -10, 10) * 1e-3

# ------------------------------------------------------------------ values


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("ldtype", ["int32", "int64"])
def test_values_against_loops(name: str, dtype: str, ldtype: str, ops: Any) -> None:
    rng = numpy.random.RandomState(0)
    lengths = numpy.asarray([3, 0, 1, 5, 0, 2], dtype=ldtype)
    data = rng.uniform(-2, 2, (int(lengths.sum()), 4)).astype(dtype)
    Y, _ = run(make(name), ops, Ragged(data, lengths))
    Y = to_numpy(Y)
    assert Y.dtype == numpy.dtype(dtype)
    assert_allclose(Y.astype("float64"), reference(name, data, lengths), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_float16_sums_accumulate_in_float32(name: str, ops: Any) -> None:
    # 2048 ones then small values: a float16 accumulator would stop at 2048
    n = 3000
    data = numpy.ones((n, 1), dtype="float16")
    lengths = numpy.asarray([n], dtype="int32")
    Y, _ = run(make(name), ops, Ragged(data, lengths))
    Y = to_numpy(Y).astype("float64")
    assert_allclose(Y, reference(name, data, lengths), rtol=2e-3)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_all_empty_batch_keeps_width(name: str, ops: Any) -> None:
    data = numpy.zeros((0, 5), dtype="float32")
    lengths = numpy.zeros((3,), dtype="int32")
    Y, backprop = run(make(name), ops, Ragged(data, lengths))
    width = 10 if name == "reduce_mean_max" else 5
    assert Y.shape == (3, width)
    assert_array_equal(to_numpy(Y), 0)
    dX = backprop(Y + 1)
    assert dX.dataXd.shape == (0, 5)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_empty_batch(name: str, ops: Any) -> None:
    X = Ragged(numpy.zeros((0, 4), dtype="float32"), numpy.zeros((0,), dtype="int64"))
    model = make(name)
    set_ops(model, ops)
    model.initialize(X=Ragged(numpy.ones((2, 4), dtype="float32"), numpy.asarray([2], dtype="int32")))
    Y, backprop = model(to_ops(ops, X), is_train=True)
    width = 8 if name == "reduce_mean_max" else 4
    assert Y.shape == (0, width)
    assert backprop(Y).dataXd.shape == (0, 4)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_zero_length_rows_pool_to_zeros_with_zero_gradient(name: str, ops: Any) -> None:
    rng = numpy.random.RandomState(3)
    lengths = numpy.asarray([0, 2, 0, 1, 0], dtype="int32")
    data = rng.uniform(-1, 1, (3, 2)).astype("float32")
    Y, backprop = run(make(name), ops, Ragged(data, lengths))
    Y = to_numpy(Y)
    assert_array_equal(Y[[0, 2, 4]], 0)
    # a gradient only on the empty rows reaches nothing
    dY = numpy.zeros_like(Y)
    dY[[0, 2, 4]] = 1
    dX = to_numpy(backprop(to_ops(ops, dY)).dataXd)
    assert_array_equal(dX, 0)


@pytest.mark.parametrize("name", ["reduce_max", "reduce_mean_max"])
@pytest.mark.parametrize("where", [0, 1, 3])
def test_max_nan_anywhere_in_the_row(name: str, where: int, ops: Any) -> None:
    data = numpy.asarray([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [2.0, 9.0], [4.0, 4.0]], dtype="float32")
    lengths = numpy.asarray([4, 1], dtype="int32")
    data[where, 0] = numpy.nan
    Y, _ = run(make(name), ops, Ragged(data, lengths))
    Y = to_numpy(Y)
    W = 2
    maxes = Y[:, W:] if name == "reduce_mean_max" else Y
    assert numpy.isnan(maxes[0, 0])
    assert maxes[0, 1] == 9.0
    assert_array_equal(maxes[1], [4.0, 4.0])


@pytest.mark.parametrize("name", ["reduce_max", "reduce_mean_max"])
def test_max_gradient_goes_to_the_first_of_several_nans(name: str, ops: Any) -> None:
    # a long row: CuPy's argmax, left to itself, may take a later NaN
    data = numpy.zeros((40, 64), dtype="float32")
    data[[1, 16, 33], 5] = numpy.nan
    Y, backprop = run(make(name), ops, Ragged(data, numpy.asarray([40], dtype="int32")))
    dY = numpy.zeros(to_numpy(Y).shape, dtype="float32")
    dY[0, -64 + 5] = 1.0  # the max's column 5
    dX = to_numpy(backprop(to_ops(ops, dY)).dataXd)
    expected = numpy.zeros_like(data)
    expected[1, 5] = 1.0
    assert_array_equal(dX, expected)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_nan_stays_in_its_row(name: str, ops: Any) -> None:
    data = numpy.ones((5, 2), dtype="float64")
    data[1, :] = numpy.nan
    lengths = numpy.asarray([3, 2], dtype="int64")
    Y, _ = run(make(name), ops, Ragged(data, lengths))
    Y = to_numpy(Y)
    assert numpy.isfinite(Y[1]).all()
    if name not in ("reduce_first", "reduce_last"):
        assert numpy.isnan(Y[0]).all()


@pytest.mark.parametrize("name", ["reduce_max", "reduce_mean_max"])
def test_max_gradient_goes_to_the_first_maximum(name: str, ops: Any) -> None:
    # ties within a pair of positions, across pairs, and between the pairs' winners
    data = numpy.asarray([[1, 5, 5], [3, 5, 1], [3, 2, 5], [0, 0, 5], [7, 7, 7]], dtype="float32")
    lengths = numpy.asarray([4, 0, 1], dtype="int32")
    Y, backprop = run(make(name), ops, Ragged(data, lengths))
    dY = numpy.zeros(Y.shape, dtype="float32")
    dY[:, -3:] = 1.0
    dX = to_numpy(backprop(to_ops(ops, dY)).dataXd)
    if name == "reduce_mean_max":
        dX = dX - to_numpy(backprop(to_ops(ops, numpy.zeros_like(dY))).dataXd)
    assert_array_equal(dX, [[0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 1]])


@settings(max_examples=30)
@given(X=ragged(dtype="float64", max_width=3), seed=st.integers(0, 2**16))
def test_the_compiled_kernels_agree_with_the_generic_code(X: Ragged, seed: int) -> None:
    """Every reduction and its backprop, on NumpyOps with the kernels and on the generic
    Ops, with a NaN somewhere half of the time."""
    rng = numpy.random.RandomState(seed)
    data = X.dataXd.copy()
    if data.size and rng.rand() < 0.5:
        data.reshape(-1)[rng.randint(data.size)] = numpy.nan
    names = ["sum", "mean", "mean_sqrt_len", "weighted_mean", "first", "last", "max", "mean_max"]
    for dtype in ("float32", "float64", "float16"):
        R = Ragged(data.astype(dtype), X.lengths)
        for name in names:
            reduce, backprop = getattr(pooling, f"reduce_{name}"), getattr(pooling, f"backprop_reduce_{name}")
            outs = [reduce(ops, R) for ops in (NumpyOps(), Ops())]
            (Yf, wf), (Yg, wg) = [o if isinstance(o, tuple) else (o, None) for o in outs]
            tol = 1e-3 if dtype == "float16" else 1e-6
            assert_allclose(Yf, Yg, rtol=tol, atol=tol)
            dY = rng.uniform(-1, 1, Yf.shape).astype(dtype)
            grads = [backprop(ops, dY, R) if w is None else backprop(ops, dY, w, R) for ops, w in ((NumpyOps(), wf), (Ops(), wg))]
            assert_allclose(grads[0].dataXd, grads[1].dataXd, rtol=tol, atol=tol)


# --------------------------------------------------------------- gradients


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", NAMES)
@given(X=ragged(dtype="float64", max_width=3, bound=3.0))
def test_gradients(name: str, kernels: str, X: Ragged) -> None:
    model = make(name)
    model.initialize(X=X)
    if name == "reduce_gem":
        # keep away from the clamp's kink and from zero
        X = Ragged(numpy.abs(X.dataXd) + 0.1, X.lengths)
    if name in ("reduce_max", "reduce_mean_max"):
        X = Ragged(distinct(X.dataXd), X.lengths)
    with use_kernels(kernels):
        check_gradients(model, X, rtol=1e-4, atol=1e-5)


@given(X=ragged(dtype="float64", max_width=3, bound=2.0, min_rows=1), seed=st.integers(0, 2**16))
def test_attention_pool_gradients_with_parameters(X: Ragged, seed: int) -> None:
    model = attention_pool()
    model.initialize(X=X)
    rng = numpy.random.RandomState(seed)
    model.set_param("q", rng.uniform(-1, 1, model.get_param("q").shape).astype("float32"))
    check_gradients(model, X, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_gradients_one_row_width_one(name: str) -> None:
    X = Ragged(numpy.asarray([[0.3], [0.7], [0.2]]), numpy.asarray([3], dtype="int64"))
    model = make(name)
    model.initialize(X=X)
    check_gradients(model, X)


# ----------------------------------------------------------------- attention_pool


def test_attention_pool_values_and_dims(ops: Any) -> None:
    rng = numpy.random.RandomState(0)
    lengths = numpy.asarray([2, 0, 3], dtype="int32")
    data = rng.uniform(-1, 1, (5, 4)).astype("float32")
    model = attention_pool()
    Y, _ = run(model, ops, Ragged(data, lengths))
    assert model.get_dim("nI") == 4 and model.get_dim("nO") == 4
    q = rng.uniform(-1, 1, 4).astype("float32")
    model.set_param("q", model.ops.asarray(q))
    Y = to_numpy(model.predict(to_ops(ops, Ragged(data, lengths))))
    want = []
    for r in _rows(data.astype("float64"), lengths):
        if not len(r):
            want.append(numpy.zeros(4))
            continue
        s = r @ q
        a = numpy.exp(s - s.max())
        a /= a.sum()
        want.append((a[:, None] * r).sum(0))
    assert_allclose(Y, numpy.asarray(want), rtol=1e-5, atol=1e-6)


def test_attention_pool_serialization() -> None:
    rng = numpy.random.RandomState(0)
    X = Ragged(rng.uniform(-1, 1, (5, 3)).astype("float32"), numpy.asarray([2, 3], dtype="int32"))
    model = attention_pool()
    model.initialize(X=X)
    model.set_param("q", rng.uniform(-1, 1, 3).astype("float32"))
    copy = attention_pool(3)
    copy.initialize()
    copy.from_bytes(model.to_bytes())
    assert_array_equal(copy.predict(X), model.predict(X))


def test_attention_pool_errors() -> None:
    with pytest.raises(LayerInputError, match="attention_pool: expected a positive int nI"):
        attention_pool(0)
    model = attention_pool(3)
    with pytest.raises(LayerInputError, match="width nI=3"):
        model.initialize(X=Ragged(numpy.zeros((2, 4), dtype="float32"), numpy.asarray([2], dtype="int32")))
    model.initialize()
    for data in (numpy.zeros((2, 4), "float32"), numpy.zeros((3, 0), "float32"),
                 numpy.zeros((0, 2), "float32")):  # rows of width 0, no rows of width 2
        X = Ragged(data, numpy.asarray([data.shape[0]], dtype="int32"))
        for ops in (NumpyOps(), Ops()):
            model.ops = ops
            with pytest.raises(LayerInputError, match="attention_pool: .*width nI=3"):
                model.predict(X)
    empty = Ragged(numpy.zeros((0, 0), "float32"), numpy.asarray([0], dtype="int32"))
    assert model.predict(empty).shape == (1, 3)  # Thinc's empty Ragged: the width of nI


def test_gem_arguments() -> None:
    with pytest.raises(LayerInputError, match="reduce_gem: expected a positive number p"):
        reduce_gem(0)
    with pytest.raises(LayerInputError, match="reduce_gem: expected a positive number eps"):
        reduce_gem(3.0, eps=-1)
    X = Ragged(numpy.asarray([[1.0], [2.0]]), numpy.asarray([2], dtype="int32"))
    assert_allclose(reduce_gem(1.0).predict(X), [[1.5]])


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ALL_NAMES)
def test_input_errors(name: str) -> None:
    model = make(name)
    good = Ragged(numpy.zeros((3, 2), dtype="float32"), numpy.asarray([1, 2], dtype="int32"))
    model.initialize(X=good)
    lname = model.name
    with pytest.raises(LayerInputError, match=rf"{re.escape(lname)}: expected a Ragged \(rows"):
        model.predict(numpy.zeros((3, 2), dtype="float32"))  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match="whose data is a 2d floating-point array"):
        model.predict(Ragged(numpy.zeros((3, 2, 1), dtype="float32"), numpy.asarray([1, 2], dtype="int32")))
    with pytest.raises(LayerInputError, match="whose data is a 2d floating-point array"):
        model.predict(Ragged(numpy.zeros((3, 2), dtype="int32"), numpy.asarray([1, 2], dtype="int32")))
    if hasattr(numpy, "longdouble") and numpy.dtype("longdouble") != numpy.float64:
        with pytest.raises(LayerInputError, match="of float16, float32 or float64"):
            model.predict(Ragged(numpy.zeros((3, 2), "longdouble"), numpy.asarray([1, 2], "int32")))
    with pytest.raises(LayerInputError, match=r"sum to the number of data rows \(3\); they sum to 4"):
        model.predict(Ragged(numpy.zeros((3, 2), dtype="float32"), numpy.asarray([2, 2], dtype="int32")))
    with pytest.raises(LayerInputError, match="non-negative Ragged lengths"):
        model.predict(Ragged(numpy.zeros((3, 2), dtype="float32"), numpy.asarray([4, -1], dtype="int32")))
    with pytest.raises(LayerInputError, match="1d integer array"):
        model.predict(Ragged(numpy.zeros((3, 2), dtype="float32"), numpy.asarray([1.0, 2.0])))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_gradient_errors(name: str) -> None:
    model = make(name)
    X = Ragged(numpy.zeros((3, 2), dtype="float32"), numpy.asarray([1, 2], dtype="int32"))
    model.initialize(X=X)
    Y, backprop = model(X, is_train=True)
    with pytest.raises(LayerGradientError, match=rf"{re.escape(model.name)}: backprop expected a gradient of shape"):
        backprop(numpy.zeros((Y.shape[0] + 1, Y.shape[1]), dtype="float32"))
    with pytest.raises(LayerGradientError, match="float32"):
        backprop(numpy.zeros(Y.shape, dtype="float64"))


# ------------------------------------------------------------- padded batches


def _padded_reference(name: str, X: Any, mask: Any) -> Any:
    rows = [X[i][mask[i]] for i in range(X.shape[0])]
    lengths = numpy.asarray([len(r) for r in rows])
    data = numpy.concatenate(rows + [X.reshape(-1, X.shape[-1])[:0]])
    return reference(name, data, lengths)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("side", ["right-lengths", "right-mask", "left-mask"])
@settings(max_examples=15)
@given(batch=padded_batches(dtype="float64", bound=3.0))
def test_padded_matches_ragged(name: str, side: str, batch: Any) -> None:
    X, lengths = batch
    B, L, W = X.shape
    X = X.copy()
    mask = numpy.arange(L)[None, :] < lengths[:, None]
    if side == "left-mask":
        mask = mask[:, ::-1].copy()
        X = X[:, ::-1].copy()
    X[~mask] = numpy.nan  # padding never counts, even NaN
    second: Any = lengths if side == "right-lengths" else mask.astype("int32")
    model = with_padded_mask(make(name))
    model.initialize(X=(X, second))
    if name == "attention_pool":
        model.layers[0].set_param("q", numpy.linspace(-1, 1, W).astype("float32"))
    Y, backprop = model((X, second), is_train=True)
    if name == "attention_pool":
        Xr = Ragged(numpy.concatenate([X[i][mask[i]] for i in range(B)] + [X.reshape(-1, X.shape[-1])[:0]]), mask.sum(1))
        want = model.layers[0].predict(Xr)
    else:
        want = _padded_reference(name, X, mask)
    assert Y.shape == want.shape and Y.dtype == X.dtype
    assert_allclose(Y, want, rtol=1e-9, atol=1e-9)
    dX, d_second = backprop(numpy.ones_like(Y))
    assert dX.shape == X.shape
    assert_array_equal(dX[~mask], 0)
    assert_array_equal(d_second, 0)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", ALL_NAMES)
@settings(max_examples=15)
@given(batch=padded_batches(dtype="float64", bound=3.0), left=st.booleans())
def test_padded_gradients(name: str, kernels: str, batch: Any, left: bool) -> None:
    X, lengths = batch
    L = X.shape[1]
    mask = numpy.arange(L)[None, :] < lengths[:, None]
    if left:
        mask = mask[:, ::-1].copy()
    X = distinct(X)
    if name == "reduce_gem":
        X = numpy.abs(X) + 0.1
    model = with_padded_mask(make(name))
    second = mask.astype("int64")
    model.initialize(X=(X, second))
    with use_kernels(kernels):
        check_gradients(model, (X, second), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("name", ["reduce_mean", "reduce_max", "reduce_mean_max", "reduce_weighted_mean"])
def test_padded_dtypes(dtype: str, name: str, ops: Any) -> None:
    rng = numpy.random.RandomState(0)
    X = rng.uniform(-1, 1, (3, 4, 2)).astype(dtype)
    lengths = numpy.asarray([4, 0, 2], dtype="int64")
    Y, backprop = run(with_padded_mask(make(name)), ops, (X, lengths))
    assert Y.dtype == numpy.dtype(dtype)
    mask = numpy.arange(4)[None, :] < lengths[:, None]
    assert_allclose(to_numpy(Y).astype("float64"), _padded_reference(name, X.astype("float64"), mask), rtol=TOL[dtype], atol=TOL[dtype])
    dX, _ = backprop(Y)
    assert dX.dtype == numpy.dtype(dtype) and dX.shape == X.shape


def test_padded_input_errors() -> None:
    model = with_padded_mask(reduce_mean())
    X = numpy.zeros((2, 3, 4), dtype="float32")
    name = r"with_padded_mask\(reduce_mean\)"
    with pytest.raises(LayerInputError, match=rf"{name}: expected a tuple \(X, lengths\)"):
        model.predict(X)  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match="3d floating-point array"):
        model.predict((X[0], numpy.asarray([1, 2])))  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match="one length per batch row"):
        model.predict((X, numpy.asarray([1, 2, 3])))
    with pytest.raises(LayerInputError, match="lengths between 0 and the padded length 3"):
        model.predict((X, numpy.asarray([1, 4])))
    with pytest.raises(LayerInputError, match="lengths between 0"):
        model.predict((X, numpy.asarray([-1, 2])))
    with pytest.raises(LayerInputError, match=r"attention mask of shape \(2, 3\)"):
        model.predict((X, numpy.ones((2, 4), dtype="int64")))
    with pytest.raises(LayerInputError, match="attention mask of 0s and 1s"):
        model.predict((X, numpy.full((2, 3), 2, dtype="int64")))
    with pytest.raises(LayerInputError, match="lengths .a 1d int array"):
        model.predict((X, numpy.asarray([1.0, 2.0], dtype="float32")))  # type: ignore[arg-type]
    Y, backprop = model((X, numpy.asarray([1, 2])), is_train=True)
    with pytest.raises(LayerGradientError, match=rf"{name}: backprop expected a gradient of shape \(2, 4\)"):
        backprop(numpy.zeros((2, 5), dtype="float32"))


def test_padded_bool_and_float_masks() -> None:
    rng = numpy.random.RandomState(0)
    X = rng.uniform(-1, 1, (2, 3, 2)).astype("float32")
    mask = numpy.asarray([[1, 1, 0], [0, 1, 1]])
    model = with_padded_mask(reduce_mean())
    Y1 = model.predict((X, mask.astype(bool)))  # type: ignore[arg-type]
    Y2 = model.predict((X, mask.astype("float32")))
    assert_array_equal(Y1, Y2)
    assert_allclose(Y1, [X[0, :2].mean(0), X[1, 1:].mean(0)], rtol=1e-6)


@pytest.mark.parametrize("name", ["reduce_max", "reduce_mean_max", "reduce_first", "reduce_last", "reduce_weighted_mean"])
def test_padded_holey_mask_and_nan(name: str, ops: Any) -> None:
    rng = numpy.random.RandomState(5)
    X = rng.uniform(-1, 1, (4, 5, 3))
    mask = numpy.asarray([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype="int32")
    X[2, 3, 1] = numpy.nan  # a real NaN, not first in its row
    X[3, 4, :] = numpy.nan  # NaN in padding
    Y, backprop = run(with_padded_mask(make(name)), ops, (X, mask))
    want = _padded_reference(name, X, mask != 0)
    assert_allclose(to_numpy(Y), want, rtol=1e-12, atol=1e-12)
    dX, _ = backprop(to_ops(ops, numpy.ones(Y.shape)))
    assert_array_equal(to_numpy(dX)[mask == 0], 0)


@pytest.mark.parametrize("name", ["reduce_sum", "reduce_max", "reduce_weighted_mean", "reduce_mean_max"])
def test_generic_kernels_in_chunks(name: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(pooling, "GATHER_BUDGET", 7)  # a few rows per chunk
    rng = numpy.random.RandomState(2)
    lengths = numpy.asarray([3, 0, 1, 5, 0, 2, 4], dtype="int64")
    data = rng.uniform(-2, 2, (int(lengths.sum()), 2))
    Y, _ = run(make(name), Ops(), Ragged(data, lengths))
    assert_allclose(Y, reference(name, data, lengths), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name",
    ["reduce_first", "reduce_last", "reduce_mean", "reduce_max", "reduce_sum", "reduce_mean_max",
     "reduce_mean_sqrt_len", "reduce_weighted_mean", "attention_pool"],
)
def test_zero_argument_registry_names(name: str) -> None:
    from thinc.api import registry

    model = registry.layers.get(f"thinc_trf_layers.{name}.v1")()
    X = Ragged(numpy.ones((3, 4), dtype="float32"), numpy.asarray([1, 2], dtype="int32"))
    model.initialize(X=X)
    assert model.predict(X).shape == (2, 8 if name == "reduce_mean_max" else 4)


@pytest.mark.parametrize("lengths", [[70, 0, 1], [2, 3, 0, 1]])
@pytest.mark.parametrize("name", ["reduce_max", "reduce_mean_max"])
def test_max_backprop_paths(name: str, lengths: List[int], ops: Any) -> None:
    # long rows take the "add at the maxima" path, short ones Thinc's backprop_reduce_max
    rng = numpy.random.RandomState(7)
    lens = numpy.asarray(lengths, dtype="int32")
    data = rng.permutation(int(lens.sum()) * 3).reshape(-1, 3).astype("float64")  # no ties
    model = make(name)
    set_ops(model, ops)
    X = to_ops(ops, Ragged(data, lens))
    Y, backprop = model(X, is_train=True)
    dY = rng.uniform(-1, 1, Y.shape)
    dX = to_numpy(backprop(to_ops(ops, dY)).dataXd)
    want = numpy.zeros_like(data)
    start = 0
    for b, n in enumerate(lens):
        if n:
            rows = data[start : start + n]
            for j in range(3):
                if name == "reduce_mean_max":
                    want[start : start + n, j] += dY[b, j] / n
                    want[start + rows[:, j].argmax(), j] += dY[b, 3 + j]
                else:
                    want[start + rows[:, j].argmax(), j] += dY[b, j]
        start += n
    assert_allclose(dX, want, rtol=1e-12, atol=1e-12)


@given(X=ragged(dtype="float64", max_width=3, bound=3.0), p=st.sampled_from([1.0, 2.5, 3.0, 4.2]))
def test_gem_learned_p_gradients(X: Ragged, p: float) -> None:
    model = reduce_gem(p, learn_p=True)
    model.initialize(X=X)
    X = Ragged(numpy.abs(X.dataXd) + 0.1, X.lengths)
    check_gradients(model, X, rtol=1e-4, atol=1e-5)


def test_gem_learned_p_parameter() -> None:
    X = Ragged(numpy.asarray([[1.0, 2.0], [3.0, 4.0]], dtype="float32"), numpy.asarray([2], dtype="int32"))
    model = reduce_gem(2.0, learn_p=True)
    model.initialize(X=X)
    assert_allclose(model.get_param("p"), [2.0])
    assert_allclose(model.predict(X), reduce_gem(2.0).predict(X), rtol=1e-6)
    model.set_param("p", numpy.asarray([4.0], dtype="float32"))
    assert_allclose(model.predict(X), reduce_gem(4.0).predict(X), rtol=1e-6)
    copy = reduce_gem(2.0, learn_p=True)
    copy.initialize(X=X)
    copy.from_bytes(model.to_bytes())
    assert_allclose(copy.get_param("p"), [4.0])
    # below the floor the floor is used, and p gets no gradient
    model.set_param("p", numpy.asarray([-1.0], dtype="float32"))
    Y, backprop = model(X, is_train=True)
    assert numpy.isfinite(Y).all()
    backprop(numpy.ones_like(Y))
    assert not model.has_grad("p") or float(model.get_grad("p")[0]) == 0.0
    with pytest.raises(LayerInputError, match="reduce_gem: expected learn_p to be True or False"):
        reduce_gem(3.0, learn_p="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("inner", ["reduce_mean", "reduce_max", "reduce_sum"])
def test_with_padded_mask_runs_thincs_own_poolings(inner: str) -> None:
    """A pooling we do not compute on the padded array ourselves (here Thinc's, whose
    NumpyOps kernels take only int32 lengths) runs on a Ragged of the real positions."""
    import thinc.api

    rng = numpy.random.RandomState(0)
    X = rng.uniform(-1, 1, (3, 4, 2)).astype("f")
    lengths = numpy.asarray([2, 1, 4], dtype="int64")
    model = with_padded_mask(getattr(thinc.api, inner)())
    model.initialize(X=(X, lengths))
    Y = model.predict((X, lengths))
    ref = {"reduce_mean": numpy.mean, "reduce_max": numpy.max, "reduce_sum": numpy.sum}[inner]
    assert_allclose(Y, numpy.stack([ref(X[i, :n], axis=0) for i, n in enumerate(lengths)]), rtol=1e-6)


def test_attention_pool_rejects_an_output_sample_of_another_width() -> None:
    model = attention_pool()
    X = Ragged(numpy.ones((5, 3), dtype="f"), numpy.asarray([2, 3], dtype="int32"))
    with pytest.raises(LayerInputError, match=r"attention_pool.*output sample of width nO = nI = 3"):
        model.initialize(X=X, Y=numpy.zeros((2, 5), dtype="f"))
    assert model.has_dim("nI") is None and model.has_dim("nO") is None
    assert not model.has_param("q")
    model.initialize(X=X, Y=numpy.zeros((2, 3), dtype="f"))
    assert model.get_dim("nI") == model.get_dim("nO") == 3


def test_attention_pool_infers_its_width_only_from_data_that_has_one() -> None:
    """A Ragged of (0, 0) data says nothing about the width (it set nI = 0 before), and
    nothing is set before the width is known (data of width 0 with rows: see
    test_wordpieces' trf_pool test, as a plain Ragged cannot hold it)."""
    empty = Ragged(numpy.zeros((0, 0), dtype="f"), numpy.zeros((0,), dtype="int32"))
    model = attention_pool()
    with pytest.raises(LayerInputError, match=r"to infer the width from, got a Ragged with data of shape \(0, 0\)"):
        model.initialize(X=empty)
    assert model.has_dim("nI") is None and not model.has_param("q")
    model.initialize(X=empty, Y=numpy.zeros((0, 5), dtype="f"))
    assert model.get_dim("nI") == 5
    with pytest.raises(LayerInputError, match=r"attention_pool: expected a sample Ragged \(or nI\).*got None\."):
        attention_pool().initialize()


def test_attention_pool_of_a_known_width_pools_an_empty_batch() -> None:
    """No rows as (0, 0) data (an empty batch of transformer outputs, or a Ragged built
    from it) pools to zeros of the layer's width, with an empty gradient; rows of another
    width are still refused."""
    model = attention_pool(8)
    model.initialize()
    Y, backprop = model(Ragged(numpy.zeros((0, 0), dtype="f"), numpy.asarray([0, 0], dtype="int32")), is_train=True)
    assert Y.shape == (2, 8) and not Y.any()
    assert backprop(numpy.ones_like(Y)).dataXd.shape == (0, 8)
    pooled = trf_pool(attention_pool(8))
    pooled.initialize()
    Y, backprop = pooled([], is_train=True)
    assert Y.shape == (0, 8)
    assert backprop(numpy.zeros_like(Y)) == []
    with pytest.raises(LayerInputError, match=r"expected data of width nI=8, got a Ragged with data of shape \(2, 4\)"):
        model.predict(Ragged(numpy.zeros((2, 4), dtype="f"), numpy.asarray([2], dtype="int32")))
