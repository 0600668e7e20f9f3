"""A pytest plugin for the runs against an installed wheel (``make test-pythons``,
``make test-gpu``): ``-p ttl_installed_guard`` with ``scripts/`` on ``PYTHONPATH``.

Loaded before any conftest, it imports ``thinc_trf_layers`` first, so every test gets this
module, and stops the run unless that module comes from the running environment's
``sys.prefix`` (not from a checkout) with its compiled kernels loading. With
``TTL_REQUIRE_GPU=1`` it also stops unless Thinc sees a CUDA GPU through CuPy, so that
the ``gpu`` tests cannot all be skipped quietly.

It registers the hypothesis profile ``ttl-quick`` (10 examples; tests/conftest.py loads
the profile named by ``HYPOTHESIS_PROFILE``).
"""
import os
import pathlib
import sys
from typing import Any

import pytest
import thinc
import thinc_trf_layers
from hypothesis import HealthCheck, settings
from thinc_trf_layers.backends import COMPILED

settings.register_profile(
    "ttl-quick",
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def pytest_configure(config: Any) -> None:
    where = pathlib.Path(thinc_trf_layers.__file__).resolve()
    if pathlib.Path(sys.prefix).resolve() not in where.parents:
        raise pytest.UsageError(
            f"thinc_trf_layers was imported from {where}, not from {sys.prefix}"
        )
    kernels = COMPILED
    if kernels is None:
        raise pytest.UsageError(
            "the compiled kernels of the installed thinc_trf_layers do not import"
        )
    line = (
        f"thinc_trf_layers from {where.parent}, {pathlib.Path(kernels.__file__).name}, "
        f"thinc {thinc.__version__}"
    )
    if os.environ.get("TTL_REQUIRE_GPU") == "1":
        from thinc.util import has_cupy_gpu

        if not has_cupy_gpu:
            raise pytest.UsageError(
                "TTL_REQUIRE_GPU=1 but thinc.util.has_cupy_gpu is False: no GPU through CuPy"
            )
        import cupy

        line += f", CuPy {cupy.__version__}, {cupy.cuda.runtime.getDeviceCount()} GPU(s)"
    print(line, flush=True)
