"""The trf_vectors component on real pipelines with the offline all-MiniLM-L6-v2:
values against sentence-transformers and the transformer's own wordpieces, the options,
both transformer packages, and the ways users keep Docs (to_disk, pickling through
n_process, Doc.to_bytes, DocBin). Long Docs: test_trf_vectors_long.py; changed Docs:
test_trf_vectors_changes.py; the pooling block and edge cases: test_trf_vectors_config.py;
restore_vectors on bad data: test_trf_vectors_restore.py."""
import os
import pathlib
import subprocess
import sys
import textwrap
import warnings
from typing import Any, List

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import Doc, DocBin

from pipelines import CURATED_INITIALIZE, MODEL_PATH, build, curated_transformer, spacy_transformers_nlp  # noqa: E402
from thinc_trf_layers import LayerInputError  # noqa: E402
from thinc_trf_layers.spacy.vectors import restore_vectors  # noqa: E402

TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby. It is late at night.",
    "Unbelievably, the tokenizer splits this word.",
    "",
    "   ",
]
STRIDED = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}


def cosine(a: Any, b: Any) -> float:
    return float(numpy.dot(a, b) / (numpy.linalg.norm(a) * numpy.linalg.norm(b)))


@pytest.fixture(scope="module")
def nlp() -> spacy.Language:
    return spacy_transformers_nlp(STRIDED, then=["sentencizer", "trf_vectors"])


@pytest.fixture(scope="module")
def docs(nlp: spacy.Language) -> List[Doc]:
    return list(nlp.pipe(TEXTS))


def real_rows(doc: Doc) -> Any:
    """Every real wordpiece of the Doc's last hidden state, span after span."""
    td = doc._.trf_data
    T = td.tensors[0]
    return numpy.concatenate([T[s, :n] for s, n in enumerate(td.wordpieces.lengths)])


def aligned(doc: Doc, start: int, end: int) -> Any:
    """The wordpiece rows aligned to tokens start..end - 1, each once."""
    td = doc._.trf_data
    flat = td.tensors[0].reshape(-1, td.tensors[0].shape[-1])
    positions = numpy.concatenate([td.align[i].dataXd.reshape(-1) for i in range(start, end)])
    return flat[numpy.unique(positions)]


def test_doc_vector_is_sentence_transformers_embedding(docs: List[Doc]) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(MODEL_PATH, device="cpu")
    texts = [doc.text for doc in docs[:4]]
    for doc, reference in zip(docs, model.encode(texts)):
        assert cosine(doc.vector, reference) > 0.9999
        assert_allclose(doc.vector, real_rows(doc).mean(0), rtol=1e-5, atol=1e-6)


def test_span_sentence_and_token_vectors(docs: List[Doc]) -> None:
    doc = docs[3]  # "Unbelievably" has several wordpieces
    for start, end in [(0, 1), (0, 3), (2, len(doc))]:
        assert_allclose(doc[start:end].vector, aligned(doc, start, end).mean(0), rtol=1e-5, atol=1e-6)
    for sent in docs[2].sents:
        assert_allclose(sent.vector, aligned(docs[2], sent.start, sent.end).mean(0), rtol=1e-5, atol=1e-6)
    for token in doc:
        assert_allclose(token.vector, aligned(doc, token.i, token.i + 1).mean(0), rtol=1e-5, atol=1e-6)
    assert doc.tensor.shape == (len(doc), 384)


def test_similarity_is_the_cosine_without_warnings(docs: List[Doc]) -> None:
    a, b, c = docs[0], docs[1], docs[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # spaCy's W007 "no word vectors" would fail here
        assert a.similarity(b) == pytest.approx(cosine(a.vector, b.vector), abs=1e-6)
        assert a.similarity(b) > a.similarity(c)
        assert a[0:2].similarity(b[0:2]) == pytest.approx(cosine(a[0:2].vector, b[0:2].vector), abs=1e-6)
        assert a[1].similarity(b[1]) == pytest.approx(cosine(a[1].vector, b[1].vector), abs=1e-6)
        assert a[1].similarity(b[1]) > 0.9  # "man" and "man"


def test_docs_without_wordpieces_get_zero_vectors(docs: List[Doc]) -> None:
    empty, blank = docs[4], docs[5]
    for doc in (empty, blank):
        assert doc.vector.shape == (384,) and not doc.vector.any()
        assert all(not token.vector.any() for token in doc)
        assert doc.similarity(docs[0]) == 0.0
    assert not blank[0:1].vector.any()


def test_options_pooling_normalize_exclude_special_last_layers() -> None:
    nlp = spacy_transformers_nlp(STRIDED)
    text = TEXTS[3]
    base = nlp(text)
    cls = nlp.add_pipe("trf_vectors", name="cls", config={"pooling": {"@layers": "thinc_trf_layers.reduce_first.v1"}})
    doc = cls(base)
    assert_allclose(doc.vector, doc._.trf_data.tensors[0][0, 0], rtol=1e-6)
    nlp.remove_pipe("cls")
    unit = nlp.add_pipe("trf_vectors", name="unit", config={"normalize": True})(nlp(text))
    assert numpy.linalg.norm(unit.vector) == pytest.approx(1.0, abs=1e-5)
    assert numpy.linalg.norm(unit[0:2].vector) == pytest.approx(1.0, abs=1e-5)
    assert numpy.linalg.norm(unit[1].vector) == pytest.approx(1.0, abs=1e-5)
    nlp.remove_pipe("unit")
    words = nlp.add_pipe("trf_vectors", name="words", config={"exclude_special": True})(nlp(text))
    assert_allclose(words.vector, aligned(words, 0, len(words)).mean(0), rtol=1e-5, atol=1e-6)
    assert_allclose(words.vector, words[:].vector, rtol=1e-6)


def test_last_layers_mixes_the_top_hidden_layers() -> None:
    nlp = spacy_transformers_nlp(STRIDED, transformer_config={"output_hidden_states": True})
    nlp.add_pipe("trf_vectors", config={"last_layers": 2})
    doc = nlp(TEXTS[0])
    hidden = doc._.trf_data.model_output.hidden_states
    n = doc._.trf_data.wordpieces.lengths[0]
    want = ((hidden[-1][0, :n] + hidden[-2][0, :n]) / 2).mean(0)
    assert_allclose(doc.vector, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(LayerInputError, match="last_layers = 9, but the transformer output has 7 layers"):
        nlp.add_pipe("trf_vectors", name="too_many", config={"last_layers": 9})(nlp(TEXTS[0]))


def test_curated_pipeline() -> None:
    config = f'[nlp]\nlang = "en"\npipeline = ["transformer"]\n\n[components]\n{curated_transformer()}\n'
    nlp = build(config + CURATED_INITIALIZE)
    nlp.add_pipe("trf_vectors")
    nlp.initialize()
    doc = nlp("Hello world, unbelievably long.  Ok")
    rows = doc._.trf_data.all_outputs[-1]
    assert_allclose(doc.vector, rows.dataXd.mean(0), rtol=1e-5, atol=1e-6)
    assert_allclose(doc[3].vector, rows[3].dataXd.mean(0), rtol=1e-5, atol=1e-6)  # "unbelievably"
    assert not doc[6].vector.any()  # the whitespace token has no wordpiece
    assert_allclose(doc[0:3].vector, rows.dataXd[:3].mean(0), rtol=1e-5, atol=1e-6)


def test_errors() -> None:
    nlp = spacy.blank("en")
    with pytest.raises(LayerInputError, match="pooling is a config block, got the string 'nope.v1'"):
        nlp.add_pipe("trf_vectors", config={"pooling": "nope.v1"})
    nlp.add_pipe("trf_vectors")
    with pytest.raises(LayerInputError, match="Doc 0 has no transformer output.*earlier in the pipeline"):
        nlp("no transformer here")


# --- keeping Docs ----------------------------------------------------------------------------


def same_vectors(a: Doc, b: Doc) -> None:
    """(a Doc run alone and one run in a batch differ in the last float32 bits)"""
    assert_allclose(a.vector, b.vector, rtol=1e-5, atol=1e-5)
    assert_allclose(a[1:4].vector, b[1:4].vector, rtol=1e-5, atol=1e-5)
    assert_allclose(numpy.stack([t.vector for t in a]), numpy.stack([t.vector for t in b]), rtol=1e-5, atol=1e-5)
    assert a.similarity(a[0:2]) == pytest.approx(b.similarity(b[0:2]), abs=1e-6)


def test_doc_to_bytes_keeps_token_vectors_and_restore_brings_back_the_rest(nlp: spacy.Language, docs: List[Doc]) -> None:
    doc = docs[3]
    with pytest.warns(UserWarning, match="W109"):  # spaCy cannot save hooks
        data = doc.to_bytes()
    copy = Doc(nlp.vocab).from_bytes(data)
    assert_allclose(numpy.stack([t.vector for t in copy]), doc.tensor)  # doc.tensor: nothing to do
    restore_vectors(copy)
    same_vectors(doc, copy)


def test_docbin_round_trip_after_restore(nlp: spacy.Language, docs: List[Doc]) -> None:
    data = DocBin(store_user_data=True, docs=docs).to_bytes()
    loaded = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
    restore_vectors(loaded)
    for doc, copy in zip(docs[:4], loaded[:4]):
        same_vectors(doc, copy)
    assert not loaded[4].vector.any()


def test_to_disk_and_spacy_load(nlp: spacy.Language, docs: List[Doc], tmp_path: pathlib.Path) -> None:
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == nlp.pipe_names
    assert loaded.get_pipe("trf_vectors").pooling_config() == {"@layers": "thinc_trf_layers.reduce_mean.v1"}
    same_vectors(docs[3], loaded(TEXTS[3]))


def test_nlp_pipe_with_two_processes(nlp: spacy.Language, docs: List[Doc], tmp_path: pathlib.Path) -> None:
    nlp.to_disk(tmp_path / "pipeline")
    script = textwrap.dedent(
        f"""
        import numpy, spacy
        from thinc_trf_layers.spacy import restore_vectors
        nlp = spacy.load({str(tmp_path / "pipeline")!r})
        docs = list(nlp.pipe({TEXTS!r}, n_process=2, batch_size=2))
        # spaCy's workers send Docs back through Doc.to_bytes: the token vectors (doc.tensor)
        # come back as they are, the hooks do not (spaCy's warning W109)
        numpy.save({str(tmp_path / "tokens.npy")!r}, numpy.stack([t.vector for t in docs[3]]))
        restore_vectors(docs)
        print([round(float(d.similarity(d[0:2])), 5) for d in docs[:4]])
        numpy.save({str(tmp_path / "vectors.npy")!r}, numpy.stack([d.vector for d in docs]))
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_allclose(numpy.load(tmp_path / "tokens.npy"), docs[3].tensor, rtol=1e-5, atol=1e-6)
    assert_allclose(numpy.load(tmp_path / "vectors.npy"), numpy.stack([d.vector for d in docs]), rtol=1e-5, atol=1e-6)
    want = [round(float(d.similarity(d[0:2])), 5) for d in docs[:4]]
    assert done.stdout.strip() == str(want)


def test_added_by_name_after_a_plain_install(tmp_path: pathlib.Path) -> None:
    """The spacy_factories entry point: no import of thinc_trf_layers, no --code."""
    script = textwrap.dedent(
        f"""
        import spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("transformer", config={{"model": {{"@architectures": "spacy-transformers.TransformerModel.v3",
                                                        "name": {MODEL_PATH!r}}}}})
        nlp.add_pipe("trf_vectors")
        nlp.initialize()
        print(nlp("Hello there.").vector.shape)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # run outside the checkout: the installed package's metadata, as a user has it
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "(384,)"
