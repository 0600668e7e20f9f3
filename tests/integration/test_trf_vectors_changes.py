"""trf_vectors on Docs that changed after the component ran, on the offline
all-MiniLM-L6-v2: ``Span.as_doc()`` (with and without ``copy_user_data``), ``Doc.copy()``,
pickling, tokens merged or split afterwards (``doc.retokenize()``, ``merge_entities``), a
retokenizer between the transformer and the component, and another Doc's data."""
import pickle
from typing import Any

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import Doc

from pipelines import spacy_transformers_nlp  # noqa: E402
from thinc_trf_layers.spacy import TrfVectorsDataError

STRIDED = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}
TEXT = "The girl moved to New York last year. She works for the United Nations. It is late."
KEY = "thinc_trf_layers.trf_vectors"


@pytest.fixture(scope="module")
def nlp() -> spacy.Language:
    return spacy_transformers_nlp(STRIDED, then=["sentencizer", "trf_vectors"])


def close(a: Any, b: Any) -> None:
    assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def wordpieces(doc: Doc, start: int, end: int) -> Any:
    """The last hidden state's rows aligned to tokens start..end - 1, each once."""
    td = doc._.trf_data
    flat = td.tensors[0].reshape(-1, td.tensors[0].shape[-1])
    return flat[numpy.unique(numpy.concatenate([td.align[i].dataXd.reshape(-1) for i in range(start, end)]))]


@pytest.mark.parametrize("copy_user_data", [False, True])
def test_as_doc_gets_the_vectors_of_the_span_and_its_tokens(nlp: spacy.Language, copy_user_data: bool) -> None:
    doc = nlp(TEXT)
    for sent in doc.sents:
        part = sent.as_doc(copy_user_data=copy_user_data)
        close(part.vector, sent.vector)
        close(part.vector, wordpieces(doc, sent.start, sent.end).mean(0))
        for i in range(len(part)):
            close(part[i].vector, doc[sent.start + i].vector)
            close(part[i:].vector, doc[sent.start + i : sent.end].vector)
        assert part.similarity(sent) == pytest.approx(1.0, abs=1e-6)
        assert part[0:2].similarity(part[1]) == pytest.approx(sent[0:2].similarity(sent[1]), abs=1e-6)


def test_as_doc_of_the_whole_doc_is_its_span_not_the_doc(nlp: spacy.Language) -> None:
    """doc[:] leaves out [CLS] and [SEP]; Doc.copy() keeps the Doc's vector."""
    doc = nlp(TEXT)
    assert not numpy.allclose(doc[:].vector, doc.vector)
    for copy_user_data in (False, True):
        close(doc[:].as_doc(copy_user_data=copy_user_data).vector, doc[:].vector)
    close(doc.copy().vector, doc.vector)
    # how the hooks tell them apart: as_doc gives the new Doc the very hook dicts of its
    # Doc, Doc.copy() and pickling make new ones (if spaCy changes this, this test fails)
    for hooks in ("user_hooks", "user_span_hooks", "user_token_hooks"):
        assert getattr(doc[:].as_doc(), hooks) is getattr(doc, hooks)
        assert getattr(doc.copy(), hooks) is not getattr(doc, hooks)
        assert getattr(pickle.loads(pickle.dumps(doc)), hooks) is not getattr(doc, hooks)


def test_as_doc_of_text_that_occurs_twice(nlp: spacy.Language) -> None:
    """"Thank you." twice: each new Doc gets its own sentence's vectors (told apart by
    the token vectors that as_doc copies)."""
    doc = nlp("Thank you. Thank you.")
    first, second = list(doc.sents)
    assert first.text == second.text and not numpy.allclose(first.vector, second.vector)
    for sent in (first, second):
        part = sent.as_doc()
        close(part.vector, sent.vector)
        close(part[0].vector, sent[0].vector)


def test_doc_copy_and_pickle_keep_the_vectors(nlp: spacy.Language) -> None:
    doc = nlp(TEXT)
    for other in (doc.copy(), pickle.loads(pickle.dumps(doc))):
        close(other.vector, doc.vector)
        close(other[4:6].vector, doc[4:6].vector)
        close(numpy.stack([t.vector for t in other]), doc.tensor)


def test_merged_tokens_get_the_mean_of_their_parts_wordpieces(nlp: spacy.Language) -> None:
    doc = nlp(TEXT)
    vector, sents = doc.vector.copy(), [s.vector.copy() for s in doc.sents]
    new_york, un = doc[4:6].vector.copy(), doc[12:15].vector.copy()
    want_ny, want_un = wordpieces(doc, 4, 6).mean(0), wordpieces(doc, 12, 15).mean(0)
    late = doc[-2].vector.copy()
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[4:6])  # New York
        retokenizer.merge(doc[12:15])  # the United Nations
    assert doc[4].text == "New York" and doc[11].text == "the United Nations"
    close(doc[4].vector, want_ny)
    close(doc[11].vector, want_un)
    close(doc[4:5].vector, new_york)
    close(doc[11:12].vector, un)
    close(doc[-2].vector, late)  # "late", moved by three tokens
    close(doc.vector, vector)
    for sent, want in zip(doc.sents, sents):
        close(sent.vector, want)
    assert doc[4].similarity(doc[4:5]) == pytest.approx(1.0, abs=1e-6)


def test_merge_entities_after_the_component() -> None:
    nlp = spacy_transformers_nlp(STRIDED, then=["sentencizer"])
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "GPE", "pattern": "New York"}, {"label": "ORG", "pattern": "United Nations"}])
    nlp.add_pipe("trf_vectors")
    nlp.add_pipe("merge_entities")
    doc = nlp(TEXT)
    assert doc[4].text == "New York" and doc[12].text == "United Nations"
    # doc._.trf_data keeps the transformer's alignment, to the tokens before the merge
    close(doc[4].vector, wordpieces(doc, 4, 6).mean(0))
    close(doc[12].vector, wordpieces(doc, 13, 15).mean(0))
    close(doc[3:5].vector, wordpieces(doc, 3, 6).mean(0))
    close(doc[12:].vector, wordpieces(doc, 13, 20).mean(0))


def test_split_tokens_get_a_clear_error(nlp: spacy.Language) -> None:
    doc = nlp("I live in Newcastle now.")
    whole = doc[3].vector.copy()
    with doc.retokenize() as retokenizer:
        retokenizer.split(doc[3], ["New", "castle"], heads=[(doc[3], 1), doc[2]])
    assert [t.text for t in doc] == ["I", "live", "in", "New", "castle", "now", "."]
    for part in (doc[3], doc[4], doc[2:4]):
        with pytest.raises(TrfVectorsDataError, match=r"trf_vectors: .*cuts a token that the transformer saw whole.*Split tokens before the transformer"):
            part.vector
    close(doc[3:5].vector, whole)  # the span that holds the whole token
    close(doc[5].vector, wordpieces(nlp("I live in Newcastle now."), 4, 5).mean(0))
    assert doc.vector.shape == (384,)


def test_a_retokenizer_between_the_transformer_and_the_component() -> None:
    nlp = spacy_transformers_nlp(STRIDED)
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "GPE", "pattern": "New York"}])
    nlp.add_pipe("merge_entities")
    nlp.add_pipe("trf_vectors")
    with pytest.raises(
        TrfVectorsDataError,
        match=r"trf_vectors\): Doc 0 has 19 tokens, but its transformer output aligns wordpieces to 20 tokens.*"
        "Put trf_vectors right after the transformer",
    ):
        nlp(TEXT)


def test_another_docs_data_gets_a_clear_error(nlp: spacy.Language) -> None:
    doc, other = nlp(TEXT), nlp("Something else entirely.")
    other.user_hooks, other.user_span_hooks, other.user_token_hooks = doc.user_hooks, doc.user_span_hooks, doc.user_token_hooks
    for ask in (lambda: other.vector, lambda: other[0:2].vector, lambda: other[1].vector):
        with pytest.raises(TrfVectorsDataError, match=r"trf_vectors: this Doc's text \('Something else entirely.'\) is not in the text"):
            ask()
