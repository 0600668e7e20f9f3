"""spaCy integration (docs/spacy.md, docs/vectors.md); the only part of the package that
imports spaCy (install the ``spacy`` extra)."""

from .architectures import class_token_textcat, pooled_textcat
from .embed import embed_texts
from .listeners import FLAVOURS, curated_raw_listener, make_listener
from .token_listener import mixed_layers_listener
from .vectors import TrfVectors, TrfVectorsDataError, restore_vectors

__all__ = [
    "class_token_textcat",
    "pooled_textcat",
    "mixed_layers_listener",
    "make_listener",
    "curated_raw_listener",
    "FLAVOURS",
    "TrfVectors",
    "TrfVectorsDataError",
    "restore_vectors",
    "embed_texts",
]
