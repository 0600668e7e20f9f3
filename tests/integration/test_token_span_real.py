"""token_pool and span_pool on the real all-MiniLM-L6-v2 output of spacy-transformers and
spacy-curated-transformers pipelines: values and gradients against spacy-transformers'
own per-token pooling, and spans against the mean of their tokens' wordpieces."""
from typing import Any, List

import numpy
import pytest
from numpy.testing import assert_allclose
from spacy_transformers.layers.trfs2arrays import trfs2arrays
from thinc.types import Ragged

from pipelines import CURATED_INITIALIZE, build, curated_transformer, spacy_transformers_nlp
from thinc_trf_layers import reduce_mean, scalar_mix, span_pool, token_pool

TEXTS = [
    "Transformers split rare words like antidisestablishmentarianism into wordpieces.",
    "Two  spaces and a\nnewline make whitespace tokens.",
    " ".join(["A long text that the strided span getter splits into overlapping spans."] * 6),
    "",
]


@pytest.fixture(scope="module")
def st_nlp() -> Any:
    # small windows: the long text is split into several overlapping spans
    get_spans = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 24, "stride": 16}
    return spacy_transformers_nlp(get_spans, transformer_config={"output_hidden_states": True})


@pytest.fixture(scope="module")
def st_datas(st_nlp: Any) -> List[Any]:
    return [doc._.trf_data for doc in st_nlp.pipe(TEXTS)]


def test_token_pool_equals_spacy_transformers_own_pooling_values_and_gradients(st_datas: List[Any]) -> None:
    ours = token_pool(reduce_mean())
    theirs = trfs2arrays(reduce_mean(), 1.0)
    ours.initialize()
    theirs.initialize()
    Y_ours, bp_ours = ours(st_datas, is_train=True)
    Y_theirs, bp_theirs = theirs(st_datas, is_train=True)
    assert [y.shape[0] for y in Y_ours] == [len(td.align.lengths) for td in st_datas]
    for a, b in zip(Y_ours, Y_theirs):
        assert_allclose(a, b.reshape(a.shape), rtol=1e-5, atol=1e-6)
    rng = numpy.random.default_rng(0)
    dYs = [rng.normal(size=y.shape).astype("f") for y in Y_ours]
    d_ours = bp_ours(dYs)
    d_theirs = bp_theirs([d.reshape(b.shape) for d, b in zip(dYs, Y_theirs)])
    # spacy-transformers' own listener gives an empty Doc no gradient entry; so do we
    assert len(d_ours) == len(d_theirs)
    for a, b in zip(d_ours, d_theirs):
        assert_allclose(a.tensors[0], b.tensors[0], rtol=1e-5, atol=1e-7)


def test_whitespace_tokens_get_zeros(st_nlp: Any, st_datas: List[Any]) -> None:
    doc = st_nlp.make_doc(TEXTS[1])
    spaces = [t.i for t in doc if t.is_space]
    assert spaces, [t.text for t in doc]
    model = token_pool(reduce_mean(), mix=scalar_mix())
    model.initialize()
    Y = model.predict(st_datas)[1]
    assert not Y[spaces].any()
    assert Y[0].any()


def test_span_pool_is_the_mean_of_its_tokens_wordpieces_each_once(st_nlp: Any, st_datas: List[Any]) -> None:
    docs = [st_nlp.make_doc(t) for t in TEXTS]
    spans = numpy.asarray([[0, len(docs[0])], [2, 5], [0, 0], [0, 4], [10, 30]], dtype="i")
    R = Ragged(spans, numpy.asarray([3, 1, 1, 0], dtype="i"))
    model = span_pool(reduce_mean())
    model.initialize()
    Y = model.predict((st_datas, R))
    owner = [0, 0, 0, 1, 2]
    for row, (start, end), i in zip(Y, spans, owner):
        td = st_datas[i]
        T = td.tensors[0].reshape(-1, td.tensors[0].shape[2])
        offsets = numpy.concatenate([[0], numpy.cumsum(td.align.lengths)])
        positions = sorted(set(td.align.dataXd.reshape(-1)[offsets[start] : offsets[end]].tolist()))
        want = T[positions].mean(0) if positions else numpy.zeros(T.shape[1])
        assert_allclose(row, want, rtol=1e-5, atol=1e-6)
    # the whole first Doc: every wordpiece aligned to a token, so no [CLS] / [SEP]
    assert not numpy.allclose(Y[0], st_datas[0].tensors[0][0, : st_datas[0].wordpieces.lengths[0]].mean(0), atol=1e-4)


def test_curated_token_pool_reads_its_rows_token_after_token() -> None:
    nlp = build(
        "[nlp]\nlang = \"en\"\npipeline = [\"transformer\"]\n\n[components]\n"
        + curated_transformer(all_layer_outputs=True, window=24, stride=16)
        + CURATED_INITIALIZE
    )
    nlp.initialize()
    docs = list(nlp.pipe(TEXTS))
    datas = [doc._.trf_data for doc in docs]
    model = token_pool(reduce_mean())
    model.initialize()
    Ys = model.predict(datas)
    for doc, data, Y in zip(docs, datas, Ys):
        last = data.all_outputs[-1]
        assert Y.shape[0] == len(doc) == len(last.lengths)
        rows = last.dataXd
        offsets = numpy.concatenate([[0], numpy.cumsum(last.lengths)])
        for t in range(len(doc)):
            piece = rows[offsets[t] : offsets[t + 1]]
            assert_allclose(Y[t], piece.mean(0) if len(piece) else 0.0, rtol=1e-5, atol=1e-6)
    mixed = token_pool(reduce_mean(), mix=scalar_mix())
    mixed.initialize(X=datas)
    assert mixed.layers[0].layers[0].attrs["n_layers"] == 7
    Y, backprop = mixed(datas, is_train=True)
    grads = backprop([numpy.ones_like(y) for y in Y])
    assert [len(g.all_outputs) for g in grads] == [7] * len(datas)
    assert grads[0].all_outputs[0].dataXd.any()  # the embeddings get a gradient through the mix
