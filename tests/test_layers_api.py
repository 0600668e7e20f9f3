"""Generic tests driven by one table of every registered layer (tests/cases_*.py)."""
import importlib
import pathlib
from typing import Any, List

import numpy
import pytest
from numpy.testing import assert_allclose
from thinc.api import Config, data_validation, registry

from helpers import set_ops, to_numpy, to_ops
from layer_cases import Case, check_kind
from thinc_trf_layers.testing import check_gradients
from thinc_trf_layers.testing.gradcheck import _get_path, _leaves, _map_leaves


def _all_cases() -> List[Case]:
    cases: List[Case] = []
    for path in sorted(pathlib.Path(__file__).parent.glob("cases_*.py")):
        cases.extend(importlib.import_module(path.stem).CASES)
    return cases


CASES = _all_cases()
IDS = [case.test_id for case in CASES]


def _resolve(case: Case) -> Any:
    config = {"model": {"@layers": case.name, **case.config}}
    return registry.resolve(Config(config))["model"]


def _assert_same(got: Any, want: Any) -> None:
    got_leaves = list(_leaves(to_numpy(got)))
    want_leaves = list(_leaves(want))
    assert [p for p, _ in got_leaves] == [p for p, _ in want_leaves]
    for (_, g), (_, w) in zip(got_leaves, want_leaves):
        assert g.shape == w.shape
        assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_every_registered_layer_has_a_case() -> None:
    import thinc_trf_layers  # noqa: F401

    ours = {name for name in registry.layers.get_all() if name.startswith("thinc_trf_layers.")}
    covered = {case.name for case in CASES}
    assert ours - covered == set(), "registered layers without a row in tests/cases_*.py"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_backprop(case: Case, ops: Any) -> None:
    model = set_ops(_resolve(case), ops)
    # float32: Thinc 9's data validation checks the dtype of Floats*d (float64 inputs
    # are covered by test_gradients).
    X_np = _map_leaves(case.make_input(), lambda a: a.astype("float32"))
    X = to_ops(ops, X_np)
    with data_validation(True):
        model.initialize(X=X)
        Y, backprop = model(X, is_train=True)
    check_kind(Y, case.out_kind)
    if case.expected is not None:
        _assert_same(Y, case.expected(X_np))
    dY = _ones_like(Y)
    dX = backprop(dY)
    X_leaves = list(_leaves(X))
    for path, x in X_leaves:
        d = _get_path(dX, path)
        assert d is not None and tuple(d.shape) == tuple(x.shape), path


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients(case: Case) -> None:
    model = _resolve(case)
    X = case.make_input()
    model.initialize(X=X)
    check_gradients(model, X, **case.grad_kwargs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_serialization_round_trip(case: Case) -> None:
    model = _resolve(case)
    X = case.make_input()
    model.initialize(X=X)
    Y1 = model.predict(X)
    copy = _resolve(case)
    copy.initialize(X=X)
    copy.from_bytes(model.to_bytes())
    _assert_same(copy.predict(X), to_numpy(Y1))


def _ones_like(Y: Any) -> Any:
    return _map_leaves(Y, lambda a: a * 0 + 1)
