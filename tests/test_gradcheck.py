"""check_gradients must catch wrong backprops, not only pass right ones."""
from typing import Any, Callable, Tuple

import numpy
import pytest
from thinc.api import Linear, Model, chain, list2ragged, reduce_sum
from thinc.types import Floats2d, Ragged

from thinc_trf_layers import GradientCheckError, check_gradients, map_list


def _layer(scale_back: float) -> Model[Floats2d, Floats2d]:
    def forward(model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
        def backprop(dY: Floats2d) -> Floats2d:
            return dY * 2 * X * scale_back

        return X * X, backprop

    return Model("square", forward)


def test_passes_a_right_backprop() -> None:
    X = numpy.random.RandomState(0).uniform(-1, 1, (3, 4))
    check_gradients(_layer(1.0), X)


def test_catches_a_wrong_input_gradient() -> None:
    X = numpy.random.RandomState(0).uniform(-1, 1, (3, 4))
    with pytest.raises(GradientCheckError, match=r"input\[\d+, \d+\]: analytic .* numeric"):
        check_gradients(_layer(1.1), X)


def test_catches_a_wrong_parameter_gradient() -> None:
    model = Linear(2, 3)
    model.initialize()
    X = numpy.random.RandomState(0).uniform(-1, 1, (4, 3))
    check_gradients(model, X)
    original = model._func

    def bad_forward(model: Model, X: Any, is_train: bool) -> Any:
        Y, backprop = original(model, X, is_train)

        def bad_backprop(dY: Any) -> Any:
            dX = backprop(dY)
            model.inc_grad("b", model.ops.alloc1f(2) + 1)
            return dX

        return Y, bad_backprop

    model._func = bad_forward
    with pytest.raises(GradientCheckError, match="param 'b' of layer 'linear'"):
        check_gradients(model, X)


def test_walks_lists_and_ragged() -> None:
    rng = numpy.random.RandomState(0)
    Xs = [rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (0, 3)), rng.uniform(-1, 1, (1, 3))]
    model = chain(map_list(Linear(2, 3)), list2ragged(), reduce_sum())
    model.initialize(X=[X.astype("float32") for X in Xs])
    check_gradients(model, Xs)
    R = Ragged(rng.uniform(-1, 1, (4, 3)), numpy.asarray([1, 0, 3], dtype="i"))
    check_gradients(reduce_sum(), R)


def test_does_not_change_the_callers_model() -> None:
    model = Linear(2, 3)
    model.initialize()
    W = model.get_param("W").copy()
    check_gradients(model, numpy.ones((2, 3)))
    assert model.get_param("W").dtype == W.dtype
    numpy.testing.assert_array_equal(model.get_param("W"), W)
