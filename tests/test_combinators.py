from typing import Any, List

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from thinc.api import Linear, Model, chain, list2ragged, reduce_mean

from helpers import set_ops, to_numpy, to_ops
from thinc_trf_layers import (
    LayerGradientError,
    LayerInputError,
    array_getitem,
    check_gradients,
    map_list,
    select_token,
)
from thinc_trf_layers.testing.strategies import float_arrays_of_rank, lists_of_3d

# --- select_token ---------------------------------------------------------------


@given(X=float_arrays_of_rank(3, min_side=0, max_side=4), data=st.data())
def test_select_token_gradients(X: Any, data: Any) -> None:
    if X.shape[1] == 0:
        X = numpy.zeros((X.shape[0], 1, X.shape[2]))
    index = data.draw(st.integers(-X.shape[1], X.shape[1] - 1))
    model = select_token(index)
    Y = model.predict(X)
    assert_allclose(Y, X[:, index])
    check_gradients(model, X)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_select_token_keeps_dtype(dtype: str, ops: Any) -> None:
    X = ops.asarray(numpy.arange(24, dtype=dtype).reshape(2, 3, 4))
    model = set_ops(select_token(1), ops)
    Y, backprop = model(X, is_train=True)
    assert Y.dtype == X.dtype and Y.shape == (2, 4)
    dX = to_numpy(backprop(Y))
    assert dX.dtype == X.dtype
    assert_allclose(dX[:, 1], to_numpy(Y))
    assert dX[:, [0, 2]].sum() == 0


def test_select_token_no_spans_keeps_width(ops: Any) -> None:
    model = set_ops(select_token(0), ops)
    Y, backprop = model(ops.alloc3f(0, 0, 7), is_train=True)
    assert Y.shape == (0, 7)
    assert backprop(Y).shape == (0, 0, 7)


def test_select_token_errors() -> None:
    with pytest.raises(LayerInputError, match=r"select_token\(5\).*out of range.*\(2, 3, 4\)"):
        select_token(5).predict(numpy.zeros((2, 3, 4), dtype="f"))
    with pytest.raises(LayerInputError, match=r"select_token\(0\): expected a Floats3d.*shape \(2, 3\)"):
        select_token(0).predict(numpy.zeros((2, 3), dtype="f"))
    with pytest.raises(LayerInputError, match="floating-point"):
        select_token(0).predict(numpy.zeros((2, 3, 4), dtype="i"))
    with pytest.raises(LayerInputError, match="expected an int index"):
        select_token("0")  # type: ignore[arg-type]
    _, backprop = select_token(0)(numpy.zeros((2, 3, 4), dtype="f"), is_train=True)
    with pytest.raises(LayerGradientError, match=r"select_token\(0\): backprop expected a gradient of shape \(2, 4\)"):
        backprop(numpy.zeros((2, 3), dtype="f"))


# --- array_getitem --------------------------------------------------------------


@pytest.mark.parametrize(
    "index,as_python",
    [
        (0, (0,)),
        (-1, (-1,)),
        ("1:3", (slice(1, 3),)),
        (":, 0", (slice(None), 0)),
        ("..., -1", (Ellipsis, -1)),
        ("::2, None", (slice(None, None, 2), None)),
        ([1, 0], (1, 0)),
        ((slice(None), slice(1, None)), (slice(None), slice(1, None))),
    ],
)
def test_array_getitem_indexes_like_numpy(index: Any, as_python: Any, ops: Any) -> None:
    X_np = numpy.random.RandomState(1).uniform(-1, 1, (3, 4, 2))
    model = set_ops(array_getitem(index), ops)
    Y, backprop = model(ops.asarray(X_np), is_train=True)
    assert_allclose(to_numpy(Y), X_np[as_python])
    dX = to_numpy(backprop(Y))
    expected = numpy.zeros_like(X_np)
    expected[as_python] = X_np[as_python]
    assert_allclose(dX, expected)
    check_gradients(array_getitem(index), X_np)


@given(X=float_arrays_of_rank(3, min_side=1, max_side=4), data=st.data())
def test_array_getitem_gradients(X: Any, data: Any) -> None:
    i = data.draw(st.integers(-X.shape[0], X.shape[0] - 1))
    j = data.draw(st.integers(-X.shape[2], X.shape[2] - 1))
    check_gradients(array_getitem((i, slice(None), j)), X)


def test_array_getitem_errors() -> None:
    X = numpy.zeros((2, 3), dtype="f")
    with pytest.raises(LayerInputError, match=r"index 2 is out of range for axis 0 of size 2.*\(2, 3\)"):
        array_getitem(2).predict(X)
    with pytest.raises(LayerInputError, match=r"index -4 is out of range for axis 1 of size 3"):
        array_getitem((0, -4)).predict(X)
    with pytest.raises(LayerInputError, match=r"uses 3 axes but the input has shape \(2, 3\)"):
        array_getitem((0, 0, 0)).predict(X)
    with pytest.raises(LayerInputError, match="could not read the index string"):
        array_getitem("0:1:2:3")
    with pytest.raises(LayerInputError, match="advanced indexing"):
        array_getitem((numpy.array([0, 1]),))  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match="only one '...'"):
        array_getitem("..., ...")
    with pytest.raises(LayerInputError, match="expected an array"):
        array_getitem(0).predict([1, 2])  # type: ignore[arg-type]
    _, backprop = array_getitem(0)(X, is_train=True)
    with pytest.raises(LayerGradientError, match=r"expected a gradient of shape \(3,\)"):
        backprop(numpy.zeros((2,), dtype="f"))


# --- map_list -------------------------------------------------------------------


@given(Xs=lists_of_3d(min_items=0, max_items=3))
def test_map_list_gradients(Xs: List[Any]) -> None:
    model = map_list(select_token(0))
    Ys = model.predict(Xs)
    assert len(Ys) == len(Xs)
    for X, Y in zip(Xs, Ys):
        assert_allclose(Y, X[:, 0])
    check_gradients(model, Xs)


def test_map_list_empty(ops: Any) -> None:
    model = set_ops(map_list(select_token(0)), ops)
    Ys, backprop = model([], is_train=True)
    assert Ys == []
    assert backprop([]) == []


def test_map_list_initialize_sees_several_items() -> None:
    """The child is initialised from more than the first item, and empty items are skipped."""
    seen: List[Any] = []

    def init(model: Model[Any, Any], X: Any = None, Y: Any = None) -> None:
        seen.append(X)

    child: Model[Any, Any] = Model("spy", lambda model, X, is_train: (X, lambda dY: dY), init=init)
    Xs = [numpy.zeros((0, 3), dtype="f"), numpy.ones((2, 3), dtype="f"), numpy.full((1, 3), 2.0, dtype="f")]
    map_list(child).initialize(X=Xs)
    assert seen[0].shape == (3, 3)
    assert_allclose(seen[0][:, 0], [1, 1, 2])


@pytest.mark.parametrize(
    "item", [numpy.float32(1.5), numpy.array(2.0), numpy.ones((2, 3), dtype="f")], ids=["scalar", "0d", "2d"]
)
def test_map_list_initialize_one_item_is_the_sample_as_it_is(item: Any) -> None:
    """With one non-empty item, the child is initialised on that item itself (no copy,
    nothing concatenated: a scalar or a 0-d array could not be)."""
    seen: List[Any] = []

    def init(model: Model[Any, Any], X: Any = None, Y: Any = None) -> None:
        seen.append(X)

    child: Model[Any, Any] = Model("spy", lambda model, X, is_train: (X, lambda dY: dY), init=init)
    map_list(child).initialize(X=[item])
    assert seen[0] is item


def test_map_list_initialize_infers_dims_from_real_items() -> None:
    Xs = [numpy.zeros((0, 4), dtype="f"), numpy.ones((2, 4), dtype="f")]
    Ys = [numpy.zeros((0, 3), dtype="f"), numpy.ones((2, 3), dtype="f")]
    model = map_list(Linear())
    model.initialize(X=Xs, Y=Ys)
    assert model.layers[0].get_dim("nI") == 4 and model.layers[0].get_dim("nO") == 3
    assert model.get_dim("nO") == 3


def test_map_list_errors() -> None:
    model = map_list(select_token(0))
    with pytest.raises(LayerInputError, match=r"map_list\(select_token\(0\)\): expected a list"):
        model.predict(numpy.zeros((2, 3, 4)))  # type: ignore[arg-type]
    _, backprop = model([numpy.zeros((1, 2, 3))], is_train=True)
    with pytest.raises(LayerGradientError, match="expected a list of 1 gradients"):
        backprop([])


def test_cls_route_in_plain_thinc(ops: Any) -> None:
    """[CLS] per span, averaged over a doc's spans, with Thinc's own layers around ours."""
    rng = numpy.random.RandomState(0)
    Xs = [rng.uniform(-1, 1, (2, 5, 3)).astype("f"), rng.uniform(-1, 1, (1, 4, 3)).astype("f")]
    model = set_ops(chain(map_list(select_token(0)), list2ragged(), reduce_mean()), ops)
    Y = to_numpy(model.predict(to_ops(ops, Xs)))
    assert_allclose(Y, numpy.stack([Xs[0][:, 0].mean(0), Xs[1][0, 0]]), rtol=1e-6)


def test_array_getitem_refuses_a_zero_step() -> None:
    with pytest.raises(LayerInputError, match="slice step cannot be zero"):
        array_getitem("::0")
    with pytest.raises(LayerInputError, match="slice step cannot be zero"):
        array_getitem((slice(None), slice(None, None, 0)))
