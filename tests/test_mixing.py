"""Layer mixing: scalar_mix, weighted_layer_pooling, concat_last, mean_last."""
from typing import Any, Callable, List

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from thinc.api import Config, Model, NumpyOps, Ops, chain, fix_random_seed, registry, set_dropout_rate

from helpers import set_ops, to_numpy, to_ops
from thinc_trf_layers import (
    LayerGradientError,
    LayerInputError,
    check_gradients,
    concat_last,
    map_list,
    mean_last,
    scalar_mix,
    select_token,
    weighted_layer_pooling,
)
from thinc_trf_layers.backends import mix as mix_backend
from thinc_trf_layers.backends.mix import BACKWARD_BLOCK_SIZE, BLOCK_SIZE, concat_last_axis
from thinc_trf_layers.testing.strategies import float_arrays

# --- independent NumPy references -------------------------------------------------


def ref_softmax(w: Any) -> Any:
    e = numpy.exp(w - w.max())
    return e / e.sum()


def ref_scalar_mix(Xs: List[Any], weights: Any, gamma: float) -> Any:
    S = numpy.stack([X.astype("float64") for X in Xs])
    return gamma * numpy.einsum("l,l...->...", ref_softmax(weights.astype("float64")), S)


def ref_softplus(v: Any) -> Any:
    return numpy.log1p(numpy.exp(-numpy.abs(v))) + numpy.maximum(v, 0)


def ref_weighted_layer_pooling(Xs: List[Any], weights: Any, start: int) -> Any:
    a = ref_softplus(weights.astype("float64"))
    S = numpy.stack([X.astype("float64") for X in Xs[start:]])
    return numpy.einsum("l,l...->...", a, S) / a.sum()


def ref_concat_last(Xs: List[Any], k: int) -> Any:
    n_spans, n_pieces, width = Xs[0].shape
    out = numpy.zeros((n_spans, n_pieces, k * width), dtype=Xs[0].dtype)
    for j, X in enumerate(Xs[len(Xs) - k :]):
        out[:, :, j * width : (j + 1) * width] = X
    return out


def ref_mean_last(Xs: List[Any], k: int) -> Any:
    return sum(X.astype("float64") for X in Xs[len(Xs) - k :]) / k


# --- inputs ----------------------------------------------------------------------


@st.composite
def hidden_layers(draw: st.DrawFn, *, min_layers: int = 1, max_layers: int = 4, dtype: str = "float64") -> List[Any]:
    """One batch's hidden layers: n arrays of one (spans, wordpieces, width) shape."""
    n = draw(st.integers(min_layers, max_layers))
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 4)), draw(st.integers(1, 3)))
    return [draw(float_arrays(shape, dtype=dtype, bound=3.0)) for _ in range(n)]


def random_layers(n: int, shape: Any, dtype: str = "float64", seed: int = 0) -> List[Any]:
    rng = numpy.random.RandomState(seed)
    return [rng.uniform(-2, 2, shape).astype(dtype) for _ in range(n)]


def with_params(model: Model[Any, Any], Xs: Any, seed: int = 1) -> Model[Any, Any]:
    """Initialise ``model`` and give its parameters random (non-initial) values."""
    model.initialize(X=Xs)
    rng = numpy.random.RandomState(seed)
    for node in model.walk():
        for name in node.param_names:
            param = node.get_param(name)
            node.set_param(name, node.ops.asarray(rng.uniform(-1.5, 1.5, param.shape).astype(param.dtype)))
    return model


# --- gradient checks -------------------------------------------------------------


@given(Xs=hidden_layers(), seed=st.integers(0, 100))
def test_scalar_mix_gradients(Xs: List[Any], seed: int) -> None:
    model = with_params(scalar_mix(len(Xs)), Xs, seed)
    check_gradients(model, Xs)


@given(Xs=hidden_layers(), data=st.data())
def test_weighted_layer_pooling_gradients(Xs: List[Any], data: Any) -> None:
    start = data.draw(st.integers(-len(Xs), len(Xs) - 1))
    model = with_params(weighted_layer_pooling(len(Xs), layer_start=start), Xs, data.draw(st.integers(0, 100)))
    check_gradients(model, Xs)


@given(Xs=hidden_layers(), data=st.data())
def test_concat_last_gradients(Xs: List[Any], data: Any) -> None:
    k = data.draw(st.integers(1, len(Xs)))
    check_gradients(concat_last(k), Xs)


@given(Xs=hidden_layers(), data=st.data())
def test_mean_last_gradients(Xs: List[Any], data: Any) -> None:
    k = data.draw(st.integers(1, len(Xs)))
    check_gradients(mean_last(k), Xs)


@given(docs=st.lists(hidden_layers(min_layers=3, max_layers=3), min_size=0, max_size=3))
def test_map_list_scalar_mix_gradients(docs: List[List[Any]]) -> None:
    # The per-Doc form of trf2layers: one list of layers per Doc, one set of weights.
    model = map_list(scalar_mix(3))
    model.initialize()
    with_params(model, None)
    check_gradients(model, docs)


# --- values against the references -----------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_values_and_dtypes(dtype: str, ops: Any) -> None:
    Xs = random_layers(5, (3, 4, 6), dtype)
    tol = {"float16": 2e-3, "float32": 1e-6, "float64": 1e-12}[dtype]
    cases: List[Any] = [
        (scalar_mix(5), lambda m: ref_scalar_mix(Xs, to_numpy(m.get_param("weights")), float(m.get_param("gamma")[0]))),
        (
            weighted_layer_pooling(5, layer_start=2),
            lambda m: ref_weighted_layer_pooling(Xs, to_numpy(m.get_param("weights")), 2),
        ),
        (concat_last(3), lambda m: ref_concat_last(Xs, 3)),
        (mean_last(2), lambda m: ref_mean_last(Xs, 2)),
    ]
    for model, reference in cases:
        set_ops(model, ops)
        with_params(model, to_ops(ops, Xs))
        Y, backprop = model(to_ops(ops, Xs), is_train=True)
        assert Y.dtype == numpy.dtype(dtype), model.name
        assert_allclose(to_numpy(Y).astype("float64"), reference(model), rtol=tol, atol=tol, err_msg=model.name)
        dXs = backprop(Y)
        assert isinstance(dXs, list) and len(dXs) == 5
        for dX, X in zip(dXs, Xs):
            assert dX.shape == X.shape and dX.dtype == X.dtype, model.name


def test_untrained_mixes_are_the_plain_mean() -> None:
    Xs = random_layers(4, (2, 3, 5))
    for model, expected in [
        (scalar_mix(4), numpy.mean(Xs, axis=0)),
        (weighted_layer_pooling(4, layer_start=1), numpy.mean(Xs[1:], axis=0)),
    ]:
        model.initialize(X=Xs)
        assert_allclose(model.predict(Xs), expected, rtol=1e-12)
    model = weighted_layer_pooling(4, layer_start=1)
    model.initialize()
    # the effective weights start at 1, as in the Kaggle layer
    assert_allclose(ref_softplus(model.get_param("weights").astype("float64")), numpy.ones(3), rtol=1e-6)


@pytest.mark.parametrize("value", [-60.0, -80.0, -800.0, 80.0])
def test_weighted_layer_pooling_extreme_weights_stay_finite(value: float) -> None:
    # softplus keeps the weights positive; the clamped denominator keeps them finite when
    # they underflow (-80: a_i ~ 1e-35, below the clamp; -800: a_i == 0 in float64).
    Xs = random_layers(4, (2, 3, 2))
    model = weighted_layer_pooling(4, layer_start=1)
    model.initialize(X=Xs)
    model.set_param("weights", numpy.asarray([value, value + 1, value - 2], dtype="float32"))
    Y, backprop = model(Xs, is_train=True)
    backprop(numpy.ones_like(Y))
    assert numpy.isfinite(Y).all() and numpy.isfinite(model.get_grad("weights")).all()
    if value in (-60.0, 80.0):
        a = ref_softplus(model.get_param("weights").astype("float64"))
        assert_allclose(Y, ref_weighted_layer_pooling(Xs, model.get_param("weights"), 1), rtol=1e-9)
        assert a.sum() > 0


def test_scalar_mix_gradient_values() -> None:
    # The parameters' gradients against a closed form computed here.
    Xs = random_layers(3, (2, 2, 3))
    model = with_params(scalar_mix(3), Xs)
    w = model.get_param("weights").astype("float64")
    g = float(model.get_param("gamma")[0])
    Y, backprop = model(Xs, is_train=True)
    dY = numpy.random.RandomState(3).uniform(-1, 1, Y.shape)
    dXs = backprop(dY)
    p = ref_softmax(w)
    dots = numpy.asarray([(dY * X).sum() for X in Xs])
    assert_allclose(model.get_grad("gamma"), [(p * dots).sum()], rtol=1e-6)
    jac = numpy.diag(p) - numpy.outer(p, p)
    assert_allclose(model.get_grad("weights"), jac @ (g * dots), rtol=1e-5, atol=1e-7)
    for dX, pi in zip(dXs, p):
        assert_allclose(dX, g * pi * dY, rtol=1e-6)


def test_gradients_accumulate_over_calls() -> None:
    Xs = random_layers(3, (2, 2, 3))
    model = with_params(scalar_mix(3), Xs)
    Y, backprop = model(Xs, is_train=True)
    backprop(Y)
    once = model.get_grad("weights").copy()
    backprop(Y)
    assert_allclose(model.get_grad("weights"), 2 * once, rtol=1e-6)


@pytest.mark.parametrize(
    "shape", [(3, 100, 150), (1, 1, BLOCK_SIZE + 7), (1, 3, BACKWARD_BLOCK_SIZE // 3 + 5), (2, 7, 1)]
)
def test_blocked_kernel_across_block_boundaries(shape: Any) -> None:
    # Arrays larger than one block, sizes that are not a multiple of it, and a view that
    # is not contiguous.
    Xs = random_layers(4, shape, "float32")
    Xs[1] = numpy.asfortranarray(Xs[1])
    model = with_params(scalar_mix(4), Xs)
    Y, backprop = model(Xs, is_train=True)
    ref = ref_scalar_mix(Xs, model.get_param("weights"), float(model.get_param("gamma")[0]))
    assert_allclose(Y, ref, rtol=1e-5, atol=1e-5)
    dY = numpy.ones_like(Y)
    backprop(dY)
    dots = numpy.asarray([X.astype("float64").sum() for X in Xs])
    p = ref_softmax(model.get_param("weights").astype("float64"))
    assert_allclose(model.get_grad("gamma"), [(p * dots).sum()], rtol=1e-4)


def test_float16_accumulates_in_float32() -> None:
    # 13 float16 layers: rounding every partial sum to float16 drifts by several units
    # in the last place; accumulating in float32 and rounding once stays within one.
    rng = numpy.random.RandomState(5)
    Xs = [rng.uniform(100, 200, (4, 16, 32)).astype("float16") for _ in range(13)]
    exact = ref_mean_last(Xs, 13)
    ulp = numpy.spacing(numpy.abs(exact).astype("float16")).astype("float64")
    Y = mean_last(13).predict(Xs)
    assert Y.dtype == numpy.float16
    assert (numpy.abs(Y.astype("float64") - exact) <= ulp).all()
    # the bound has teeth: a float16 accumulation breaks it
    naive = numpy.zeros_like(Xs[0])
    for X in Xs:
        naive += X * numpy.float16(1 / 13)
    assert (numpy.abs(naive.astype("float64") - exact) > ulp).any()


def test_nan_propagates() -> None:
    Xs = random_layers(4, (2, 3, 2))
    Xs[3][1, 2, 0] = numpy.nan
    for model in [scalar_mix(4), weighted_layer_pooling(4, layer_start=2), mean_last(2), concat_last(2)]:
        model.initialize(X=Xs)
        Y, backprop = model(Xs, is_train=True)
        column = 2 if model.name.startswith("concat") else 0  # the last layer's block
        assert numpy.isnan(Y[1, 2, column]), model.name
        assert numpy.isnan(Y).sum() == 1, model.name
        backprop(numpy.ones_like(Y))
        if model.has_param("weights"):
            assert numpy.isnan(model.get_grad("weights")).any(), model.name
    # a layer the mix does not use does not reach the output
    Xs[0][0, 0, 0] = numpy.nan
    for model in [weighted_layer_pooling(4, layer_start=2), mean_last(2), concat_last(2)]:
        model.initialize(X=Xs)
        assert not numpy.isnan(model.predict(Xs)[0, 0]).any(), model.name


def test_unused_layers_get_zero_gradients() -> None:
    Xs = random_layers(5, (2, 3, 4))
    for model, unused in [
        (weighted_layer_pooling(5, layer_start=3), [0, 1, 2]),
        (mean_last(2), [0, 1, 2]),
        (concat_last(1), [0, 1, 2, 3]),
    ]:
        model.initialize(X=Xs)
        Y, backprop = model(Xs, is_train=True)
        dXs = backprop(numpy.ones_like(Y))
        for i, dX in enumerate(dXs):
            assert dX.shape == Xs[i].shape
            assert (dX == 0).all() == (i in unused), (model.name, i)
            if i in unused:
                # a read-only zero view that takes no memory, as trf2tensor's
                assert not dX.flags.writeable and dX.strides == (0, 0, 0), (model.name, i)
                with pytest.raises(ValueError, match="read-only"):
                    dX[...] = 1.0


def test_mean_last_shares_one_read_only_gradient() -> None:
    Xs = random_layers(5, (2, 3, 4))
    model = mean_last(3)
    model.initialize(X=Xs)
    Y, backprop = model(Xs, is_train=True)
    dY = numpy.random.RandomState(1).uniform(-1, 1, Y.shape)
    dXs = backprop(dY)
    used = dXs[2:]
    for dX in used:
        assert_allclose(dX, dY / 3)
        assert not dX.flags.writeable
        assert numpy.shares_memory(dX, used[0])
        with pytest.raises(ValueError, match="read-only"):
            dX += 1.0
    assert not numpy.shares_memory(used[0], dY)  # dY itself is left alone


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 1, 1), (3, 5, 7), (0, 2, 3), (2, 0, 3)])
def test_concat_rows_kernel_matches_numpy(dtype: str, shape: Any) -> None:
    rng = numpy.random.RandomState(0)
    arrays = [rng.uniform(-1, 1, shape).astype(dtype) for _ in range(4)]
    want = numpy.concatenate(arrays, axis=-1)
    for ops in (NumpyOps(), Ops()):
        got = concat_last_axis(ops, arrays)
        assert got.dtype == want.dtype and got.flags.c_contiguous
        assert numpy.array_equal(got, want)
    # not C-contiguous: numpy.concatenate
    strided = [a[:, ::-1] for a in arrays]
    assert numpy.array_equal(concat_last_axis(NumpyOps(), strided), numpy.concatenate(strided, axis=-1))


def test_concat_rows_kernel_is_built_and_checks_its_parts() -> None:
    assert mix_backend.COMPILED is not None, "thinc_trf_layers.backends._kernels was not built"
    out = numpy.empty((2, 8), dtype="uint8")
    with pytest.raises(ValueError, match="every part must be"):
        mix_backend.COMPILED.concat_rows(out, [numpy.zeros((2, 4), dtype="uint8"), numpy.zeros((3, 4), dtype="uint8")])


def test_concat_last_order_and_width() -> None:
    Xs = [numpy.full((1, 2, 3), float(i)) for i in range(5)]
    model = concat_last(3)
    model.initialize(X=Xs)
    assert model.get_dim("nI") == 3 and model.get_dim("nO") == 9
    Y, backprop = model(Xs, is_train=True)
    assert Y.shape == (1, 2, 9)
    assert Y[0, 0].tolist() == [2.0] * 3 + [3.0] * 3 + [4.0] * 3
    dY = numpy.arange(18, dtype="float64").reshape(1, 2, 9)
    dXs = backprop(dY)
    assert_allclose(dXs[4], dY[:, :, 6:9])
    assert_allclose(dXs[2], dY[:, :, 0:3])
    assert (dXs[1] == 0).all()


def test_zero_wordpieces_and_zero_spans(ops: Any) -> None:
    for shape in [(0, 4, 3), (2, 0, 3), (0, 0, 3)]:
        Xs = to_ops(ops, [numpy.zeros(shape, dtype="float32") for _ in range(3)])
        for model, out_width in [
            (scalar_mix(3), 3),
            (weighted_layer_pooling(3, layer_start=1), 3),
            (concat_last(2), 6),
            (mean_last(3), 3),
        ]:
            set_ops(model, ops)
            model.initialize(X=Xs)
            Y, backprop = model(Xs, is_train=True)
            assert Y.shape == shape[:2] + (out_width,), model.name
            dXs = backprop(Y)
            assert [d.shape for d in dXs] == [shape] * 3
            if model.has_param("weights"):
                assert (to_numpy(model.get_grad("weights")) == 0).all()


def test_no_layers_after_initialize() -> None:
    # trf2layers gives every Doc an empty list when no Doc of the batch has wordpieces
    Xs = random_layers(3, (1, 2, 4))
    for model, width in [(scalar_mix(3), 4), (weighted_layer_pooling(3, layer_start=1), 4), (concat_last(2), 8), (mean_last(2), 4)]:
        with pytest.raises(LayerInputError, match=r"expected a list of .*Floats3d arrays.*got an empty list\. .*initialize it with a sample first"):
            model.predict([])
        model.initialize(X=Xs)
        Y, backprop = model([], is_train=True)
        assert Y.shape == (0, 0, width), model.name
        assert backprop(Y) == []
    docs = map_list(scalar_mix(3))
    docs.initialize(X=[Xs])
    Ys = docs.predict([[], []])
    assert [Y.shape for Y in Ys] == [(0, 0, 4), (0, 0, 4)]


def test_tuple_input_like_hidden_states() -> None:
    Xs = tuple(random_layers(3, (1, 2, 2)))
    model = scalar_mix(3)
    model.initialize(X=list(Xs))
    assert_allclose(model.predict(Xs), numpy.mean(Xs, axis=0))  # type: ignore[arg-type]


def test_chain_with_select_token() -> None:
    Xs = random_layers(3, (2, 4, 5))
    model = chain(scalar_mix(3), select_token(0))
    model.initialize(X=Xs)
    assert_allclose(model.predict(Xs), numpy.mean(Xs, axis=0)[:, 0])


def test_ops_agree() -> None:
    Xs = random_layers(4, (3, 5, 7), "float32")
    results = []
    for ops in [NumpyOps(), Ops()]:
        model = set_ops(with_params(scalar_mix(4), Xs), ops)
        Y, backprop = model(Xs, is_train=True)
        dXs = backprop(Y)
        results.append((Y, dXs, model.get_grad("weights").copy()))
    assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    assert_allclose(results[0][2], results[1][2], rtol=1e-5)


# --- scalar_mix dropout ------------------------------------------------------------


def _kept(dXs: List[Any]) -> List[int]:
    return [i for i, dX in enumerate(dXs) if (dX != 0).any()]


def test_scalar_mix_dropout_is_seeded_and_renormalises() -> None:
    Xs = random_layers(6, (2, 3, 4))
    model = with_params(scalar_mix(6, dropout=0.5), Xs)
    w = model.get_param("weights").astype("float64")
    g = float(model.get_param("gamma")[0])
    runs = []
    for _ in range(2):
        fix_random_seed(11)
        Y, backprop = model(Xs, is_train=True)
        runs.append((Y, _kept(backprop(numpy.ones_like(Y)))))
    assert_allclose(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    kept = runs[0][1]
    assert 0 < len(kept) < 6
    # dropped layers are excluded and the rest renormalised: a mix of the kept layers
    assert_allclose(runs[0][0], ref_scalar_mix([Xs[i] for i in kept], w[kept], g), rtol=1e-12)


def test_scalar_mix_dropout_gradients_match_the_kept_subset() -> None:
    Xs = random_layers(5, (2, 3, 4))
    model = with_params(scalar_mix(5, dropout=0.4), Xs)
    fix_random_seed(3)
    Y, backprop = model(Xs, is_train=True)
    dY = numpy.random.RandomState(0).uniform(-1, 1, Y.shape)
    dXs = backprop(dY)
    kept = _kept(dXs)
    assert 0 < len(kept) < 5
    sub = scalar_mix(len(kept))
    sub.initialize(X=[Xs[i] for i in kept])
    sub.set_param("weights", model.get_param("weights")[kept].copy())
    sub.set_param("gamma", model.get_param("gamma").copy())
    Y2, backprop2 = sub([Xs[i] for i in kept], is_train=True)
    dXs2 = backprop2(dY)
    assert_allclose(Y, Y2, rtol=1e-12)
    for j, i in enumerate(kept):
        assert_allclose(dXs[i], dXs2[j], rtol=1e-12)
    grad = model.get_grad("weights")
    dropped = [i for i in range(5) if i not in kept]
    assert (grad[dropped] == 0).all()
    assert_allclose(grad[kept], sub.get_grad("weights"), rtol=1e-6)
    assert_allclose(model.get_grad("gamma"), sub.get_grad("gamma"), rtol=1e-6)


def test_scalar_mix_dropout_never_drops_all_and_rate_holds() -> None:
    Xs = random_layers(2, (1, 1, 2))
    model = scalar_mix(2, dropout=0.95)
    model.initialize(X=Xs)
    fix_random_seed(0)
    for _ in range(100):
        Y, backprop = model(Xs, is_train=True)
        assert numpy.isfinite(Y).all()
        assert len(_kept(backprop(numpy.ones_like(Y)))) >= 1
    Xs = random_layers(10, (1, 1, 2))
    model = scalar_mix(10, dropout=0.3)
    model.initialize(X=Xs)
    n_kept = 0
    for _ in range(200):
        Y, backprop = model(Xs, is_train=True)
        n_kept += len(_kept(backprop(numpy.ones_like(Y))))
    assert 0.6 < n_kept / 2000 < 0.8


def test_scalar_mix_dropout_not_at_predict() -> None:
    Xs = random_layers(4, (2, 3, 4))
    model = with_params(scalar_mix(4, dropout=0.7), Xs)
    expected = ref_scalar_mix(Xs, model.get_param("weights"), float(model.get_param("gamma")[0]))
    for seed in range(5):
        fix_random_seed(seed)
        assert_allclose(model.predict(Xs), expected, rtol=1e-12)
        assert_allclose(model(Xs, is_train=False)[0], expected, rtol=1e-12)


def test_scalar_mix_with_dropout_gradients_at_predict() -> None:
    # is_train=False takes the deterministic path, whatever the rate
    Xs = random_layers(3, (2, 2, 2))
    check_gradients(with_params(scalar_mix(3, dropout=0.9), Xs), Xs, is_train=False)


def test_scalar_mix_dropout_not_overridden_by_set_dropout_rate() -> None:
    model = scalar_mix(4, dropout=0.0)
    set_dropout_rate(model, 0.5)
    assert model.attrs["layer_dropout"] == 0.0


# --- serialization and configs -----------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: scalar_mix(4, dropout=0.25),
        lambda: weighted_layer_pooling(4, layer_start=-2),
        lambda: concat_last(2),
        lambda: mean_last(3),
    ],
)
def test_bytes_round_trip_keeps_outputs(make: Callable[[], Model[Any, Any]]) -> None:
    Xs = random_layers(4, (2, 3, 4), "float32")
    model = with_params(make(), Xs)
    Y = model.predict(Xs)
    copy = make()
    copy.initialize(X=Xs)
    copy.from_bytes(model.to_bytes())
    assert (copy.predict(Xs) == Y).all()
    assert copy.attrs == model.attrs
    assert copy.name == model.name


CONFIG = """
[model]
@layers = "chain.v1"

[model.*.mix]
@layers = "thinc_trf_layers.scalar_mix.v1"
n_layers = 4
dropout = 0.1

[model.*.cls]
@layers = "thinc_trf_layers.select_token.v1"
index = 0
"""


def test_config_round_trip() -> None:
    config = Config().from_str(CONFIG)
    model = registry.resolve(config)["model"]
    again = registry.resolve(Config().from_str(config.to_str()))["model"]
    assert model.layers[0].name == again.layers[0].name == "scalar_mix(4)"
    assert again.layers[0].attrs["layer_dropout"] == 0.1
    Xs = random_layers(4, (2, 3, 4), "float32")
    model.initialize(X=Xs)
    again.initialize(X=Xs)
    again.from_bytes(model.to_bytes())
    assert (again.predict(Xs) == model.predict(Xs)).all()
    for name, kwargs, model_name in [
        ("weighted_layer_pooling", {"n_layers": 13, "layer_start": 9}, "weighted_layer_pooling(13, layer_start=9)"),
        ("concat_last", {"k": 4}, "concat_last(4)"),
        ("mean_last", {"k": 4}, "mean_last(4)"),
    ]:
        cfg = Config({"model": {"@layers": f"thinc_trf_layers.{name}.v1", **kwargs}})
        resolved = registry.resolve(Config().from_str(cfg.to_str()))["model"]
        assert resolved.name == model_name


# --- errors --------------------------------------------------------------------------


def test_constructor_errors() -> None:
    with pytest.raises(LayerInputError, match=r"scalar_mix: expected n_layers to be null or an int >= 1, got 0"):
        scalar_mix(0)
    with pytest.raises(LayerInputError, match=r"scalar_mix\(3\): expected dropout to be a float in \[0, 1\), got 1.0"):
        scalar_mix(3, dropout=1.0)
    with pytest.raises(LayerInputError, match=r"expected dropout.*got -0.1"):
        scalar_mix(3, dropout=-0.1)
    with pytest.raises(LayerInputError, match=r"weighted_layer_pooling\(4\): expected layer_start to be an int in \[-4, 4\), got 4"):
        weighted_layer_pooling(4)
    with pytest.raises(LayerInputError, match=r"weighted_layer_pooling: expected n_layers"):
        weighted_layer_pooling("13")  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match=r"concat_last: expected k to be an int >= 1, got 0"):
        concat_last(0)
    with pytest.raises(LayerInputError, match=r"mean_last: expected k to be an int >= 1, got True"):
        mean_last(True)


@pytest.mark.parametrize(
    "make,name",
    [
        (lambda: scalar_mix(3), r"scalar_mix\(3\)"),
        (lambda: weighted_layer_pooling(3, layer_start=1), r"weighted_layer_pooling\(3, layer_start=1\)"),
        (lambda: concat_last(3), r"concat_last\(3\)"),
        (lambda: mean_last(3), r"mean_last\(3\)"),
    ],
)
def test_input_errors(make: Callable[[], Model[Any, Any]], name: str) -> None:
    model = make()
    Xs = random_layers(3, (2, 3, 4), "float32")
    model.initialize(X=Xs)
    before = model.to_bytes()
    count = "3" if "concat" not in name and "mean" not in name else "at least 3"
    with pytest.raises(LayerInputError, match=name + rf": expected a list of {count} Floats3d arrays.*got a list of 2 items"):
        model.predict(Xs[:2])
    with pytest.raises(LayerInputError, match=name + r": expected a list .* got an array of shape \(2, 3, 4\)"):
        model.predict(Xs[0])
    with pytest.raises(LayerInputError, match=name + r": layer 2 is an array of shape \(2, 3, 5\) \(float32\), expected an array of shape \(2, 3, 4\) \(float32\) like layer 0"):
        model.predict(Xs[:2] + [numpy.zeros((2, 3, 5), dtype="float32")])
    with pytest.raises(LayerInputError, match=r"layer 1 is an array of shape \(2, 3, 4\) \(float64\), expected .*\(float32\)"):
        model.predict([Xs[0], Xs[1].astype("float64"), Xs[2]])
    with pytest.raises(LayerInputError, match=name + r" \(layer 0\): expected a Floats3d .* floating-point dtype, got an array of shape \(2, 3\)"):
        model.predict([X[:, :, 0] for X in Xs])
    with pytest.raises(LayerInputError, match=name + r" \(layer 1\): expected a Floats3d .*got an array of shape \(2, 3, 4\) \(int32\)"):
        model.predict([Xs[0], Xs[1].astype("int32"), Xs[2]])
    # the per-Doc form gets a hint to map the mix over the Docs
    with pytest.raises(LayerInputError, match=r"per-Doc form.*map_list\(" + name):
        model.predict([Xs, Xs, Xs])
    with pytest.raises(LayerInputError, match=r"per-Doc form.*map_list\("):
        model.predict([Xs, Xs])
    with pytest.raises(LayerInputError, match=name):
        model.initialize(X=Xs[:2])
    assert model.to_bytes() == before


@pytest.mark.parametrize(
    "make",
    [lambda: scalar_mix(3), lambda: weighted_layer_pooling(3, layer_start=1), lambda: concat_last(2), lambda: mean_last(2)],
)
def test_gradient_errors(make: Callable[[], Model[Any, Any]]) -> None:
    model = make()
    Xs = random_layers(3, (2, 3, 4), "float32")
    model.initialize(X=Xs)
    Y, backprop = model(Xs, is_train=True)
    backprop(Y)
    grads_before = {name: model.get_grad(name).copy() for name in model.grad_names}
    with pytest.raises(LayerGradientError, match=r"backprop expected a gradient of shape " + rf"\({Y.shape[0]}, {Y.shape[1]}, {Y.shape[2]}\) \(float32\)"):
        backprop(numpy.zeros((2, 3), dtype="float32"))
    with pytest.raises(LayerGradientError, match=model.name.replace("(", r"\(").replace(")", r"\)")):
        backprop(Y.astype("float64"))
    for name in model.grad_names:
        assert (model.get_grad(name) == grads_before[name]).all()


def test_last_layers_initialize_with_the_k_their_forward_reads() -> None:
    """concat_last and mean_last read k from attrs at initialize, as their forward does (a
    model whose attrs were replaced, e.g. restored from bytes, is sized by them)."""
    X = [numpy.ones((1, 2, 4), dtype="float32") for _ in range(3)]
    wide = concat_last(2)
    wide.attrs["k"] = 3
    wide.initialize(X=X)
    assert wide.get_dim("nO") == 12
    assert wide.predict(X).shape == (1, 2, 12)
    mean = mean_last(2)
    mean.attrs["k"] = 3
    with pytest.raises(LayerInputError, match="at least 3"):
        mean.initialize(X=X[:2])
