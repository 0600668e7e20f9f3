"""trf_vectors on long Docs, on the offline all-MiniLM-L6-v2: with spacy-transformers'
overlapping strided spans every wordpiece position of the Doc counts once (the rows of one
position in two spans averaged first, the spans' [CLS] and [SEP] too), in ``doc.vector``,
span and token vectors, with ``exclude_special`` and another pooling; spacy-curated-
transformers averages the overlaps itself. The cosines to sentence-transformers on a long
text are in docs/vectors.md (run by test_doc_snippets_spacy.py)."""
from typing import Any, List, Tuple

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import Doc

from pipelines import CURATED_INITIALIZE, build, curated_transformer, spacy_transformers_nlp  # noqa: E402

TEXT = "The striker scored a late goal in the league match while the crowd sang loudly."
SMALL = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 8, "stride": 5}
#: a token in up to three spans
TRIPLE = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 9, "stride": 3}


def close(a: Any, b: Any) -> None:
    assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def sequence(doc: Doc) -> Tuple[Any, List[List[Any]], Any]:
    """The Doc as one sequence, written out with loops: the spans' first rows ([CLS])
    averaged; for each token, its k-th wordpiece averaged over the spans that hold it;
    the spans' last real rows ([SEP]) averaged."""
    td = doc._.trf_data
    T, lengths = td.tensors[0], td.wordpieces.lengths
    n_pieces = T.shape[1]
    flat = T.reshape(-1, T.shape[2])
    cls = numpy.mean([T[s, 0] for s in range(len(lengths))], axis=0)
    sep = numpy.mean([T[s, n - 1] for s, n in enumerate(lengths)], axis=0)
    tokens = []
    for i in range(len(doc)):
        copies: dict = {}
        for p in td.align[i].dataXd.reshape(-1).tolist():
            copies.setdefault(p // n_pieces, []).append(p)
        runs = list(copies.values())
        assert all(len(run) == len(runs[0]) for run in runs)  # WordPiece: the same pieces in every span
        tokens.append([numpy.mean([flat[run[k]] for run in runs], axis=0) for k in range(len(runs[0]))])
    return cls, tokens, sep


@pytest.fixture(scope="module")
def nlp() -> spacy.Language:
    return spacy_transformers_nlp(SMALL, then=["trf_vectors"])


@pytest.fixture(scope="module", params=[SMALL, TRIPLE], ids=["window8-stride5", "window9-stride3"])
def doc(request: Any) -> Doc:
    doc = spacy_transformers_nlp(request.param, then=["trf_vectors"])(TEXT)
    holding = [len(doc._.trf_data.align[i].dataXd.reshape(-1)) for i in (0, 6)]  # "The", "in"
    assert holding == ([1, 2] if request.param is SMALL else [1, 3])
    return doc


def test_every_position_counts_once_in_the_doc_vector(doc: Doc) -> None:
    cls, tokens, sep = sequence(doc)
    close(doc.vector, numpy.mean([cls, *[row for rows in tokens for row in rows], sep], axis=0))
    # not the old rule: every real row of every span, overlaps once per span
    td = doc._.trf_data
    every_row = numpy.concatenate([td.tensors[0][s, :n] for s, n in enumerate(td.wordpieces.lengths)]).mean(0)
    assert not numpy.allclose(doc.vector, every_row, atol=1e-4)


def test_spans_and_tokens(doc: Doc) -> None:
    _, tokens, _ = sequence(doc)
    for start, end in [(0, 3), (4, 9), (5, 6), (0, len(doc)), (9, len(doc))]:
        close(doc[start:end].vector, numpy.mean([row for rows in tokens[start:end] for row in rows], axis=0))
    for token in doc:
        close(token.vector, numpy.mean(tokens[token.i], axis=0))
        close(doc.tensor[token.i], token.vector)


def test_exclude_special_and_another_pooling(nlp: spacy.Language) -> None:
    nlp.add_pipe("trf_vectors", name="words", config={"exclude_special": True})
    nlp.add_pipe("trf_vectors", name="first", config={"pooling": {"@layers": "thinc_trf_layers.reduce_first.v1"}})
    try:
        base = nlp.make_doc(TEXT)
        for name, proc in nlp.pipeline:
            if name not in ("words", "first", "trf_vectors"):
                base = proc(base)
        words = nlp.get_pipe("words")(base)
        cls, tokens, _ = sequence(words)
        close(words.vector, numpy.mean([row for rows in tokens for row in rows], axis=0))
        close(words.vector, words[:].vector)
        first = nlp.get_pipe("first")(base)
        close(first.vector, cls)  # the [CLS] rows of the three spans, averaged
        close(first[2:5].vector, tokens[2][0])  # a span's first wordpiece
    finally:
        nlp.remove_pipe("words")
        nlp.remove_pipe("first")


def test_curated_strided_spans_average_the_overlaps_themselves() -> None:
    config = f'[nlp]\nlang = "en"\npipeline = ["transformer","trf_vectors"]\n\n[components]\n'
    config += curated_transformer(window=8, stride=5) + '\n[components.trf_vectors]\nfactory = "trf_vectors"\n'
    nlp = build(config + CURATED_INITIALIZE)
    nlp.initialize()
    doc = nlp(TEXT)
    rows = doc._.trf_data.all_outputs[-1]
    assert rows.dataXd.shape[0] == int(rows.lengths.sum()) > 8  # one sequence, longer than a window
    close(doc.vector, rows.dataXd.mean(0))
    close(doc[4:9].vector, rows.dataXd[int(rows.lengths[:4].sum()) : int(rows.lengths[:9].sum())].mean(0))
