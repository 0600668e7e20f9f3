"""embed_texts on real pipelines with the offline all-MiniLM-L6-v2: the vectors of
``[nlp(text).vector for text in texts]`` in the input's order, from lists, generators and
NumPy arrays of strings, empty strings inside a batch (where spacy-transformers' own
``nlp.pipe`` fails), a bounded read-ahead, empty input, and its errors. Its speed against
sentence-transformers is measured by ``python -m benchmarks corpus``."""
from typing import Any, Iterator, List

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose

from pipelines import CURATED_INITIALIZE, build, curated_transformer, spacy_transformers_nlp  # noqa: E402
from thinc_trf_layers import LayerInputError
from thinc_trf_layers.spacy import embed, embed_texts

STRIDED = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 24, "stride": 16}
TEXTS = [
    "A man is eating food.",
    "",
    "The girl is carrying a baby. It is late at night, and the city is quiet; the trains still run every ten "
    "minutes, and tomorrow she will take one to the office before the shops open.",  # three strided spans
    "   ",
    "Unbelievably, the tokenizer splits this word.",
    "A man is eating food.",
    "Hi",
    "",
]


@pytest.fixture(scope="module")
def nlp() -> spacy.Language:
    return spacy_transformers_nlp(STRIDED, then=["sentencizer", "trf_vectors"])


def one_by_one(nlp: spacy.Language, texts: List[str]) -> Any:
    return numpy.stack([nlp(text).vector for text in texts])


def test_the_vectors_of_each_text_in_order(nlp: spacy.Language) -> None:
    want = one_by_one(nlp, TEXTS)
    for texts in (TEXTS, iter(TEXTS), (t for t in TEXTS), numpy.asarray(TEXTS), numpy.asarray(TEXTS, dtype=object)):
        got = embed_texts(nlp, texts, batch_size=3)
        assert got.shape == (len(TEXTS), 384) and got.dtype == numpy.float32
        assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # (a batch and a Doc alone differ in the last bits)
    assert not got[1].any() and not got[3].any()


def test_a_later_component_does_not_run_and_vectors_only_is_the_same(nlp: spacy.Language) -> None:
    other = spacy_transformers_nlp(STRIDED, then=["sentencizer"])
    other.add_pipe("trf_vectors", config={"vectors_only": True})
    other.add_pipe("merge_noun_chunks")  # needs a parser: it would fail if it ran
    assert_allclose(embed_texts(other, TEXTS), one_by_one(nlp, TEXTS), rtol=1e-5, atol=1e-5)


def test_an_empty_string_inside_a_batch() -> None:
    """spacy-transformers' alignment fails on a Doc without tokens in a batch of one Doc
    per span (doc_spans, fast tokenizer); embed_texts runs such a Doc alone."""
    nlp = spacy_transformers_nlp({"@span_getters": "spacy-transformers.doc_spans.v1"}, then=["trf_vectors"])
    texts = ["Hello there.", "", "Another one here."]
    with pytest.raises(IndexError, match="E1002"):
        list(nlp.pipe(texts))
    assert_allclose(embed_texts(nlp, texts), one_by_one(nlp, texts), rtol=1e-5, atol=1e-5)


def test_a_curated_pipeline() -> None:
    config = f'[nlp]\nlang = "en"\npipeline = ["transformer","trf_vectors"]\n\n[components]\n{curated_transformer()}\n'
    nlp = build(config + '\n[components.trf_vectors]\nfactory = "trf_vectors"\n' + CURATED_INITIALIZE)
    nlp.initialize()
    assert_allclose(embed_texts(nlp, TEXTS, batch_size=2), one_by_one(nlp, TEXTS), rtol=1e-5, atol=1e-5)
    assert embed_texts(nlp, []).shape == (0, 384)


def test_empty_input_on_a_fresh_and_a_loaded_pipeline(nlp: spacy.Language, tmp_path: Any) -> None:
    fresh = spacy_transformers_nlp(STRIDED, then=["trf_vectors"])
    nlp.to_disk(tmp_path / "pipeline")
    for pipeline in (fresh, spacy.load(tmp_path / "pipeline")):
        for texts in ([], iter(()), numpy.asarray([], dtype=str)):
            got = embed_texts(pipeline, texts)
            assert got.shape == (0, 384) and got.dtype == numpy.float32


def test_reads_a_window_of_texts_at_a_time(nlp: spacy.Language, monkeypatch: Any) -> None:
    """A stream of texts is read WINDOW texts at a time: no text is read before every
    text of the windows before it went through the pipeline."""
    monkeypatch.setattr(embed, "WINDOW", 3)
    texts = [f"Text number {i} is here." for i in range(10)]
    read: List[int] = []
    seen: List[int] = []

    def stream() -> Iterator[str]:
        for i, text in enumerate(texts):
            assert set(range(3 * (i // 3))) <= set(seen), (i, seen)
            read.append(i)
            yield text

    @spacy.Language.component("test_embed_probe")
    def probe(doc: Any) -> Any:
        seen.append(texts.index(doc.text))
        return doc

    nlp.add_pipe("test_embed_probe", before="trf_vectors")
    try:
        got = embed_texts(nlp, stream(), batch_size=2)
    finally:
        nlp.remove_pipe("test_embed_probe")
    assert read == list(range(10)) and sorted(seen) == list(range(10))
    assert_allclose(got, one_by_one(nlp, texts), rtol=1e-5, atol=1e-5)


def test_errors(nlp: spacy.Language) -> None:
    with pytest.raises(LayerInputError, match=r"embed_texts: text 1 is a int \(3\); expected a str"):
        embed_texts(nlp, ["a", 3])  # type: ignore[list-item]
    with pytest.raises(LayerInputError, match=r"embed_texts: text 0 is a bytes \(b'abc'\); expected a str.*decode"):
        embed_texts(nlp, [b"abc"])  # type: ignore[list-item]
    with pytest.raises(LayerInputError, match=r"embed_texts: text 2 is a NoneType \(None\)"):
        embed_texts(nlp, iter(["a", "b", None]))  # type: ignore[list-item]
    with pytest.raises(LayerInputError, match=r"embed_texts: expected batch_size to be an int >= 1, got 0"):
        embed_texts(nlp, ["a"], batch_size=0)
    bare = spacy.blank("en")
    bare.add_pipe("sentencizer")
    with pytest.raises(LayerInputError, match=r"embed_texts: the pipeline \['sentencizer'\] has no trf_vectors component"):
        embed_texts(bare, ["a"])
    bare.add_pipe("trf_vectors")  # and no transformer before it: no width to give an empty input
    with pytest.raises(LayerInputError, match=r"trf_vectors \(trf_vectors\): no Doc had wordpieces, and the width of the transformer before it is not known \(transformer components before it: none\)"):
        embed_texts(bare, [])
    assert nlp.get_pipe("trf_vectors").model_width() == 384  # read from the transformer's model


def test_no_progress_bar_where_stderr_is_not_a_terminal(nlp: spacy.Language, capsys: Any) -> None:
    embed_texts(nlp, TEXTS[:2])
    assert capsys.readouterr().err == ""
