"""Token vectors from a transformer's output (``python -m benchmarks tokens``).

The real output of all-MiniLM-L6-v2 in a spacy-transformers pipeline (with its hidden
layers) on 64 texts of the shipped example data (32 with ``--quick``), computed once;
then, forward + backward on that output, one thread:

- spacy-transformers' own per-token pooling (``trfs2arrays(reduce_mean)``, what its
  ``TransformerListener.v1`` runs): the baseline;
- ``token_pool(reduce_mean())`` on the same tensor: the same values (tested);
- ``token_pool(reduce_mean(), mix=scalar_mix())``: a learned mix of the 7 layers first,
  what ``MixedLayersListener.v1`` runs.

Ratios are to the baseline, in the same process.
"""
from typing import Any, List, Tuple

import numpy

from .bench_vectors import _texts
from .common import Row, minilm_nlp, timeit


def _outputs(n: int) -> List[Any]:
    nlp = minilm_nlp(hidden_states=True)
    return [doc._.trf_data for doc in nlp.pipe(_texts(n), batch_size=64)]


def _step(model: Any, X: Any) -> Any:
    model.initialize()

    def step() -> object:
        Y, backprop = model(X, is_train=True)
        # a new gradient list each time: spacy-transformers' backprop changes the one it gets
        return backprop([numpy.ones_like(y) for y in Y])

    return step


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    import warnings

    from spacy_transformers.layers.trfs2arrays import trfs2arrays

    from thinc_trf_layers import TransformerGradientWarning, reduce_mean, scalar_mix, token_pool

    warnings.simplefilter("ignore", TransformerGradientWarning)  # the mix's lower layers
    X = _outputs(32 if quick else 64)
    n_tokens = sum(len(x.align.lengths) for x in X)
    case = f"{len(X)} docs, {n_tokens} tokens"
    base = timeit(_step(trfs2arrays(reduce_mean(), 1.0), X))
    ours = timeit(_step(token_pool(reduce_mean()), X))
    mixed = timeit(_step(token_pool(reduce_mean(), mix=scalar_mix()), X))
    rows = [
        Row(case, "spacy-transformers: trfs2arrays(reduce_mean)", base, 1.0),
        Row(case, "ours: token_pool(reduce_mean())", ours, ours / base),
        Row(case, "ours: token_pool(reduce_mean(), mix=scalar_mix())", mixed, mixed / base, "7 layers mixed"),
    ]
    return [("token vectors: forward + backward on real all-MiniLM output, ratio to spacy-transformers' own", rows)]
