"""Inputs built to break things (issue 14): integers that overflow the compiled kernels'
checks, lengths that wrap around their dtype, layers used before ``initialize``, and
gradients of another dtype through ``array_getitem``."""
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from thinc.api import Model, NumpyOps, Ops
from thinc.types import Floats2d, Ragged

from helpers import set_ops
from thinc_trf_layers import (
    LayerGradientError,
    LayerInputError,
    array_getitem,
    attention_pool,
    check_gradients,
    map_list,
    reduce_first,
    reduce_gem,
    reduce_last,
    reduce_max,
    reduce_mean,
    reduce_mean_max,
    reduce_mean_sqrt_len,
    reduce_sum,
    reduce_weighted_mean,
    scalar_mix,
    weighted_layer_pooling,
)
from thinc_trf_layers.backends import COMPILED
from thinc_trf_layers.errors import check_ragged

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------- 1. the compiled kernels
@pytest.mark.skipif(COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("kernel", ["pieces_sum", "pieces_max", "pieces_fill", "attention_grad", "gem"])
def test_kernels_refuse_extreme_integers_without_crashing(kernel: str) -> None:
    """Every entry point, called with arrays, starts, lengths, row offsets and positions
    from 0, -1, 2**31 +- 1, 2**62, 2**63 - 1, -2**63 ... (pairs whose int64 sum wraps to
    a small number included): a valid call returns the reference result, every other call
    raises ValueError. The calls run in a child process, so that a crash (a read or
    write out of bounds) fails this test and names the call instead of killing pytest."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "kernel_fuzz_cases.py"), kernel],
        capture_output=True, text=True, timeout=300, cwd=str(HERE),
    )
    lines: List[Dict[str, Any]] = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    started = [d for d in lines if "start" in d]
    answers = [d for d in lines if "got" in d]
    if proc.returncode != 0:
        last = started[-1]["case"] if started else "(before the first case)"
        pytest.fail(
            f"{kernel}: the child process died (exit status {proc.returncode}) in the call "
            f"{last!r}\n{proc.stderr[-2000:]}"
        )
    assert len(started) == len(answers) > 30
    wrong = [
        d for d in answers
        if not (d["got"] == d["want"] or (d["want"] == "ValueError" and d["got"].startswith("ValueError: ")))
    ]
    assert not wrong, f"{len(wrong)} of {len(answers)} calls misbehaved, e.g.:\n" + "\n".join(
        f"  {d['case']}: got {d['got']}, expected {d['want']}" for d in wrong[:10]
    )
    # both kinds of case are there: valid calls computed, and refused ones
    assert {d["want"] for d in answers} == {"ok", "ValueError"}


# ------------------------------------------------------------ 2. lengths that wrap
POOLINGS: Dict[str, Callable[[], Model[Ragged, Floats2d]]] = {
    "reduce_first": reduce_first,
    "reduce_last": reduce_last,
    "reduce_sum": reduce_sum,
    "reduce_mean": reduce_mean,
    "reduce_max": reduce_max,
    "reduce_mean_max": reduce_mean_max,
    "reduce_mean_sqrt_len": reduce_mean_sqrt_len,
    "reduce_weighted_mean": reduce_weighted_mean,
    "reduce_gem": lambda: reduce_gem(learn_p=True),
    "attention_pool": lambda: attention_pool(nI=3),
}
DATA = numpy.asarray([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], dtype="float32")
#: lengths whose sum wraps around their dtype to 2, the number of rows, and the true sum
WRAPPING = {
    "uint64": (numpy.asarray([2**64 - 1, 3], dtype="uint64"), 2**64 + 2),
    "int64": (numpy.asarray([2**63 - 1, 2**63 - 1, 4], dtype="int64"), 2**64 + 2),
    "int64-negative-sum": (numpy.asarray([2**62, 2**62, 2**62, 2**62 + 2], dtype="int64"), 2**64 + 2),
}


def _pooling(name: str, ops: Ops) -> Model[Ragged, Floats2d]:
    model = POOLINGS[name]()
    set_ops(model, ops)
    model.initialize()
    return model


def _params(model: Model[Any, Any]) -> List[Any]:
    return [node.get_param(p).copy() for node in model.walk() for p in node.param_names if node.has_param(p)]


@pytest.mark.parametrize("name", sorted(POOLINGS))
@pytest.mark.parametrize("case", sorted(WRAPPING))
def test_poolings_refuse_lengths_whose_sum_wraps(ops: Ops, name: str, case: str) -> None:
    """uint64 or int64 lengths that sum to the number of rows only modulo 2**64: an error
    naming the layer and the true sum (reduce_first / reduce_last used to pool garbage)."""
    model = _pooling(name, ops)
    lengths, true_sum = WRAPPING[case]
    assert int(lengths.sum()) % 2**64 == 2  # the wrap this case is about
    before = _params(model)
    X = Ragged(ops.asarray(DATA), ops.asarray(lengths))
    with pytest.raises(LayerInputError, match=re.escape(
        f"{model.name}: expected Ragged lengths that sum to the number of data rows (2); they sum to {true_sum}"
    )):
        model.predict(X)
    with pytest.raises(LayerInputError, match="they sum to"):
        model.begin_update(X)
    for a, b in zip(before, _params(model)):
        assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_poolings_take_unsigned_lengths_that_fit(ops: Ops, name: str) -> None:
    """uint64 and int64 lengths that really sum to the rows: the same result as int32."""
    model = _pooling(name, ops)
    data = ops.asarray(DATA)
    Y32 = model.predict(Ragged(data, ops.asarray(numpy.asarray([1, 0, 1], dtype="int32"))))
    for dtype in ("uint64", "int64", "uint8"):
        Y = model.predict(Ragged(data, ops.asarray(numpy.asarray([1, 0, 1], dtype=dtype))))
        assert_allclose(ops.to_numpy(Y), ops.to_numpy(Y32), rtol=1e-6)
    if name == "reduce_last":
        assert_array_equal(ops.to_numpy(Y32), [DATA[0], numpy.zeros(3), DATA[1]])


class _NotAnArray:
    """Stands for another library's tensor: shape, ndim and a dtype without ``kind``."""

    shape = (2,)
    ndim = 1
    dtype = "int64"


@pytest.mark.parametrize("name", sorted(POOLINGS))
@pytest.mark.parametrize("kind", ["torch", "other", "list"])
def test_poolings_refuse_lengths_that_are_not_arrays_of_their_ops(ops: Ops, name: str, kind: str) -> None:
    """Lengths held in a torch tensor (or another array type, or a list): an error that
    names the layer and the type and says what to pass, not an AttributeError later."""
    if kind == "torch":
        torch = pytest.importorskip("torch")
        lengths: Any = torch.tensor([1, 1])
        type_name = "torch.Tensor"
    elif kind == "other":
        lengths, type_name = _NotAnArray(), "_NotAnArray"
    else:
        lengths, type_name = [1, 1], "builtins.list"
    model = _pooling(name, ops)
    X = Ragged(ops.asarray(DATA), lengths)
    with pytest.raises(LayerInputError) as err:
        model.predict(X)
    msg = str(err.value)
    assert msg.startswith(f"{model.name}: expected Ragged lengths as a 1d integer array (int32 or int64), got ")
    assert f"{type_name}, not a {ops.xp.__name__} array (the model's Ops)" in msg
    assert "convert them with model.ops.asarray1i(lengths)" in msg


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_poolings_refuse_data_that_is_not_an_array_of_their_ops(ops: Ops, name: str) -> None:
    torch = pytest.importorskip("torch")
    model = _pooling(name, ops)
    X = Ragged(torch.zeros((2, 3)), ops.asarray(numpy.asarray([1, 1], dtype="int32")))
    with pytest.raises(LayerInputError) as err:
        model.predict(X)
    msg = str(err.value)
    assert msg.startswith(f"{model.name}: expected a Ragged whose data is a 2d floating-point array (rows, width)")
    assert "torch.Tensor, not a" in msg and "model.ops.asarray2f(data)" in msg


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_poolings_refuse_rows_longer_than_int32_positions(name: str) -> None:
    """A row of 2**31 positions: refused from the lengths alone, before any kernel runs
    (the max kernels count positions in int32). The data is a broadcast view: 2**31 rows
    that take no memory."""
    ops = NumpyOps()
    model = _pooling(name, ops)
    data = numpy.broadcast_to(numpy.zeros((1, 3), dtype="float32"), (2**31 + 1, 3))
    X = Ragged(data, numpy.asarray([2**31, 1], dtype="int64"))
    with pytest.raises(LayerInputError, match=re.escape(
        f"{model.name}: expected rows of at most 2147483647 positions (a max counts them in int32), found a row "
        "of 2147483648"
    )):
        model.predict(X)
    # rows of 2**31 - 1 are taken (checked without running the pooling on them)
    got_lengths, width = check_ragged(model.name, ops, Ragged(data, numpy.asarray([2**31 - 1, 2], dtype="int64")))
    assert width == 3 and got_lengths.tolist() == [2**31 - 1, 2]


@pytest.mark.skipif(COMPILED is None, reason="compiled kernels not built")
def test_max_kernels_refuse_rows_their_int32_positions_cannot_count() -> None:
    """The kernels' own check, behind the layers' (a padded batch reaches them without
    check_ragged): zero-width arrays, so that no memory is touched."""
    X = numpy.empty((2**31 + 1, 0), dtype="float32")
    args = ([X], numpy.zeros(1, "int64"), numpy.zeros(1, "int64"), numpy.asarray([2**31], "int64"), numpy.asarray([0, 1], "int64"))
    with pytest.raises(ValueError, match=re.escape("pieces_max: row 0 has more than 2147483647 positions")):
        COMPILED.pieces_max(*args, numpy.empty((1, 0), "float32"), numpy.empty((1, 0), "int32"), numpy.empty((0, 0), "float32"), numpy.empty(0, "float32"))
    # a sum has no positions: the same row is fine
    COMPILED.pieces_sum(*args, numpy.empty((1, 0), "float32"), numpy.empty(0, "float32"), numpy.empty(0, "float32"))


# ------------------------------------------------------------------ 3. unclear errors
MIXES_WITH_PARAMS: Dict[str, Callable[[], Model[Any, Any]]] = {
    "scalar_mix": lambda: scalar_mix(3),
    "weighted_layer_pooling": lambda: weighted_layer_pooling(3, layer_start=1),
    "map_list(scalar_mix)": lambda: map_list(scalar_mix(3)),
}


@pytest.mark.parametrize("name", sorted(MIXES_WITH_PARAMS))
def test_mixes_used_before_initialize_say_so(name: str) -> None:
    model = MIXES_WITH_PARAMS[name]()
    Xs = [numpy.full((2, 3, 4), float(i), dtype="float32") for i in range(3)]
    inner = model.layers[0] if name.startswith("map_list") else model
    inputs: Any = [Xs] if name.startswith("map_list") else Xs
    for call in (model.predict, model.begin_update):
        with pytest.raises(ValueError) as err:
            call(inputs)
        msg = str(err.value)
        assert msg.startswith(f"{inner.name}: the layer is used before it was initialized")
        assert "expected model.initialize() to have been called first" in msg
        assert "the layer count (3)" in msg
    # initialize() without a sample is enough, as the message says
    model.initialize()
    Y = model.predict(inputs)
    Y0 = Y[0] if name.startswith("map_list") else Y
    if name == "weighted_layer_pooling":
        assert_allclose(Y0, numpy.full((2, 3, 4), 1.5))  # the mean of layers 1 and 2
    else:
        assert_allclose(Y0, numpy.full((2, 3, 4), 1.0))  # the mean of layers 0, 1, 2


@pytest.mark.parametrize("bad", [None, "reduce_mean", reduce_mean, 3])
def test_check_gradients_without_a_model_says_so(bad: Any) -> None:
    X = Ragged(numpy.ones((2, 3)), numpy.asarray([1, 1], dtype="int32"))
    with pytest.raises(TypeError) as err:
        check_gradients(bad, X)
    msg = str(err.value)
    assert msg.startswith(
        "check_gradients: expected a thinc Model as the first argument, got "
        f"{type(bad).__module__}.{type(bad).__qualname__}"
    )
    assert "Pass the model itself" in msg
    check_gradients(reduce_mean(), X)  # the model itself passes


# ------------------------------------------- 4. array_getitem and gradients of another dtype
@pytest.mark.parametrize(
    "in_dtype,grad_dtype",
    [
        ("uint64", "int32"),  # Thinc's Embed / HashEmbed(column=...): int32 for uint64 ids
        ("int64", "int32"),
        ("int32", "uint64"),
        ("float64", "float32"),  # a float32 layer behind a float64 input
        ("float32", "float64"),
        ("float16", "float32"),
        ("float32", "float32"),
    ],
)
def test_array_getitem_takes_a_gradient_of_the_same_kind(ops: Ops, in_dtype: str, grad_dtype: str) -> None:
    """As Thinc's array_getitem: the gradient is cast into zeros of the input's dtype."""
    X = ops.asarray(numpy.arange(12).reshape(4, 3).astype(in_dtype))
    model = set_ops(array_getitem((slice(None), 1)), ops)
    Y, backprop = model(X, is_train=True)
    assert_array_equal(ops.to_numpy(Y), [1, 4, 7, 10])
    dX = backprop(ops.asarray(numpy.asarray([1, 2, 3, 4], dtype=grad_dtype)))
    assert str(dX.dtype) == in_dtype and dX.shape == (4, 3)
    expected = numpy.zeros((4, 3))
    expected[:, 1] = [1, 2, 3, 4]
    assert_array_equal(ops.to_numpy(dX), expected)


@pytest.mark.parametrize(
    "in_dtype,grad,expected",
    [
        ("float32", numpy.zeros((4,), dtype="float32")[:3], "shape (4,) with a floating-point dtype"),
        ("float32", numpy.zeros((4, 1), dtype="float32"), "shape (4,) with a floating-point dtype"),
        ("float32", numpy.zeros((4,), dtype="int32"), "shape (4,) with a floating-point dtype"),
        ("float32", numpy.zeros((4,), dtype="bool"), "shape (4,) with a floating-point dtype"),
        ("uint64", numpy.zeros((4,), dtype="float32"), "shape (4,) with an integer dtype"),
        ("float64", [0.0, 0.0, 0.0, 0.0], "shape (4,) with a floating-point dtype"),
        ("float64", None, "shape (4,) with a floating-point dtype"),
    ],
)
def test_array_getitem_refuses_gradients_that_are_bugs(in_dtype: str, grad: Any, expected: str) -> None:
    """Wrong shape, another kind of dtype, or no array at all: an error naming the layer,
    what it got and what it expected, before anything is written."""
    X = numpy.arange(12).reshape(4, 3).astype(in_dtype)
    model = array_getitem((slice(None), 1))
    _, backprop = model(X, is_train=True)
    with pytest.raises(LayerGradientError) as err:
        backprop(grad)
    msg = str(err.value)
    assert msg.startswith(f"{model.name}: backprop expected a gradient of {expected}")
    assert f"the input is {in_dtype}), got " in msg
