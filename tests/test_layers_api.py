"""Generic tests driven by one table of every registered layer (tests/cases_*.py)."""
import contextlib
import dataclasses
import importlib
import pathlib
from typing import Any, ContextManager, List
from unittest import mock

import numpy
import pytest
from numpy.testing import assert_allclose
from thinc.api import Config, NumpyOps, Ops, data_validation, registry
from thinc.types import Ragged

from helpers import set_ops, to_numpy, to_ops
from layer_cases import Case, check_kind
from thinc_trf_layers.backends import mix as mix_backend
from thinc_trf_layers.backends import reduce as reduce_backend
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


# --- read-only inputs ------------------------------------------------------------------


def _read_only(X: Any) -> Any:
    """A copy of an input structure whose every array (data, lengths, alignments) is
    read-only (``flags.writeable = False``), as Ray Data hands arrays to its workers."""
    if isinstance(X, numpy.ndarray):
        X = X.copy()
        X.flags.writeable = False
        return X
    if isinstance(X, Ragged):
        return Ragged(_read_only(X.dataXd), _read_only(X.lengths))
    if isinstance(X, (list, tuple)):
        return type(X)(_read_only(x) for x in X)
    if dataclasses.is_dataclass(X) and not isinstance(X, type):
        return dataclasses.replace(X, **{f.name: _read_only(getattr(X, f.name)) for f in dataclasses.fields(X) if f.init})
    return X


def _all_read_only(X: Any) -> bool:
    if isinstance(X, numpy.ndarray):
        return not X.flags.writeable
    if isinstance(X, Ragged):
        return _all_read_only(X.dataXd) and _all_read_only(X.lengths)
    if isinstance(X, (list, tuple)):
        return all(_all_read_only(x) for x in X)
    if dataclasses.is_dataclass(X) and not isinstance(X, type):
        return all(_all_read_only(getattr(X, f.name)) for f in dataclasses.fields(X))
    return True


#: NumpyOps with and without the compiled kernels, and the generic Ops (CupyOps arrays
#: have no read-only flag)
BACKENDS = ["NumpyOps", "NumpyOps-no-compiled", "Ops"]


def _backend(name: str) -> "tuple[Ops, ContextManager[Any]]":
    if name == "Ops":
        return Ops(), contextlib.nullcontext()
    if name == "NumpyOps":
        return NumpyOps(), contextlib.nullcontext()
    stack = contextlib.ExitStack()
    for module in (reduce_backend, mix_backend):
        stack.enter_context(mock.patch.object(module, "COMPILED", None))
    return NumpyOps(), stack


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_read_only_inputs_give_the_same_results(case: Case, backend: str, dtype: str) -> None:
    """Forward on an input whose arrays are all read-only, and backprop of a read-only
    gradient, give what a writeable input and gradient give."""
    ops, kernels = _backend(backend)
    X = _map_leaves(case.make_input(), lambda a: a.astype(dtype))
    with kernels:
        model = set_ops(_resolve(case), ops)
        model.initialize(X=X)
        Y, backprop = model(X, is_train=True)
        dY = _map_leaves(Y, lambda a: numpy.linspace(-1, 1, a.size).reshape(a.shape).astype(a.dtype))
        dX = backprop(dY)
        frozen, frozen_dY = _read_only(X), _read_only(dY)
        assert _all_read_only(frozen) and _all_read_only(frozen_dY)
        Y_ro, backprop_ro = model(frozen, is_train=True)
        dX_ro = backprop_ro(frozen_dY)
    _assert_equal(Y_ro, Y)
    _assert_equal(dX_ro, dX)


def _assert_equal(got: Any, want: Any) -> None:
    got_leaves, want_leaves = list(_leaves(got)), list(_leaves(want))
    assert [p for p, _ in got_leaves] == [p for p, _ in want_leaves]
    for (path, g), (_, w) in zip(got_leaves, want_leaves):
        assert g.dtype == w.dtype and g.shape == w.shape, path
        numpy.testing.assert_array_equal(g, w, err_msg=str(path))
