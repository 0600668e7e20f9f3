"""thinc_trf_layers.MixedLayersListener.v1 as the tok2vec of spaCy's own components, on
the offline all-MiniLM-L6-v2.

- The shipped configs thinc_trf_layers/configs/{ner,spancat,tagger}_listener.cfg trained with
  ``python -m spacy train`` (as docs/spacy.md gives the command, the local model folder
  passed with ``--components.transformer.model.name``) on a small corpus of people and
  cities that the module writes as ``.spacy`` files; some of its Docs have whitespace
  tokens (double spaces, a newline). The NER, the spancat (with our reduce_mean_max as
  spaCy's span reducer) and the tagger learn, the saved pipelines load, the mix in them
  has the transformer's 7 layers.
- A trained pipeline saved with to_disk / to_bytes and read back gives the same entities
  and the same listener outputs.
- Whitespace tokens get zero vectors, and reduce_max pooling trains through them.
- spacy-curated-transformers: an NER on the listener learns with the transformer frozen
  and annotating; with grad_factor = 1.0 the gradient of the mix reaches the transformer's
  lower layers.
- grad_factor = 1.0 over spacy-transformers' TransformerModel.v3 is refused at the first
  update, before any weight changes; bad arguments are refused when the config is built.
"""
import os
import pathlib
import random
import re
import subprocess
import sys
from typing import Any, Dict, List, Sequence, Tuple

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import load_model_from_config, registry
from thinc.api import Adam, Config, fix_random_seed

import thinc_trf_layers  # noqa: F401  (registers our layers and architectures)
from thinc_trf_layers import LayerInputError

from pipelines import CURATED_INITIALIZE, CURATED_WIDTH, MODEL_PATH, build, curated_transformer, st_transformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "thinc_trf_layers" / "configs"
NER_CFG = CONFIGS / "ner_listener.cfg"
SPANCAT_CFG = CONFIGS / "spancat_listener.cfg"
TAGGER_CFG = CONFIGS / "tagger_listener.cfg"
ARCHITECTURE = "MixedLayersListener.v1"
#: all-MiniLM-L6-v2: the embeddings and 6 transformer layers
N_HIDDEN = 7

# --- the corpus: people and cities --------------------------------------------------------

PEOPLE = ["Anna", "Bruno", "Carla", "Dmitri", "Emma", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
CITIES = ["Paris", "Rome", "Berlin", "Madrid", "Vienna", "Lisbon", "New York", "San Diego", "Buenos Aires"]
#: {p}, {q}: people; {c}, {d}: cities. Two templates make whitespace tokens.
TEMPLATES = [
    "{p} lives in {c}.",
    "{p} flew to {c} on Monday.",
    "In {c}, {p} met {q}.",
    "{p} and {q} visited {c} last year.",
    "We saw {p} near the station in {c}.",
    "{p} moved from {c} to {d}.\n",
    "Yesterday  {p} called us from {c}.",
    "The train to {c} was late, said {p}.",
]
LABELS = {"p": "PERSON", "q": "PERSON", "c": "CITY", "d": "CITY"}
#: the tagger's tags: names, punctuation, whitespace, any other word
TAGS = ("NAME", "PUNCT", "SPACE", "WORD")


def make_record(template: str, rng: random.Random) -> Tuple[str, List[Tuple[int, int, str]]]:
    """The template filled in, and the (start, end, label) character offsets of its names."""
    people, cities = rng.sample(PEOPLE, 2), rng.sample(CITIES, 2)
    values = {"p": people[0], "q": people[1], "c": cities[0], "d": cities[1]}
    text, spans, last = "", [], 0
    for match in re.finditer(r"\{(\w)\}", template):
        text += template[last : match.start()]
        value = values[match.group(1)]
        spans.append((len(text), len(text) + len(value), LABELS[match.group(1)]))
        text += value
        last = match.end()
    return text + template[last:], spans


def make_doc(nlp: Any, text: str, spans: Sequence[Tuple[int, int, str]]) -> Doc:
    """A Doc with the names as entities, as doc.spans["sc"] and as tags."""
    doc: Doc = nlp.make_doc(text)
    found = [doc.char_span(start, end, label=label) for start, end, label in spans]
    ents = [ent for ent in found if ent is not None]
    assert len(ents) == len(spans), (text, spans)
    doc.ents = ents
    doc.spans["sc"] = ents
    in_name = {i for ent in ents for i in range(ent.start, ent.end)}
    for token in doc:
        token.tag_ = (
            "NAME" if token.i in in_name else "SPACE" if token.is_space else "PUNCT" if token.is_punct else "WORD"
        )
    return doc


def make_docs(nlp: Any, n: int, seed: int) -> List[Doc]:
    rng = random.Random(seed)
    return [make_doc(nlp, *make_record(TEMPLATES[i % len(TEMPLATES)], rng)) for i in range(n)]


def write_docs(path: pathlib.Path, docs: Sequence[Doc]) -> None:
    DocBin(docs=docs, store_user_data=False).to_disk(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("people-and-cities")
    nlp = spacy.blank("en")
    write_docs(root / "train.spacy", make_docs(nlp, 40, seed=1))
    write_docs(root / "dev.spacy", make_docs(nlp, 16, seed=2))
    return root


def corpus_examples(nlp: Any, path: pathlib.Path) -> List[Example]:
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return [Example(nlp.make_doc(doc.text), doc) for doc in docs]


# --- the shipped configs, trained with spacy train ----------------------------------------

#: Overrides of every run: a few steps on the tiny corpus (the configs' own values are
#: for real data), the local model folder.
SMOKE = {
    "components.transformer.model.name": MODEL_PATH,
    "training.max_steps": "40",
    "training.eval_frequency": "10",
    "training.batcher.size": "8",
    "training.optimizer.learn_rate.warmup_steps": "1",
    "training.optimizer.learn_rate.initial_rate": "0.002",
}

#: The runs, as (id, config, extra overrides). The shipped configs keep the transformer
#: frozen for the listening component (grad_factor = 0.0): spacy-transformers'
#: TransformerModel.v3 backpropagates last_hidden_state only (see
#: test_v3_transformer_with_grad_factor_1_refuses_the_first_update). "ner_trf_v1": the
#: same NER with grad_factor = 1.0 behind thinc_trf_layers.TransformerModel.v1, which
#: trains the transformer through the mix, into every hidden layer.
RUNS: List[Tuple[str, pathlib.Path, Dict[str, str]]] = [
    ("ner", NER_CFG, {}),
    (
        "ner_trf_v1",
        NER_CFG,
        {
            "components.transformer.model.@architectures": "thinc_trf_layers.TransformerModel.v1",
            "components.ner.model.tok2vec.grad_factor": "1.0",
        },
    ),
    ("spancat", SPANCAT_CFG, {}),
    ("tagger", TAGGER_CFG, {}),
]
NER_RUNS = [run_id for run_id, config, _ in RUNS if config == NER_CFG]


def spacy_env() -> Dict[str, str]:
    return dict(
        os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
    )


@pytest.fixture(scope="module")
def trained(corpus: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Tuple[pathlib.Path, str]]:
    """``python -m spacy train`` on every run, side by side (one thread each); per run the
    output folder and the training log."""
    started = {}
    for run_id, config, extra in RUNS:
        out = tmp_path_factory.mktemp(run_id) / "out"
        overrides = [arg for key, value in {**SMOKE, **extra}.items() for arg in (f"--{key}", value)]
        command = [
            sys.executable, "-m", "spacy", "train", str(config), "--output", str(out),
            "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy"), *overrides,
        ]
        proc = subprocess.Popen(
            command, cwd=out.parent, env=spacy_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started[run_id] = (proc, out)
    results = {}
    for run_id, (proc, out) in started.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"spacy train {run_id} failed:\n{stdout[-3000:]}\n{stderr[-5000:]}"
        results[run_id] = (out, stdout)
    return results


def trained_pipeline(trained: Dict[str, Tuple[pathlib.Path, str]], run_id: str, component: str) -> Any:
    """The run's model-best, after checking that the component's loss fell by half: the
    log's rows are step 0, then every 10 steps; the first ten steps against the last ten."""
    out, log = trained[run_id]
    losses = logged_losses(log, component)
    assert len(losses) >= 4 and losses[-1] < 0.5 * losses[1], losses
    return spacy.load(out / "model-best")


def logged_losses(log: str, component: str) -> List[float]:
    """The component's loss in each row of spaCy's training table (the sum since the row
    before; the first row is the first step)."""
    lines = log.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["E", "#"])
    # "LOSS NER" is one column: join the header's two-word names
    names = re.findall(r"LOSS \S+|\S+", header)
    column = names.index(next(n for n in names if n.startswith("LOSS") and component.upper()[:5] in n))
    rows = [line.split() for line in lines if re.match(r"^\s*\d+\s+\d+\s", line)]
    return [float(row[column]) for row in rows]


def listener_of(nlp: Any, component: str) -> Any:
    """The component's MixedLayersListener.v1 model."""
    found = [
        node for node in nlp.get_pipe(component).model.walk() if node.attrs.get("architecture") == ARCHITECTURE
    ]
    assert len(found) == 1, [node.name for node in nlp.get_pipe(component).model.walk()]
    return found[0]


def mix_of(nlp: Any, component: str) -> Any:
    return next(node for node in listener_of(nlp, component).walk() if node.name.startswith("scalar_mix"))


@pytest.mark.slow
@pytest.mark.parametrize("run_id", NER_RUNS)
def test_ner_listener_config_trains_with_spacy_train(
    run_id: str, trained: Dict[str, Tuple[pathlib.Path, str]], corpus: pathlib.Path
) -> None:
    nlp = trained_pipeline(trained, run_id, "ner")
    assert listener_of(nlp, "ner").attrs["architecture"] == ARCHITECTURE
    mix = mix_of(nlp, "ner")
    assert mix.attrs["n_layers"] == N_HIDDEN
    assert mix.get_param("weights").shape == (N_HIDDEN,)
    # The transformer's own weights are trained through the mix behind v1 only. The
    # optimizer's weight decay shrinks them in every run (a zero gradient included):
    # what is left after taking out a uniform scaling is what the gradient did.
    from transformers import AutoModel

    pretrained = AutoModel.from_pretrained(MODEL_PATH).embeddings.word_embeddings.weight.detach().numpy()
    now = nlp.get_pipe("transformer").model.transformer.embeddings.word_embeddings.weight.detach().numpy()
    scaling = float((now * pretrained).sum() / (pretrained * pretrained).sum())
    moved = float(numpy.linalg.norm(now - scaling * pretrained) / numpy.linalg.norm(pretrained))
    if run_id == "ner":
        assert moved < 1e-5, moved
    else:
        assert moved > 1e-4, moved
    # the mix learned (an untrained one has all weights 0)
    assert numpy.abs(mix.get_param("weights")).max() > 0
    scores = nlp.evaluate(corpus_examples(nlp, corpus / "train.spacy"))
    assert scores["ents_f"] > 0.5, scores
    doc = nlp("Yesterday  Emma flew to Rome.\n")
    assert all(ent.label_ in ("PERSON", "CITY") for ent in doc.ents)


@pytest.mark.slow
def test_spancat_listener_config_trains_with_spacy_train(
    trained: Dict[str, Tuple[pathlib.Path, str]], corpus: pathlib.Path
) -> None:
    nlp = trained_pipeline(trained, "spancat", "spancat")
    spancat: Any = nlp.get_pipe("spancat")
    assert spancat.model.get_ref("reducer").name == "reduce_mean_max"
    width = listener_of(nlp, "spancat").get_dim("nO")
    assert width == CURATED_WIDTH  # all-MiniLM-L6-v2's width: the mix keeps it
    assert spancat.model.get_ref("scorer").layers[0].get_dim("nI") == 2 * width
    assert mix_of(nlp, "spancat").attrs["n_layers"] == N_HIDDEN
    scores = nlp.evaluate(corpus_examples(nlp, corpus / "train.spacy"))
    assert scores["spans_sc_f"] > 0.3, scores
    # suggested spans over a whitespace token (1-3 grams around "  " and "\n") are scored
    docs = list(nlp.pipe(["Yesterday  Hugo called us from Berlin.", "\n", "Ines moved to  \n Lisbon."]))
    assert all(doc.spans["sc"].attrs["scores"].size == len(doc.spans["sc"]) for doc in docs)
    scores_of = numpy.concatenate([doc.spans["sc"].attrs["scores"] for doc in docs if len(doc.spans["sc"])])
    assert numpy.isfinite(scores_of).all()


@pytest.mark.slow
def test_tagger_listener_config_trains_with_spacy_train(
    trained: Dict[str, Tuple[pathlib.Path, str]], corpus: pathlib.Path
) -> None:
    nlp = trained_pipeline(trained, "tagger", "tagger")
    assert mix_of(nlp, "tagger").attrs["n_layers"] == N_HIDDEN
    scores = nlp.evaluate(corpus_examples(nlp, corpus / "train.spacy"))
    assert scores["tag_acc"] > 0.8, scores
    assert sorted(getattr(nlp.get_pipe("tagger"), "labels")) == sorted(TAGS)


@pytest.mark.parametrize("config", [NER_CFG, SPANCAT_CFG, TAGGER_CFG], ids=lambda p: p.name)
def test_listener_configs_are_complete(config: pathlib.Path) -> None:
    """The shipped configs load as they are (validated, nothing left to fill in) and name
    our listener and a scalar mix without a layer count."""
    loaded = Config().from_disk(config, interpolate=False)
    nlp = load_model_from_config(
        Config().from_disk(config, overrides={"components.transformer.model.name": MODEL_PATH}),
        auto_fill=False, validate=True,
    )
    component = nlp.pipe_names[-1]
    tok2vec = loaded["components"][component]["model"]["tok2vec"]
    assert tok2vec["@architectures"] == f"thinc_trf_layers.{ARCHITECTURE}"
    assert tok2vec["mix"]["n_layers"] is None
    assert loaded["components"]["transformer"]["model"]["transformer_config"]["output_hidden_states"] is True
    assert listener_of(nlp, component).attrs["architecture"] == ARCHITECTURE


# --- a trained pipeline saved and read back ----------------------------------------------

ROUND_TRIP_TEXTS = [
    "Yesterday  Emma flew to Rome.",
    "Greta and Hugo visited San Diego last year.\n",
    "\n",
    "",
    "Bruno moved from Vienna to Buenos Aires. " * 30,  # longer than one strided span
]


def listener_outputs(nlp: Any, component: str, texts: Sequence[str]) -> Tuple[List[Any], List[Any]]:
    docs = list(nlp.pipe(texts))
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs], listener_of(nlp, component).predict(docs)


@pytest.mark.slow
def test_trained_ner_round_trips_through_disk_and_bytes(
    trained: Dict[str, Tuple[pathlib.Path, str]], tmp_path: pathlib.Path
) -> None:
    out, _ = trained["ner"]
    nlp = spacy.load(out / "model-best")
    ents, Ys = listener_outputs(nlp, "ner", ROUND_TRIP_TEXTS)
    assert any(ents), "the trained NER finds no entity"
    assert [Y.shape for Y in Ys] == [(len(nlp.make_doc(t)), CURATED_WIDTH) for t in ROUND_TRIP_TEXTS]
    nlp.to_disk(tmp_path / "saved")
    from_disk = spacy.load(tmp_path / "saved")
    from_bytes = load_model_from_config(nlp.config, auto_fill=False).from_bytes(nlp.to_bytes())
    for again in (from_disk, from_bytes):
        assert mix_of(again, "ner").attrs["n_layers"] == N_HIDDEN
        numpy.testing.assert_array_equal(
            mix_of(again, "ner").get_param("weights"), mix_of(nlp, "ner").get_param("weights")
        )
        ents2, Ys2 = listener_outputs(again, "ner", ROUND_TRIP_TEXTS)
        assert ents2 == ents
        for Y, Y2 in zip(Ys, Ys2):
            numpy.testing.assert_allclose(Y2, Y, rtol=1e-5, atol=1e-5)


# --- pipelines built here (spacy-transformers) -------------------------------------------


def ner_block(component: str, *, pooling: str = "reduce_mean", grad_factor: float = 0.0, listener: str = "") -> str:
    return f"""
[components.{component}]
factory = "ner"

[components.{component}.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 32
maxout_pieces = 2
use_upper = true
nO = null

[components.{component}.model.tok2vec]
@architectures = "thinc_trf_layers.MixedLayersListener.v1"
grad_factor = {grad_factor}
{listener}

[components.{component}.model.tok2vec.mix]
@layers = "thinc_trf_layers.scalar_mix.v1"

[components.{component}.model.tok2vec.pooling]
@layers = "thinc_trf_layers.{pooling}.v1"
"""


def ner_pipeline(transformer: str, **settings: Any) -> str:
    return f"""
[nlp]
lang = "en"
pipeline = ["transformer","ner"]

[components]
{transformer}
{ner_block("ner", **settings)}
"""


def st_ner(**settings: Any) -> Any:
    """spacy-transformers (every hidden layer) + an NER on the listener, not initialized."""
    fix_random_seed(0)
    return build(ner_pipeline(st_transformer(hidden_states=True, use_fast=True, window=32, stride=24), **settings))


#: Whitespace tokens: a run of spaces, a newline, a tab; none has a wordpiece.
WHITESPACE_TEXTS = [
    ("Hello   world, Anna lives in Paris.", [(15, 19, "PERSON"), (29, 34, "CITY")]),
    ("\n", []),
    ("Bruno\n\nmoved to  Rome .\t", [(0, 5, "PERSON"), (17, 21, "CITY")]),
]


def whitespace_examples(nlp: Any) -> List[Example]:
    return [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in WHITESPACE_TEXTS]


def weights(nlp: Any) -> Dict[str, Any]:
    """A copy of every weight in the pipeline: the Thinc parameters of every component
    and the transformer's PyTorch parameters."""
    found = {}
    for name, pipe in nlp.pipeline:
        for node in pipe.model.walk():
            for param in node.param_names:
                if node.has_param(param):
                    found[f"{name}/{node.id}/{node.name}/{param}"] = numpy.array(node.get_param(param), copy=True)
            for shim in node.shims:
                for key, tensor in shim._model.named_parameters():
                    found[f"{name}/{node.id}/{key}"] = tensor.detach().cpu().numpy().copy()
    return found


def test_whitespace_tokens_get_zeros_and_reduce_max_trains_through_them() -> None:
    nlp = st_ner(pooling="reduce_max")
    examples = whitespace_examples(nlp)
    assert [t.text for t in examples[0].predicted][1] == "  "
    nlp.initialize(lambda: examples)
    docs = list(nlp.pipe([text for text, _ in WHITESPACE_TEXTS]))
    Ys = listener_of(nlp, "ner").predict(docs)
    for doc, Y in zip(docs, Ys):
        assert Y.shape == (len(doc), CURATED_WIDTH)
        for token, row in zip(doc, Y):
            if token.is_space:
                assert not row.any(), f"whitespace token {token.text!r} got a non-zero vector"
            else:
                assert numpy.abs(row).sum() > 0, token.text
    # training through the whitespace tokens (Thinc's reduce_max raises on them): the
    # transformer's update hands the listener the batch and its backprop ...
    optimizer = Adam(0.005)
    before = weights(nlp)
    losses: Dict[str, float] = {}
    nlp.update(examples, sgd=optimizer, losses=losses)
    seen = [float(losses["ner"])]
    # ... then, faster, the transformer frozen and annotating (spacy train's
    # frozen_components + annotating_components): the listener reads doc._.trf_data
    for _ in range(8):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses, exclude=["transformer"], annotates=["transformer"])
        seen.append(float(losses["ner"]))
    # (the parser's first loss, before any update, is not comparable: compare from the second)
    assert numpy.isfinite(seen).all() and seen[-1] < 0.9 * seen[1], seen
    after = weights(nlp)
    changed = {key for key in before if not numpy.array_equal(before[key], after[key])}
    assert any("scalar_mix" in key for key in changed), "the mix did not learn"
    # grad_factor = 0.0: the transformer is not trained by this component
    assert not any(key.startswith("transformer/") for key in changed)


def test_v3_transformer_with_grad_factor_1_refuses_the_first_update() -> None:
    nlp = st_ner(grad_factor=1.0)
    examples = whitespace_examples(nlp)
    nlp.initialize(lambda: examples)
    assert [d.text for d in nlp.pipe(["Anna lives in Paris."])]  # prediction is fine
    before = weights(nlp)
    assert any("scalar_mix" in key for key in before)
    with pytest.raises(LayerInputError) as info:
        nlp.update(examples, sgd=nlp.create_optimizer(), losses={})
    message = str(info.value)
    assert message.startswith(f"{ARCHITECTURE} (token_pool(")
    assert "mix = scalar_mix (every hidden layer) with grad_factor = 1.0" in message
    assert "spacy-transformers' TransformerModel backpropagates into last_hidden_state only" in message
    assert "thinc_trf_layers.TransformerModel.v1" in message
    assert "grad_factor = 0.0" in message
    after = weights(nlp)
    assert before.keys() == after.keys()
    unchanged = [key for key in before if numpy.array_equal(before[key], after[key])]
    assert len(unchanged) == len(before), sorted(set(before) - set(unchanged))


NOT_A_MODEL = '\nmix = "thinc_trf_layers.scalar_mix.v1"\n'


def test_mix_that_is_not_a_model_is_refused_at_build() -> None:
    text = ner_pipeline(st_transformer(hidden_states=True)).replace(
        '[components.ner.model.tok2vec.mix]\n@layers = "thinc_trf_layers.scalar_mix.v1"\n', ""
    )
    text = text.replace("grad_factor = 0.0\n", "grad_factor = 0.0" + NOT_A_MODEL)
    # spaCy's validation of the config says it first ...
    with pytest.raises(Exception, match=r"ner\.model\.tok2vec -> mix\s+instance of Model expected"):
        build(text)
    # ... and the architecture itself when the config is not validated
    expected = rf"{re.escape(ARCHITECTURE)}: expected mix to be null or a Thinc Model.*got 'thinc_trf_layers\.scalar_mix\.v1'"
    with pytest.raises(ValueError, match=expected):
        load_model_from_config(Config().from_str(text), auto_fill=True, validate=False)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"pooling": "mean"}, r"expected pooling to be null or a Thinc Model\[Ragged, Floats2d\].*got 'mean'"),
        ({"grad_factor": float("nan")}, "expected grad_factor to be a finite float, got nan"),
        ({"grad_factor": "1"}, "expected grad_factor to be a finite float, got '1'"),
    ],
)
def test_bad_arguments_are_refused_naming_the_architecture(kwargs: Dict[str, Any], match: str) -> None:
    """The error names what the user wrote in the config, not a layer built inside it."""
    listener = registry.architectures.get(f"thinc_trf_layers.{ARCHITECTURE}")
    with pytest.raises(ValueError, match=rf"^{re.escape(ARCHITECTURE)}: {match}"):
        listener(**kwargs)


def test_pooling_given_as_the_mix_is_refused_at_initialize() -> None:
    """Types tell a pooling from a mix (mypy refuses it in Python: see the typing tests);
    from a config, the pipeline builds and initialize refuses it, before any training."""
    text = ner_pipeline(st_transformer(hidden_states=True)).replace(
        '[components.ner.model.tok2vec.mix]\n@layers = "thinc_trf_layers.scalar_mix.v1"\n',
        '[components.ner.model.tok2vec.mix]\n@layers = "thinc_trf_layers.reduce_max.v1"\n',
    )
    assert "reduce_max.v1" in text
    nlp = build(text)
    examples = whitespace_examples(nlp)
    with pytest.raises(ValueError, match=rf"{re.escape(ARCHITECTURE)}: the mix 'reduce_max' has no nI dim.*is a pooling in its place\?"):
        nlp.initialize(lambda: examples)


def test_curated_without_width_is_refused_at_initialize() -> None:
    """A spacy-curated-transformers pipe does not tell its listeners its width."""
    nlp = build(CURATED_NER.replace(f"\nwidth = {CURATED_WIDTH}\n", "\n"))
    with pytest.raises(ValueError, match=rf"{re.escape(ARCHITECTURE)}: the transformer's width is unknown at initialize.*width = \$\{{components.transformer.model.hidden_width\}}"):
        nlp.initialize(lambda: whitespace_examples(nlp))


def test_bad_flavour_and_width_are_refused_at_build() -> None:
    with pytest.raises(ValueError, match=rf"{re.escape(ARCHITECTURE)}: unknown flavour 'curated'"):
        build(ner_pipeline(st_transformer(hidden_states=True), listener='flavour = "curated"'))
    with pytest.raises(ValueError, match=rf"{re.escape(ARCHITECTURE)}: expected width to be null or an int >= 1"):
        build(ner_pipeline(st_transformer(hidden_states=True), listener="width = 0"))


# --- spacy-curated-transformers ----------------------------------------------------------

CURATED_NER = (
    ner_pipeline(
        curated_transformer(
            all_layer_outputs=True, window=32, stride=24,
            model_settings="attention_probs_dropout_prob = 0.0\nhidden_dropout_prob = 0.0",
        ),
        listener=f"width = {CURATED_WIDTH}",  # no flavour: the listener finds the curated pipe
    )
    + CURATED_INITIALIZE
)


def curated_ner(grad_factor: float) -> Any:
    fix_random_seed(0)
    nlp = build(CURATED_NER.replace("grad_factor = 0.0", f"grad_factor = {grad_factor}"))
    nlp.initialize(lambda: whitespace_examples(nlp))
    return nlp


def test_curated_ner_trains_with_the_transformer_frozen_and_annotating() -> None:
    nlp = curated_ner(0.0)
    examples = whitespace_examples(nlp)
    optimizer = Adam(0.005)
    before = weights(nlp)
    seen = []
    for _ in range(8):
        losses: Dict[str, float] = {}
        # what spacy train does with [training] frozen_components and annotating_components
        nlp.update(examples, sgd=optimizer, losses=losses, exclude=["transformer"], annotates=["transformer"])
        seen.append(float(losses["ner"]))
    # (the parser's first loss, before any update, is not comparable: compare from the second)
    assert numpy.isfinite(seen).all() and seen[-1] < 0.9 * seen[1], seen
    after = weights(nlp)
    changed = {key for key in before if not numpy.array_equal(before[key], after[key])}
    assert not any(key.startswith("transformer/") for key in changed)
    # the mix took its 7 layers from the first batch (initialize runs on Docs that no
    # transformer has seen) and learned (it starts at 0)
    mix = mix_of(nlp, "ner")
    assert mix.attrs["n_layers"] == N_HIDDEN
    assert numpy.abs(mix.get_param("weights")).max() > 0
    docs = list(nlp.pipe(["Hello   world, Anna lives in Paris.", "\n"]))
    Ys = listener_of(nlp, "ner").predict(docs)
    assert not Ys[0][1].any() and not Ys[1].any()  # the whitespace tokens


def squares(rows: Any) -> float:
    return float((rows.data ** 2).sum())


def test_curated_listener_gradient_reaches_every_layer_of_the_transformer() -> None:
    """The NER's update through the listener with grad_factor = 1.0 hands the curated
    transformer a gradient for each of its 7 outputs, and the transformer's lower layers
    learn from it.

    This feeds the listener as the curated Transformer pipe's update does (run the model,
    hand the listener the batch and a callback that adds the gradients of the layers it
    names into zeroed buffers and backpropagates them), because the pipe's update itself
    cannot run on NumPy >= 2.4 (see test_trf_curated_pipeline.py)."""
    from spacy_curated_transformers.models.listeners import ListenerStateUtils
    from thinc.types import Ragged

    nlp = curated_ner(1.0)
    trf_model = nlp.get_pipe("transformer").model
    ner = nlp.get_pipe("ner")
    raw_listener = listener_of(nlp, "ner")  # a curated pipe feeds the listener model itself
    assert nlp.get_pipe("transformer").listeners == [raw_listener]
    encoder = trf_model.get_ref("transformer").shims[0]._model
    first_layer = {k: p for k, p in encoder.named_parameters() if "layers.0." in k and k.endswith("weight")}
    assert first_layer
    examples = whitespace_examples(nlp)
    docs = [eg.predicted for eg in examples]
    optimizer = Adam(1e-3)
    before = {k: p.detach().numpy().copy() for k, p in first_layer.items()}
    grad_norms: List[List[float]] = []
    for _ in range(3):
        outputs, bp_outputs = trf_model.begin_update(docs)
        assert outputs.num_outputs == N_HIDDEN

        def backprop(d_layers: List[List[Ragged]], outputs_to_backprop: Tuple[int, ...]) -> Any:
            buffers = [
                [Ragged(trf_model.ops.alloc_f(r.dataXd.shape), r.lengths) for r in doc] for doc in outputs.all_outputs
            ]
            for buf, d in zip(buffers, d_layers):
                for j in outputs_to_backprop:
                    buf[j].data += d[j].data
            grad_norms.append([sum(squares(doc[j]) for doc in buffers) for j in range(N_HIDDEN)])
            result = bp_outputs(buffers)
            trf_model.finish_update(optimizer)
            return result

        ListenerStateUtils.receive(raw_listener, ListenerStateUtils.calculate_batch_id(docs), outputs, backprop)
        ner.update(examples, sgd=optimizer, losses={})
    assert len(grad_norms) == 3
    # (the parser's output layer starts at zero: its first update sends no gradient back)
    assert all(norm > 0 for norm in grad_norms[-1]), f"a layer got no gradient: {grad_norms}"
    # an untrained mix is the plain mean: each layer gets the same share
    numpy.testing.assert_allclose(grad_norms[1], [grad_norms[1][0]] * N_HIDDEN, rtol=1e-3)
    for key, value in before.items():
        assert not numpy.array_equal(value, first_layer[key].detach().numpy()), f"{key} did not change"
    assert numpy.abs(mix_of(nlp, "ner").get_param("weights")).max() > 0  # it starts at 0


# --- spancat: spans with no rows -----------------------------------------------------------


@registry.misc("test_thinc_trf_layers.ngrams_and_empty_spans.v1")  # type: ignore[untyped-decorator]
def ngrams_and_empty_spans(sizes: List[int]) -> Any:
    """spaCy's n-gram suggester, plus an empty span (start == end) at every whitespace token:
    spans that give spaCy's span reducer a row of no token vectors."""
    from spacy.pipeline.spancat import ngram_suggester
    from thinc.api import get_current_ops
    from thinc.types import Ragged

    def suggest(docs: Sequence[Doc], *, ops: Any = None) -> Ragged:
        ops = ops or get_current_ops()
        ngrams = ngram_suggester(docs, sizes, ops=ops)
        rows, lengths, start = [], [], 0
        for doc, n in zip(docs, ops.to_numpy(ngrams.lengths)):
            empty = numpy.asarray([[t.i, t.i] for t in doc if t.is_space], dtype="i").reshape(-1, 2)
            rows.append(numpy.concatenate([ops.to_numpy(ngrams.dataXd[start : start + n]).reshape(-1, 2), empty]))
            lengths.append(len(rows[-1]))
            start += int(n)
        return Ragged(ops.asarray2i(numpy.concatenate(rows).astype("i")), ops.asarray1i(lengths))

    return suggest


SPANCAT_EMPTY = f"""
[nlp]
lang = "en"
pipeline = ["transformer","spancat"]

[components]
{st_transformer(hidden_states=True, use_fast=True, window=32, stride=24)}

[components.spancat]
factory = "spancat"
spans_key = "sc"

[components.spancat.suggester]
@misc = "test_thinc_trf_layers.ngrams_and_empty_spans.v1"
sizes = [1, 2]

[components.spancat.model]
@architectures = "spacy.SpanCategorizer.v1"

[components.spancat.model.reducer]
@layers = "thinc_trf_layers.reduce_mean_max.v1"

[components.spancat.model.scorer]
@layers = "spacy.LinearLogistic.v1"

[components.spancat.model.tok2vec]
@architectures = "thinc_trf_layers.MixedLayersListener.v1"
grad_factor = 0.0

[components.spancat.model.tok2vec.mix]
@layers = "thinc_trf_layers.scalar_mix.v1"
"""


def test_spancat_reduce_mean_max_survives_empty_spans_over_whitespace() -> None:
    from thinc.api import reduce_max

    fix_random_seed(0)
    nlp = build(SPANCAT_EMPTY)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in make_docs(spacy.blank("en"), 8, seed=3)]
    examples += [Example.from_dict(nlp.make_doc("\n"), {}), Example.from_dict(nlp.make_doc("Hello   world"), {})]
    assert any(t.is_space for eg in examples for t in eg.predicted)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.005)
    seen = []
    for i in range(8):
        losses: Dict[str, float] = {}
        if i == 0:  # the whole path once: the transformer's update feeds the listener
            nlp.update(examples, sgd=optimizer, losses=losses)
        else:
            nlp.update(examples, sgd=optimizer, losses=losses, exclude=["transformer"], annotates=["transformer"])
        seen.append(float(losses["spancat"]))
    assert numpy.isfinite(seen).all() and seen[-1] < seen[0], seen
    # the reducer's input: a Ragged of token vectors per suggested span, empty for the
    # empty spans; ours gives them zeros (Thinc's reduce_max raises)
    spancat = nlp.get_pipe("spancat")
    docs = list(nlp.pipe(["Yesterday  Hugo called.", "\n"], disable=["spancat"]))
    suggested = spancat.suggester(docs, ops=spancat.model.ops)
    tokens = spancat.model.layers[0].predict((docs, suggested))
    rows = spancat.model.layers[1].predict(tokens)
    empty = numpy.flatnonzero(rows.lengths == 0)
    assert len(empty) == 2  # "  " and "\n"
    reduced = spancat.model.get_ref("reducer").predict(rows)
    assert reduced.shape == (len(rows.lengths), 2 * CURATED_WIDTH)
    assert not reduced[empty].any()
    assert numpy.isfinite(reduced).all()
    with pytest.raises(ValueError, match="lengths must be > 0"):
        reduce_max().predict(rows)
    scored = list(nlp.pipe(["Yesterday  Hugo called.", "\n"]))
    assert all(numpy.isfinite(doc.spans["sc"].attrs["scores"]).all() for doc in scored)


# --- a transformer that keeps only its last layer -----------------------------------------


def test_spacy_transformers_without_hidden_states_says_to_set_output_hidden_states() -> None:
    fix_random_seed(0)
    nlp = build(ner_pipeline(st_transformer(hidden_states=False, use_fast=True, window=32, stride=24)))
    nlp.initialize(lambda: whitespace_examples(nlp))  # the width is known without the layers
    with pytest.raises(LayerInputError, match=r"no hidden states.*output_hidden_states = true"):
        list(nlp.pipe(["Anna lives in Paris."]))


@pytest.mark.parametrize("mix, works", [('mean_last.v1"\nk = 1', True), ('scalar_mix.v1"\nn_layers = 7', False)])
def test_curated_without_all_layer_outputs_takes_a_mix_of_the_last_layer_only(mix: str, works: bool) -> None:
    text = CURATED_NER.replace("all_layer_outputs = true", "all_layer_outputs = false").replace(
        '@layers = "thinc_trf_layers.scalar_mix.v1"', f'@layers = "thinc_trf_layers.{mix}'
    )
    assert "all_layer_outputs = false" in text and mix in text
    fix_random_seed(0)
    nlp = build(text)
    nlp.initialize(lambda: whitespace_examples(nlp))
    if works:  # mean_last(1) reads the last layer: what the pipe keeps
        doc = next(nlp.pipe(["Anna lives in Paris."]))
        Y = listener_of(nlp, "ner").predict([doc])[0]
        last = doc._.trf_data.all_outputs[-1]
        numpy.testing.assert_allclose(Y[0], last.dataXd[: int(last.lengths[0])].mean(axis=0), rtol=1e-5)
    else:
        with pytest.raises(LayerInputError, match=r"holds its last layer only.*all_layer_outputs = true"):
            list(nlp.pipe(["Anna lives in Paris."]))
