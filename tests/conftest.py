import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from thinc.api import Ops  # noqa: E402

from helpers import make_ops, ops_params  # noqa: E402

settings.register_profile(
    "ttl",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ttl"))


@pytest.fixture(params=ops_params())
def ops(request: Any) -> Ops:
    """Every Ops the layers must run on: NumpyOps, the generic Ops path, CupyOps (GPU)."""
    return make_ops(request.param)


@pytest.fixture(autouse=True)
def _reset_data_validation() -> Any:
    """Thinc's ``data_validation`` context manager does not restore the flag when the
    block raises (no try/finally); reset it around every test so that one failure does
    not switch validation on for the tests after it."""
    from thinc.util import DATA_VALIDATION

    token = DATA_VALIDATION.set(False)
    yield
    DATA_VALIDATION.reset(token)
