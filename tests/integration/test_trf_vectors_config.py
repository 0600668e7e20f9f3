"""trf_vectors' settings and edge cases on the offline all-MiniLM-L6-v2: the ``pooling``
block (from add_pipe and from config.cfg, checked when the component is built), one width
for Doc, Span and Token vectors, empty Docs first (fresh, loaded, curated), and NaN in
similarity."""
import pathlib
from typing import Any, Dict

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.util import load_model_from_config
from thinc.api import Config

from pipelines import CURATED_INITIALIZE, MODEL_PATH, build, curated_transformer, spacy_transformers_nlp  # noqa: E402
from thinc_trf_layers import LayerInputError

STRIDED = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}
TEXT = "Unbelievably, the tokenizer splits this word."
KEY = "thinc_trf_layers.trf_vectors"


@pytest.fixture(scope="module")
def nlp() -> spacy.Language:
    return spacy_transformers_nlp(STRIDED)


def real_rows(doc: Any) -> Any:
    td = doc._.trf_data
    return td.tensors[0][0, : td.wordpieces.lengths[0]]


@pytest.mark.parametrize(
    "pooling,reference",
    [
        ({"@layers": "thinc_trf_layers.reduce_first.v1"}, lambda rows: rows[0]),
        ({"@layers": "thinc_trf_layers.reduce_max.v1"}, lambda rows: rows.max(0)),
        ({"@layers": "reduce_max.v1"}, lambda rows: rows.max(0)),  # Thinc's own
        ({"@layers": "thinc_trf_layers.reduce_gem.v1", "p": 2.0}, lambda rows: (numpy.maximum(rows, 1e-6) ** 2).mean(0) ** 0.5),
    ],
)
def test_pooling_is_a_block(nlp: spacy.Language, pooling: Dict[str, Any], reference: Any) -> None:
    vectors = nlp.add_pipe("trf_vectors", name="vectors", config={"pooling": pooling})
    try:
        docs = list(vectors.pipe(nlp.pipe(["", TEXT, "   "])))  # Thinc's reduce_max with empty Docs
        doc = docs[1]
        assert_allclose(doc.vector, reference(real_rows(doc)), rtol=1e-5, atol=1e-6)
        assert doc.vector.shape == doc[0:3].vector.shape == doc[0].vector.shape == (384,)
        assert -1.0 <= doc.similarity(doc[0]) <= 1.0 and -1.0 <= doc[0:3].similarity(doc[2]) <= 1.0
        assert not docs[0].vector.any() and docs[0].vector.shape == (384,)
        assert pooling.items() <= vectors.pooling_config().items()  # spaCy fills in the defaults
    finally:
        nlp.remove_pipe("vectors")


def test_pooling_block_in_config_cfg_and_after_loading(tmp_path: pathlib.Path) -> None:
    config = f"""
[nlp]
lang = "en"
pipeline = ["transformer", "trf_vectors"]

[components]

[components.transformer]
factory = "transformer"

[components.transformer.model]
@architectures = "spacy-transformers.TransformerModel.v3"
name = "{MODEL_PATH}"

[components.trf_vectors]
factory = "trf_vectors"

[components.trf_vectors.pooling]
@layers = "thinc_trf_layers.reduce_gem.v1"
p = 3.0
"""
    nlp = load_model_from_config(Config().from_str(config), auto_fill=True, validate=True)
    nlp.initialize()
    doc = nlp(TEXT)
    assert_allclose(doc.vector, (numpy.maximum(real_rows(doc), 1e-6) ** 3).mean(0) ** (1 / 3), rtol=1e-4, atol=1e-6)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("trf_vectors").pooling_config()["p"] == 3.0
    assert_allclose(loaded(TEXT).vector, doc.vector, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "pooling,message",
    [
        ("thinc_trf_layers.reduce_mean.v1", r"pooling is a config block, got the string .*\[components.trf_vectors.pooling\]"),
        ({"@layers": "thinc_trf_layers.attention_pool.v1"}, r"pooling: attention_pool has parameters \(attention_pool.q\) and needs training"),
        ({"@layers": "thinc_trf_layers.reduce_gem.v1", "learn_p": True}, r"pooling: reduce_gem\(p=3, learned\) has parameters .* needs training"),
        ({"@layers": "thinc_trf_layers.reduce_mean_max.v1"}, r"pooling: reduce_mean_max maps 2 rows of wordpieces of width 8 to \(2, 16\); expected one float vector of the same width"),
        ({"@layers": "thinc_trf_layers.trf2tensor.v1"}, r"pooling: trf2tensor\(0\) fails on a Ragged of 2 rows of width 8 .*expected a Model\[Ragged, Floats2d\]"),
    ],
)
def test_pooling_is_checked_when_the_component_is_built(pooling: Any, message: str) -> None:
    nlp = spacy.blank("en")
    with pytest.raises(LayerInputError, match=r"^trf_vectors \(trf_vectors\): " + message):
        nlp.add_pipe("trf_vectors", config={"pooling": pooling})
    assert "trf_vectors" not in nlp.pipe_names


def test_empty_docs_first_get_zeros_of_the_model_width(tmp_path: pathlib.Path) -> None:
    nlp = spacy_transformers_nlp(STRIDED, then=["trf_vectors"])
    for doc in (nlp(""), *nlp.pipe(["", ""])):
        assert doc.vector.shape == (384,) and not doc.vector.any() and doc[:].vector.shape == (384,)
    assert nlp(TEXT).vector.any()
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    first = loaded("")
    assert first.vector.shape == (384,) and not first.vector.any()
    assert first.similarity(loaded(TEXT)) == 0.0


def test_empty_doc_first_in_a_curated_pipeline() -> None:
    config = f'[nlp]\nlang = "en"\npipeline = ["transformer","trf_vectors"]\n\n[components]\n{curated_transformer()}\n'
    config += '\n[components.trf_vectors]\nfactory = "trf_vectors"\n'
    nlp = build(config + CURATED_INITIALIZE)
    nlp.initialize()
    for doc in (nlp(""), nlp("  ")):
        assert doc.vector.shape == (384,) and not doc.vector.any()
    assert nlp(TEXT).vector.shape == (384,)


def test_similarity_with_nan_is_nan(nlp: spacy.Language) -> None:
    nlp.add_pipe("trf_vectors", name="vectors")
    try:
        doc, other = nlp(TEXT), nlp("A man is eating food.")
        doc.user_data[KEY]["vector"][3] = numpy.nan
        doc.tensor[1, 0] = numpy.nan
        assert numpy.isnan(doc.similarity(other)) and numpy.isnan(other.similarity(doc))
        assert numpy.isnan(doc[1].similarity(other[1]))
        assert not numpy.isnan(doc[2].similarity(other[1]))
        assert other.similarity(nlp("")) == 0.0  # a zero vector: 0, as before
        with pytest.raises(LayerInputError, match=r"trf_vectors: similarity of a vector of shape \(384,\) with one of shape \(0,\)"):
            doc.similarity(spacy.blank("en")("no vectors here"))
    finally:
        nlp.remove_pipe("vectors")
