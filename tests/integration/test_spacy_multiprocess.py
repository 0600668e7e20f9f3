"""``nlp.pipe(texts, n_process=2)`` on a spacy-transformers pipeline with our
``ClassTokenTextcat.v1`` gives the cats of a single-process ``nlp.pipe(texts)``.

The pipeline runs in a fresh interpreter with ``OMP_NUM_THREADS=1``: without it the
worker processes hang in PyTorch's thread pool (true for spaCy's own architectures too;
docs/spacy.md says so), so the run has a timeout and a hang fails the test instead of
blocking the suite.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCRIPT = """\
import json
import sys

from pipelines import (
    CLASS_TOKEN, TOPIC_TEXTS, build, st_transformer, textcat_pipeline, topic_examples,
)


def main(out):
    nlp = build(textcat_pipeline(st_transformer(), CLASS_TOKEN))
    optimizer = nlp.initialize(lambda: topic_examples(nlp))
    for _ in range(4):  # an initialised softmax gives 0.5 everywhere: train a little
        nlp.update(topic_examples(nlp), sgd=optimizer)
    texts = [text for text, _ in TOPIC_TEXTS] * 3 + ["", "A word.", "Goal!" * 40]
    one = [doc.cats for doc in nlp.pipe(texts, batch_size=4)]
    two = [doc.cats for doc in nlp.pipe(texts, batch_size=4, n_process=2)]
    with open(out, "w") as f:
        json.dump({"texts": texts, "one": one, "two": two}, f)


if __name__ == "__main__":
    main(sys.argv[1])
"""


def test_pipe_with_two_processes_matches_one(tmp_path: Path) -> None:
    (tmp_path / "run_pipe.py").write_text(SCRIPT)
    out = tmp_path / "cats.json"
    pythonpath = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=pythonpath)
    # a session of its own, so that a hang is ended with the worker processes too
    proc = subprocess.Popen(
        [sys.executable, "run_pipe.py", str(out)], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("nlp.pipe(n_process=2) did not finish in 300 s (hung?)")
    assert proc.returncode == 0, stderr[-4000:]
    result = json.loads(out.read_text())
    assert len(result["one"]) == len(result["two"]) == len(result["texts"])
    for text, one, two in zip(result["texts"], result["one"], result["two"]):
        assert one.keys() == two.keys() == {"SPORTS", "COOKING"}, text
        for label in one:
            assert two[label] == pytest.approx(one[label], abs=1e-5), (text, label)
    # the scores depend on the text, so a mix-up of docs between the processes would show
    assert len({round(cats["SPORTS"], 6) for cats in result["one"]}) > 1
