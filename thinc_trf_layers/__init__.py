"""Thinc layers for transformer outputs: [CLS] selection, padding-aware pooling and
layer mixing, typed for Thinc's mypy plugin and registered for configs."""
# --- combinators
from .layers.array_getitem import array_getitem
from .layers.map_list import map_list
from .layers.select_token import select_token

# --- pooling (imports)

# --- layer mixing (imports)

# --- transformer outputs (imports)
from .testing.gradcheck import GradientCheckError, check_gradients
from .util import LayerGradientError, LayerInputError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "LayerInputError",
    "LayerGradientError",
    # testing
    "check_gradients",
    "GradientCheckError",
    # combinators
    "array_getitem",
    "map_list",
    "select_token",
    # --- pooling (names)
    # --- layer mixing (names)
    # --- transformer outputs (names)
]
