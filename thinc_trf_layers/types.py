"""Named aliases for the model types that recur across the library."""
from typing import List, TypeVar

from thinc.api import Model
from thinc.types import ArrayXd, Floats2d, Floats3d, Ragged

InT = TypeVar("InT")
OutT = TypeVar("OutT")
ArrayTXd = TypeVar("ArrayTXd", bound=ArrayXd)

#: A pooling: one vector per row of a ``Ragged`` (``reduce_mean``, ``attention_pool``, ...).
PoolingModelT = Model[Ragged, Floats2d]
#: A layer mix: the hidden layers of one batch (one array per layer) to one array.
MixModelT = Model[List[Floats3d], Floats3d]
#: Per-span token selection: (spans, wordpieces, width) to (spans, width).
TokenSelectModelT = Model[Floats3d, Floats2d]

__all__ = ["InT", "OutT", "ArrayTXd", "PoolingModelT", "MixModelT", "TokenSelectModelT"]
