"""trf_vectors with ``vectors_only = true`` on the offline all-MiniLM-L6-v2: the vectors
and similarities of the default mode (every cosine above 0.9999), ``doc._.trf_data``
dropped, a third of the bytes or less, the ways of keeping Docs, and a clear error where
a component after it still listens to the transformer."""
import pickle
from typing import Any, Iterator, List

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import Doc, DocBin

from pipelines import POOLED, build, spacy_transformers_nlp, st_transformer, textcat_pipeline, topic_examples  # noqa: E402
from thinc_trf_layers import LayerInputError
from thinc_trf_layers.spacy import TrfVectorsDataError, restore_vectors

STRIDED = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}
SHORT = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 24, "stride": 16}
KEY = "thinc_trf_layers.trf_vectors"
TEXTS = [
    "The girl moved to New York last year. She works for the United Nations. It is late.",
    "Unbelievably, the tokenizer splits this word.",
    "A man is eating food.",
    "After the firmware update the printer stopped working, so we called the support line, waited for an hour, "
    "and were told to reinstall the driver, which did not help at all; in the end a neighbour fixed it.",
    "",
    "   ",
]


def pipelines(get_spans: Any) -> List[spacy.Language]:
    nlp = spacy_transformers_nlp(get_spans, then=["sentencizer", "trf_vectors"])
    only = spacy_transformers_nlp(get_spans, then=["sentencizer"])
    only.add_pipe("trf_vectors", config={"vectors_only": True})
    return [nlp, only]


@pytest.fixture(scope="module")
def both() -> List[spacy.Language]:
    return pipelines(STRIDED)


def cosine(a: Any, b: Any) -> float:
    norm = float(numpy.linalg.norm(a) * numpy.linalg.norm(b))
    return float(a @ b / norm) if norm else float(not a.any() and not b.any())


def every_vector(doc: Doc) -> Iterator[Any]:
    yield doc.vector
    yield from (sent.vector for sent in doc.sents)
    yield from (token.vector for token in doc)
    yield from (doc[i : i + 3].vector for i in range(len(doc)))


@pytest.mark.parametrize("get_spans", [STRIDED, SHORT], ids=["one span", "overlapping spans"])
def test_the_vectors_of_the_default_mode(get_spans: Any) -> None:
    nlp, only = pipelines(get_spans)
    for text in TEXTS:
        doc, small = nlp(text), only(text)
        assert len(doc._.trf_data.wordpieces.lengths) == (3 if get_spans is SHORT and text == TEXTS[3] else len(doc) > 0)
        assert small._.trf_data is None and small.tensor.size == 0
        assert small.user_data[KEY]["rows"].dtype == numpy.float16
        assert_allclose(small.vector, doc.vector)  # stored in float32
        pairs = list(zip(every_vector(doc), every_vector(small)))
        assert len(pairs) == 1 + len(list(doc.sents)) + 2 * len(doc)
        for want, got in pairs:
            assert got.dtype == numpy.float32 and got.shape == (384,)
            assert cosine(got, want) > 0.9999
        if len(doc) > 3:
            assert small.similarity(small[1:3]) == pytest.approx(doc.similarity(doc[1:3]), abs=1e-4)
            assert small[0].similarity(small[2]) == pytest.approx(doc[0].similarity(doc[2]), abs=1e-4)


def fifty_tokens(nlp: spacy.Language) -> str:
    text = " ".join(TEXTS[:3] * 3)
    return nlp.make_doc(text)[:50].text


@pytest.mark.filterwarnings("ignore:.*W109")
def test_a_third_of_the_bytes_or_less(both: List[spacy.Language]) -> None:
    nlp, only = both
    text = fifty_tokens(nlp)
    doc, small = nlp(text), only(text)
    assert len(doc) == len(small) == 50
    assert len(small.to_bytes()) <= len(doc.to_bytes()) / 3
    assert len(pickle.dumps(small)) <= len(pickle.dumps(doc)) / 3


@pytest.mark.filterwarnings("ignore:.*W109")
def test_kept_docs_keep_their_vectors(both: List[spacy.Language]) -> None:
    _, only = both
    docs = list(only.pipe(TEXTS))
    want = [list(every_vector(doc)) for doc in docs]
    copies = [Doc(only.vocab).from_bytes(doc.to_bytes()) for doc in docs]
    copies += list(DocBin(store_user_data=True, docs=docs).from_bytes(DocBin(store_user_data=True, docs=docs).to_bytes()).get_docs(only.vocab))
    restore_vectors(copies)
    copies += [pickle.loads(pickle.dumps(doc)) for doc in docs] + [doc.copy() for doc in docs]
    for i, copy in enumerate(copies):
        assert copy.tensor.size == 0  # not rebuilt: computed per token when asked
        for a, b in zip(want[i % len(docs)], every_vector(copy)):
            assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_as_doc_and_merges(both: List[spacy.Language]) -> None:
    nlp, only = both
    doc, small = nlp(TEXTS[0]), only(TEXTS[0])
    for sent, small_sent in zip(doc.sents, small.sents):
        part = small_sent.as_doc()
        assert cosine(part.vector, sent.vector) > 0.9999 and cosine(part[1].vector, sent[1].vector) > 0.9999
    with small.retokenize() as retokenizer:
        retokenizer.merge(small[4:6])  # New York
    assert small[4].text == "New York" and cosine(small[4].vector, doc[4:6].vector) > 0.9999


def test_as_doc_of_text_that_occurs_twice_cannot_tell_which() -> None:
    """Without doc.tensor (the token vectors as_doc copies), a span whose text occurs twice
    in its Doc cannot be told from the other: a clear error, not the other's vectors."""
    _, only = pipelines(STRIDED)
    first, second = list(only("Thank you. Thank you.").sents)
    with pytest.raises(TrfVectorsDataError, match=r"trf_vectors: this Doc's text \('Thank you.'\) is 2 times in the text"):
        second.as_doc().vector


def test_a_listener_after_it_gets_a_clear_error() -> None:
    nlp = build(textcat_pipeline(st_transformer(), POOLED))
    nlp.initialize(lambda: topic_examples(nlp))
    nlp.add_pipe("trf_vectors", config={"vectors_only": True})
    text = "The striker scored a late goal."
    with nlp.select_pipes(disable=["trf_vectors"]):
        want = nlp(text).cats
    doc = nlp(text)  # the listener read the output before trf_vectors dropped it
    assert doc._.trf_data is None and doc.cats == pytest.approx(want)
    nlp.remove_pipe("trf_vectors")
    nlp.add_pipe("trf_vectors", before="textcat", config={"vectors_only": True})
    with pytest.raises(
        LayerInputError,
        match=r"trf_vectors \(trf_vectors\): vectors_only drops doc._.trf_data, but \['textcat'\] after it in the "
        r"pipeline listen to the transformer 'transformer' and would read zeros",
    ):
        nlp(text)


def test_the_setting_is_checked() -> None:
    from thinc_trf_layers import reduce_mean
    from thinc_trf_layers.spacy import TrfVectors

    with pytest.raises(LayerInputError, match=r"trf_vectors \(trf_vectors\): expected vectors_only to be true or false, got 'yes'"):
        TrfVectors(spacy.blank("en"), pooling=reduce_mean(), vectors_only="yes")  # type: ignore[arg-type]
    assert spacy.blank("en").add_pipe("trf_vectors").vectors_only is False
