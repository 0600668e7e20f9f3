"""One adapter per transformer-output container, the only place that knows which one it holds;
nothing here imports spaCy, its transformer packages, transformers or torch at module level."""

from .base import ContainerAdapter, DocLayers, DocTensor, adapter_for, check_batch
from .base import register_adapter, supported, unregister_adapter
from .curated import CuratedAdapter, RaggedAdapter
from .ours import OursAdapter, TransformerOutput
from .spacy_transformers import SpacyTransformersAdapter

# register_adapter puts each one first (and messages list them in that order)
for _adapter in (OursAdapter(), RaggedAdapter(), CuratedAdapter(), SpacyTransformersAdapter()):
    register_adapter(_adapter)

__all__ = [
    "ContainerAdapter",
    "DocTensor",
    "DocLayers",
    "TransformerOutput",
    "register_adapter",
    "unregister_adapter",
    "adapter_for",
    "check_batch",
    "supported",
]
