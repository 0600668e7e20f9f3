"""restore_vectors on data it did not make, on the offline all-MiniLM-L6-v2: every field it
reads is checked against itself and the Doc before any Doc changes, bad data raises
TrfVectorsDataError, and a crafted DocBin does not make it allocate more than its own data."""
import copy
import tracemalloc
from typing import Any, Callable, Dict, List

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import Doc, DocBin

from pipelines import spacy_transformers_nlp  # noqa: E402
from thinc_trf_layers import LayerInputError
from thinc_trf_layers.spacy import TrfVectorsDataError, restore_vectors

STRIDED = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}
TEXT = "Unbelievably, the tokenizer splits this word."
KEY = "thinc_trf_layers.trf_vectors"


@pytest.fixture(scope="module")
def nlp() -> spacy.Language:
    return spacy_transformers_nlp(STRIDED, then=["trf_vectors"])


def through_docbin(vocab: Any, docs: List[Doc]) -> List[Doc]:
    return list(DocBin(store_user_data=True, docs=docs).from_bytes(DocBin(store_user_data=True, docs=docs).to_bytes()).get_docs(vocab))


def set_(name: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    return lambda data: data.__setitem__(name, value)


def edit(name: str, index: Any, value: Any) -> Callable[[Dict[str, Any]], None]:
    def change(data: Dict[str, Any]) -> None:
        data[name] = data[name].copy()
        data[name][index] = value

    return change


BAD = [
    (lambda d: d.pop("rows"), r"has the keys \[.*\]"),
    (set_("extra", 1), r"has the keys \[.*'extra'.*\]"),
    (set_("rows", [[0.0] * 384]), r"holds rows as a list; expected a 2d float array"),
    (lambda d: d.__setitem__("rows", d["rows"].astype("int64")), r"holds rows as a int64 array of shape .*; expected a 2d float array"),
    (lambda d: d.__setitem__("rows", d["rows"][:, :100]), r"holds a vector of shape \(384,\) and rows of shape \(\d+, 100\); expected one width"),
    (set_("rows", numpy.zeros((0, 47_000_000), dtype="float32")), r"rows of shape \(0, 47000000\); expected one width"),
    (set_("vector", numpy.zeros(0, dtype="float32")), r"holds a vector of shape \(0,\)"),
    (edit("token_rows", 0, -1), r"points at rows -1\.\."),
    (edit("token_rows", 0, 10_000), r"points at rows .*10000 of"),
    (edit("token_offsets", 2, 0), r"token offsets for \d+ tokens"),
    (lambda d: d.__setitem__("token_offsets", d["token_offsets"][:-1]), r"holds 8 token offsets for 8 tokens"),
    (edit("chars", (1, 0), 0), r"token characters of shape \(8, 2\) not in order"),
    (edit("chars", (-1, 1), 1000), r"not in order within its 45-char text"),
    (lambda d: d.__setitem__("token_rows", numpy.zeros(40, dtype="int32")) or d.__setitem__("token_offsets", numpy.r_[0, [5] * 7, 40]), r"holds 40 token rows for \d+ rows and 8 tokens; expected at most their sum"),
    (set_("text", TEXT.replace("word", "wore")), r"this Doc's text .* is not in the text trf_vectors ran on \('Unbelievably, .* wore.'\)"),
    (set_("text", 3), r"holds text as int"),
    (set_("normalize", "no"), r"normalize as 'no'"),
    (set_("pooling", "thinc_trf_layers.reduce_mean.v1"), r"pooling is 'thinc_trf_layers.reduce_mean.v1'; expected a config block of @layers"),
    (set_("pooling", {"@layers": "thinc_trf_layers.reduce_mean.v1", "x": {"@readers": "spacy.Corpus.v1", "path": "/"}}), r"expected a config block of @layers"),
    (set_("pooling", {"@layers": "no.such.layer.v1"}), r"cannot build the pooling \{'@layers': 'no.such.layer.v1'\}"),
    (set_("pooling", {"@layers": "thinc_trf_layers.attention_pool.v1"}), r"attention_pool has parameters"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_data_is_refused_before_anything_changes(nlp: spacy.Language, change: Any, message: str) -> None:
    good, doc = nlp("A man is eating food."), through_docbin(nlp.vocab, [nlp(TEXT)])[0]
    data = copy.copy(doc.user_data[KEY])
    change(data)
    doc.user_data[KEY] = data
    loaded = through_docbin(nlp.vocab, [good]) + [doc]
    with pytest.raises(TrfVectorsDataError, match=r"trf_vectors.*" + message):
        restore_vectors(loaded)
    for d in loaded:  # nothing installed, not even on the good Doc before it
        assert "vector" not in d.user_hooks and d.tensor.shape == (0,)
    assert issubclass(TrfVectorsDataError, LayerInputError) and issubclass(TrfVectorsDataError, ValueError)


def test_user_data_that_is_not_a_dict(nlp: spacy.Language) -> None:
    doc = nlp(TEXT)
    doc.user_data[KEY] = [1, 2]
    with pytest.raises(TrfVectorsDataError, match=r"trf_vectors: doc.user_data\['thinc_trf_layers.trf_vectors'\] is a list"):
        restore_vectors(doc)


def peak_bytes(run: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_crafted_docbin_does_not_make_restore_allocate_much(nlp: spacy.Language) -> None:
    """A wide row shared by many tokens: a few kB of DocBin (zeros compress), 8 MB of
    rows once decoded, and (tokens x width) = 1.6 GB if restore rebuilt doc.tensor."""
    doc = nlp(" ".join(["word"] * 199) + ".")
    width = 2_000_000
    doc.user_data[KEY] = {
        **doc.user_data[KEY],
        "rows": numpy.zeros((1, width), dtype="float32"),
        "vector": numpy.zeros(width, dtype="float32"),
        "token_rows": numpy.zeros(len(doc), dtype="int32"),
        "token_offsets": numpy.arange(len(doc) + 1),
    }
    del doc.user_data[("._.", "trf_data", None, None)]  # spacy-transformers' output: not ours to weigh
    data = DocBin(store_user_data=True, docs=[doc]).to_bytes()
    assert len(data) < 100_000
    loaded = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
    assert peak_bytes(lambda: restore_vectors(loaded)) < 1_000_000
    assert loaded[0].tensor.shape == (0,)  # not rebuilt: computed per token when asked
    assert loaded[0][3].vector.shape == (width,) and loaded[0][0:5].vector.shape == (width,)


def test_the_old_720_mb_docbin_is_refused_at_once(nlp: spacy.Language) -> None:
    doc = nlp(TEXT)
    doc.user_data[KEY] = {**doc.user_data[KEY], "rows": numpy.zeros((0, 47_000_000), dtype="float32")}
    loaded = list(DocBin().from_bytes(DocBin(store_user_data=True, docs=[doc]).to_bytes()).get_docs(nlp.vocab))

    def restore() -> None:
        with pytest.raises(TrfVectorsDataError, match="rows of shape"):
            restore_vectors(loaded)

    assert peak_bytes(restore) < 1_000_000


def test_good_data_round_trips(nlp: spacy.Language) -> None:
    docs = list(nlp.pipe([TEXT, "", "A man is eating food."]))
    loaded = through_docbin(nlp.vocab, docs)
    restore_vectors(loaded)
    restore_vectors(loaded)  # twice: the same
    for doc, copy_ in zip(docs, loaded):
        assert_allclose(copy_.vector, doc.vector)
        assert_allclose(copy_.tensor, doc.tensor)
        assert_allclose(copy_[0:3].vector, doc[0:3].vector, rtol=1e-6, atol=1e-7)
