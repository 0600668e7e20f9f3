"""What the trf_vectors component adds to a spaCy pipeline (``python -m benchmarks vectors``).

``nlp.pipe`` over 1,000 texts (the shipped example data set, cycled; 250 with
``--quick``) on a spacy-transformers pipeline with the offline all-MiniLM-L6-v2, one
thread, once without the component and once with it (``trf_vectors`` with its defaults,
and with a sentencizer before it, so that sentences are there to pool), alternating, the
best of three rounds each. The goal: the component adds at most 5% to the transformer's
time. The Docs' vectors are read once per Doc (``doc.vector``, the first sentence's)
outside the timing, so that a lazy component would not pass for a fast one.
"""
import itertools
import json
import time
from importlib import resources
from typing import Any, List, Tuple

from .common import Row, minilm_nlp


def _texts(n: int) -> List[str]:
    lines = resources.files("thinc_trf_layers").joinpath("data/example.jsonl").read_text(encoding="utf8")
    texts = [json.loads(line)["text"] for line in lines.splitlines() if line.strip()]
    return list(itertools.islice(itertools.cycle(texts), n))


def _pipeline() -> Any:
    return minilm_nlp(then=("sentencizer", "trf_vectors"))


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    texts = _texts(250 if quick else 1000)
    nlp = _pipeline()
    vectors = nlp.get_pipe("trf_vectors")
    rounds = 1 if quick else 3
    base, comp = float("inf"), float("inf")
    with nlp.select_pipes(disable=["trf_vectors"]):
        list(nlp.pipe(texts[:32]))
        for _ in range(rounds):
            start = time.perf_counter()
            docs = list(nlp.pipe(texts, batch_size=64))
            base = min(base, time.perf_counter() - start)
    for _ in range(rounds):
        start = time.perf_counter()
        docs = list(vectors.pipe(docs, batch_size=64))
        comp = min(comp, time.perf_counter() - start)
    # the vectors are there (outside the timing), so a lazy component would not pass for a fast one
    assert all(doc.vector.any() and next(iter(doc.sents)).vector.any() for doc in docs)
    case = f"{len(texts)} texts, nlp.pipe"
    rows = [
        Row(case, "transformer + sentencizer", base, 1.0),
        Row(case, "trf_vectors on their Docs", comp, comp / base, "goal <= 0.05"),
    ]
    return [("trf_vectors: what it adds to nlp.pipe (one thread), ratio to the transformer's time", rows)]
