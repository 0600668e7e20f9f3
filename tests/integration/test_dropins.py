"""MixedLayersListener.v1 and TransformerModel.v1 where the peers' architectures were,
on the offline all-MiniLM-L6-v2 (the peers' own tests: test_peer_suites.py).

- Thinc's ``reduce_mean.v1`` as the pooling and no mix: spaCy's initialize (on Docs no
  transformer has run on) sizes the tagger and spaCy's TextCatEnsemble for the
  transformer's width, and they train.
- A Doc no transformer ran on gets zeros of the width the mix gives.
- spacy-curated-transformers' ``weighting`` block is refused with what to write instead.
- spacy-curated-transformers' ``weighting`` block is refused with what to write instead.
- ``nlp.replace_listeners`` behind TransformerModel.v1 (path ``model.tok2vec``) and behind
  spacy-transformers' TransformerModel.v3 (path ``model.tok2vec.transformer``): the same
  predictions before and after, it trains, the saved pipeline loads and predicts the same.
"""
from pathlib import Path
from typing import Any, List

import numpy
import pytest
import spacy
from spacy.training import Example
from thinc.api import fix_random_seed

import thinc_trf_layers  # noqa: F401  (registers our layers and architectures)

from pipelines import CURATED_WIDTH, build, st_transformer

V1 = "thinc_trf_layers.TransformerModel.v1"
V3 = "spacy-transformers.TransformerModel.v3"
TAGS = [("I like green eggs", ["N", "V", "J", "N"]), ("Eat blue ham", ["V", "J", "N"]), ("", [])]


def tagger_pipeline(architecture: str, listener: str) -> str:
    trf = st_transformer(architecture=architecture, hidden_states=True, use_fast=True, window=32, stride=24)
    return f"""
[nlp]
lang = "en"
pipeline = ["transformer","tagger"]

[components]
{trf}

[components.tagger]
factory = "tagger"

[components.tagger.model]
@architectures = "spacy.Tagger.v2"
nO = null

[components.tagger.model.tok2vec]
@architectures = "thinc_trf_layers.MixedLayersListener.v1"
{listener}
"""


MEAN = '\n[components.tagger.model.tok2vec.pooling]\n@layers = "reduce_mean.v1"\n'
MIX = '\n[components.tagger.model.tok2vec.mix]\n@layers = "thinc_trf_layers.concat_last.v1"\nk = 2\n'


def tagged(architecture: str, listener: str) -> Any:
    fix_random_seed(0)
    nlp = build(tagger_pipeline(architecture, listener))
    examples = [Example.from_dict(nlp.make_doc(t), {"tags": tags}) for t, tags in TAGS]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    return nlp, examples


def test_thincs_reduce_mean_without_a_mix_sizes_the_tagger_for_the_transformer() -> None:
    nlp, _ = tagged(V3, "grad_factor = 1.0" + MEAN)
    softmax = nlp.get_pipe("tagger").model.layers[-1]
    assert softmax.get_dim("nI") == CURATED_WIDTH
    assert [t.tag_ for t in nlp("I like green eggs")] == ["N", "V", "J", "N"]


def test_textcat_ensemble_initializes_on_the_listener() -> None:
    text = tagger_pipeline(V3, "grad_factor = 1.0" + MEAN.replace("tagger", "textcat")).replace(
        'pipeline = ["transformer","tagger"]', 'pipeline = ["transformer","textcat"]'
    ).replace('factory = "tagger"', 'factory = "textcat"').replace('"spacy.Tagger.v2"\nnO = null', '"spacy.TextCatEnsemble.v2"\nnO = null')
    text = text.replace("components.tagger", "components.textcat") + '\n[components.textcat.model.linear_model]\n@architectures = "spacy.TextCatBOW.v3"\nexclusive_classes = true\nngram_size = 1\nno_output_layer = false\n'
    fix_random_seed(0)
    nlp = build(text)
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": {"A": float(i % 2), "B": float(1 - i % 2)}}) for i, (t, _) in enumerate(TAGS[:2])]
    optimizer = nlp.initialize(lambda: examples)
    losses: dict = {}
    nlp.update(examples, sgd=optimizer, losses=losses)
    assert numpy.isfinite(losses["textcat"]) and set(nlp("Eat blue ham").cats) == {"A", "B"}


def test_a_doc_no_transformer_ran_on_gets_zeros_of_the_mixs_width() -> None:
    nlp, _ = tagged(V1, "grad_factor = 1.0" + MIX)
    listener = nlp.get_pipe("tagger").model.get_ref("tok2vec")
    Y = listener.predict([nlp.make_doc("Never seen by the transformer")])[0]
    assert Y.shape == (5, 2 * CURATED_WIDTH) and not Y.any()
    empty = listener.predict([nlp.make_doc(""), nlp.make_doc("")])
    assert [e.shape for e in empty] == [(0, 2 * CURATED_WIDTH)] * 2  # no rows to take the width from


def outputs(nlp: Any, texts: List[str]) -> List[Any]:
    docs = list(nlp.pipe(texts))
    return [([t.tag_ for t in doc], nlp.get_pipe("tagger").model.get_ref("tok2vec").predict([doc])[0]) for doc in docs]


@pytest.mark.parametrize(
    "architecture, listener, path",
    [(V1, "grad_factor = 1.0" + MIX, "model.tok2vec"), (V3, "grad_factor = 1.0", "model.tok2vec.transformer")],
)
def test_replace_listeners_then_the_saved_pipeline_predicts_the_same(architecture: str, listener: str, path: str, tmp_path: Path) -> None:
    nlp, examples = tagged(architecture, listener)
    texts = ["I like green eggs", "Eat blue ham and green eggs"]
    before = outputs(nlp, texts)
    nlp.replace_listeners("transformer", "tagger", [path])
    block = nlp.config["components"]["tagger"]["model"]["tok2vec"]
    assert block["@architectures"] == "thinc_trf_layers.MixedLayersListener.v1"
    assert block["transformer"]["@architectures"] == architecture
    assert nlp.get_pipe("transformer").listeners == []
    for (tags, Y), (tags2, Y2) in zip(before, outputs(nlp, texts)):
        assert tags == tags2
        numpy.testing.assert_allclose(Y2, Y, rtol=1e-4, atol=1e-5)
    optimizer = nlp.resume_training()
    for _ in range(2):
        losses: dict = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        assert losses["tagger"] > 0.0
    trained = outputs(nlp, texts)
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    for (tags, Y), (tags2, Y2) in zip(trained, outputs(loaded, texts)):
        assert tags == tags2
        numpy.testing.assert_allclose(Y2, Y, rtol=1e-4, atol=1e-5)


def test_curateds_weighting_block_says_to_write_a_mix() -> None:
    """ScalarWeightingListener.v1 with only its name changed: the one argument that is
    not ours is refused with what to write instead."""
    from pipelines import curated_transformer

    text = f"""
[nlp]
lang = "en"
pipeline = ["transformer","tagger"]

[components]
{curated_transformer(all_layer_outputs=True)}

[components.tagger]
factory = "tagger"

[components.tagger.model]
@architectures = "spacy.Tagger.v2"
nO = null

[components.tagger.model.tok2vec]
@architectures = "thinc_trf_layers.MixedLayersListener.v1"
width = ${{components.transformer.model.hidden_width}}
pooling = {{"@layers":"reduce_mean.v1"}}

[components.tagger.model.tok2vec.weighting]
@architectures = "spacy-curated-transformers.ScalarWeight.v1"
num_layers = ${{components.transformer.model.num_hidden_layers}}
"""
    with pytest.raises(ValueError, match=r"MixedLayersListener\.v1: weighting is an argument of spacy-curated-transformers' ScalarWeightingListener\.v1.*thinc_trf_layers\.scalar_mix\.v1"):
        build(text)
