"""Shared test helpers (not fixtures)."""
from typing import Any, List

import numpy
import pytest
from thinc.api import Model, NumpyOps, Ops
from thinc.types import Ragged
from thinc.util import has_cupy_gpu


def ops_params(*, fallback: bool = False) -> List[Any]:
    """The parameters of an ``ops`` fixture: NumpyOps, the generic Ops, CupyOps (skipped
    without a GPU); with ``fallback``, also NumpyOps without the compiled kernels."""
    params: List[Any] = [pytest.param("numpy", id="NumpyOps")]
    if fallback:
        params.append(pytest.param("numpy-fallback", id="NumpyOps-no-compiled"))
    params += [
        pytest.param("base", id="Ops"),
        pytest.param(
            "cupy",
            id="CupyOps",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not has_cupy_gpu, reason="needs a CUDA GPU")],
        ),
    ]
    return params


def make_ops(name: str) -> Ops:
    """The Ops named by an `ops` fixture parameter: "numpy", "base" (the generic Ops) or "cupy"."""
    if name == "numpy":
        return NumpyOps()
    if name == "base":
        return Ops()
    from thinc.api import CupyOps

    return CupyOps()


def set_ops(model: Model[Any, Any], ops: Ops) -> Model[Any, Any]:
    """Put every node of ``model`` on ``ops``."""
    for node in model.walk():
        node.ops = ops
    return model


def to_ops(ops: Ops, X: Any) -> Any:
    """Move an input structure (arrays, Ragged, lists, tuples) onto ``ops``."""
    if isinstance(X, Ragged):
        return Ragged(ops.asarray(X.dataXd), ops.asarray(X.lengths))
    if isinstance(X, list):
        return [to_ops(ops, x) for x in X]
    if isinstance(X, tuple):
        return tuple(to_ops(ops, x) for x in X)
    if isinstance(X, numpy.ndarray):
        return ops.asarray(X)
    return X


def to_numpy(X: Any) -> Any:
    """Bring an output structure back to NumPy."""
    if isinstance(X, Ragged):
        return Ragged(to_numpy(X.dataXd), to_numpy(X.lengths))
    if isinstance(X, list):
        return [to_numpy(x) for x in X]
    if isinstance(X, tuple):
        return tuple(to_numpy(x) for x in X)
    if hasattr(X, "get") and not isinstance(X, (numpy.ndarray, dict)):
        return X.get()
    return X
