"""Named aliases for the model types that recur across the library."""

from typing import Any, List, Protocol, TypeVar, Union, runtime_checkable

from thinc.api import Model
from thinc.types import ArrayXd, Floats2d, Floats3d, Ragged

from .containers.ours import TransformerOutput

InT = TypeVar("InT")
OutT = TypeVar("OutT")
ArrayTXd = TypeVar("ArrayTXd", bound=ArrayXd)

#: A pooling: one vector per row of a ``Ragged`` (``reduce_mean``, ``attention_pool``, ...).
PoolingModelT = Model[Ragged, Floats2d]
#: A layer mix: the hidden layers of one batch (one array per layer) to one array.
MixModelT = Model[List[Floats3d], Floats3d]
#: Per-span token selection: (spans, wordpieces, width) to (spans, width).
TokenSelectModelT = Model[Floats3d, Floats2d]


@runtime_checkable
class SpacyTransformerDataLike(Protocol):
    """spacy-transformers ``TransformerData``: one Doc's wordpieces, model output, alignment."""

    wordpieces: Any
    model_output: Any
    align: Ragged


@runtime_checkable
class CuratedDocOutputLike(Protocol):
    """spacy-curated-transformers ``DocTransformerOutput``: one Ragged per layer."""

    all_outputs: List[Ragged]
    last_layer_only: bool


#: One Doc's transformer output, in any container the layers accept (docs/typing.md).
TransformerOutputT = Union[
    TransformerOutput, SpacyTransformerDataLike, CuratedDocOutputLike, Ragged
]

__all__ = [
    "InT",
    "OutT",
    "ArrayTXd",
    "PoolingModelT",
    "MixModelT",
    "TokenSelectModelT",
    "TransformerOutputT",
    "SpacyTransformerDataLike",
    "CuratedDocOutputLike",
]
