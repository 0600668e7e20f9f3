"""The table behind tests/test_layers_api.py.

Each area lists its registered layers in a ``tests/cases_<area>.py`` module as
``CASES: List[Case]``; the generic tests pick up every such module.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from thinc.types import Ragged

KINDS = ("Floats2d", "Floats3d", "ArrayXd", "Ragged", "List[Floats2d]", "List[Floats3d]", "List[List[Floats3d]]")


@dataclass
class Case:
    #: the registry name, ``thinc_trf_layers.<name>.v1``
    name: str
    #: arguments as a config gives them; nested layers as ``{"@layers": ...}`` dicts
    config: Dict[str, Any]
    #: a NumPy input (float64 so that the same input serves the gradient check)
    make_input: Callable[[], Any]
    #: the kind of the output, one of ``KINDS``
    out_kind: str
    #: optional expected output, computed independently from the input
    expected: Optional[Callable[[Any], Any]] = None
    #: extra pytest ids
    id: str = ""
    #: arguments for check_gradients
    grad_kwargs: Dict[str, Any] = field(default_factory=dict)

    @property
    def test_id(self) -> str:
        return self.id or self.name.split(".")[1]


def check_kind(value: Any, kind: str) -> None:
    """Assert that ``value`` is of ``kind``."""
    assert kind in KINDS, kind
    if kind.startswith("List["):
        assert isinstance(value, list), f"expected a list, got {type(value)}"
        inner = kind[len("List[") : -1]
        for item in value:
            check_kind(item, inner)
    elif kind == "Ragged":
        assert isinstance(value, Ragged), f"expected a Ragged, got {type(value)}"
    else:
        assert hasattr(value, "shape") and hasattr(value, "dtype"), f"expected an array, got {type(value)}"
        if kind != "ArrayXd":
            assert value.ndim == int(kind[-2]), f"expected {kind}, got shape {value.shape}"
        assert value.dtype.kind == "f", value.dtype
