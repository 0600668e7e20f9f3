"""The data loaders and argument checks of ``python -m thinc_trf_layers compare``
(``thinc_trf_layers.compare.inputs`` and ``thinc_trf_layers.cli``).

No torch here: these run on the Thinc 9.1 venv too. The end-to-end runs with the real
transformer are in tests/integration/test_cli.py.
"""
import importlib.util
import json
import pathlib
from typing import Any, List

import pytest

from thinc_trf_layers import cli, compare
from thinc_trf_layers.compare import InputError, load_data, parse_poolings, stratified_split


def write_jsonl(path: pathlib.Path, rows: List[Any]) -> pathlib.Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    return path


TWO_LABELS = [
    {"text": "The striker scored twice.", "label": "sports"},
    {"text": "Simmer the sauce for ten minutes.", "label": "cooking"},
    {"text": "The keeper saved a penalty.", "label": "sports"},
    {"text": "Knead the dough until smooth.", "label": "cooking"},
]


# --------------------------------------------------------------------------- JSONL


def test_jsonl_reads_texts_and_labels(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in TWO_LABELS[:2]) + "\n\n   \n"
        + "\n".join(json.dumps(r) for r in TWO_LABELS[2:]) + "\n",
        encoding="utf8",
    )
    data = load_data(path)
    assert data.texts == [r["text"] for r in TWO_LABELS]
    assert data.labels == [r["label"] for r in TWO_LABELS]
    assert data.label_names == ["cooking", "sports"]
    assert data.label_counts == {"cooking": 2, "sports": 2}


def test_jsonl_integer_labels_become_strings(tmp_path: pathlib.Path) -> None:
    rows = [{"text": f"text {i}", "label": i % 2} for i in range(4)]
    data = load_data(write_jsonl(tmp_path / "d.jsonl", rows))
    assert data.labels == ["0", "1", "0", "1"]


def test_jsonl_malformed_line_names_its_number(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in TWO_LABELS]
    lines.insert(1, "")  # blank lines count in the numbering
    lines[3] = '{"text": "broken", "label": "sports"'
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    with pytest.raises(InputError, match=r"d\.jsonl, line 4: not valid JSON"):
        load_data(path)


@pytest.mark.parametrize(
    "line,fragment",
    [
        ('["a list", "sports"]', 'expected an object with "text" and "label", got list'),
        ('{"text": "no label"}', "expected an object with \"text\" and \"label\", got ['text']"),
        ('{"label": "sports"}', "got ['label']"),
        ('{"text": "", "label": "sports"}', "'text' must be a non-empty string"),
        ('{"text": 12, "label": "sports"}', "'text' must be a non-empty string, got 12"),
        ('{"text": "ok", "label": null}', "'label' must be a string or an integer, got None"),
        ('{"text": "ok", "label": true}', "'label' must be a string or an integer, got True"),
        ('{"text": "ok", "label": "  "}', "'label' must not be empty"),
    ],
)
def test_jsonl_bad_line(tmp_path: pathlib.Path, line: str, fragment: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(TWO_LABELS[0]) + "\n" + line + "\n", encoding="utf8")
    with pytest.raises(InputError) as info:
        load_data(path)
    assert "line 2" in str(info.value)
    assert fragment in str(info.value)


def test_a_json_array_is_not_jsonl(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(TWO_LABELS, indent=2), encoding="utf8")
    with pytest.raises(InputError, match="line 1: this looks like a JSON array; expected JSON Lines"):
        load_data(path)


def test_jsonl_not_utf8_names_the_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(TWO_LABELS[0]).encode() + b'\n{"text": "caf\xe9", "label": "x"}\n')
    with pytest.raises(InputError, match="line 2: not valid UTF-8"):
        load_data(path)


# --------------------------------------------------------------------------- CSV


def test_csv_reads_quoted_texts_and_extra_columns(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "\ufeffid,label,text\n"
        '1,sports,"The striker scored, then scored again."\n'
        "2,cooking,Simmer the sauce.\n"
        "\n"
        '3,sports,"A line\nbreak inside quotes"\n'
        "4,cooking,Knead the dough.\n",
        encoding="utf8",
    )
    data = load_data(path)
    assert data.texts == [
        "The striker scored, then scored again.",
        "Simmer the sauce.",
        "A line\nbreak inside quotes",
        "Knead the dough.",
    ]
    assert data.labels == ["sports", "cooking", "sports", "cooking"]


def test_csv_missing_column(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("sentence,label\na,x\nb,y\n", encoding="utf8")
    expected = r"line 1: the header must name the columns .*missing 'text'"
    with pytest.raises(InputError, match=expected):
        load_data(path)


def test_csv_too_many_fields_names_the_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nb,y\nc, with a comma,x\n", encoding="utf8")
    with pytest.raises(InputError, match=r"d\.csv, line 4: more fields than the header"):
        load_data(path)


def test_csv_too_few_fields_names_the_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nb\nc,y\n", encoding="utf8")
    with pytest.raises(InputError, match=r"line 3: fewer fields than the header"):
        load_data(path)


def test_csv_empty_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("", encoding="utf8")
    with pytest.raises(InputError, match="the file is empty"):
        load_data(path)


# --------------------------------------------------------------------------- whole data sets


def test_fewer_than_two_labels(tmp_path: pathlib.Path) -> None:
    rows = [{"text": f"text {i}", "label": "only"} for i in range(5)]
    expected = r"found 1 label \('only'\) in 5 texts; .*at least two labels"
    with pytest.raises(InputError, match=expected):
        load_data(write_jsonl(tmp_path / "d.jsonl", rows))


def test_no_texts(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n\n", encoding="utf8")
    with pytest.raises(InputError, match="no labelled texts"):
        load_data(path)


def test_label_with_a_single_text(tmp_path: pathlib.Path) -> None:
    rows = TWO_LABELS + [{"text": "Rain tomorrow.", "label": "weather"}]
    with pytest.raises(InputError, match=r"label\(s\) 'weather' have a single text"):
        load_data(write_jsonl(tmp_path / "d.jsonl", rows))


def test_missing_file_folder_and_unknown_type(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        load_data(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a folder"):
        load_data(tmp_path)
    other = tmp_path / "d.txt"
    other.write_text("a\n", encoding="utf8")
    with pytest.raises(InputError, match=r"unknown file type '\.txt'; expected a \.jsonl file"):
        load_data(other)


def test_the_shipped_example_data() -> None:
    data = load_data(compare.example_data_path())
    assert len(data.texts) == 360
    assert data.label_counts == {"cooking": 90, "sports": 90, "technology": 90, "weather": 90}
    assert len(set(data.texts)) > 340  # varied, not a handful of texts repeated
    n_words = sorted(len(t.split()) for t in data.texts)
    assert n_words[0] < 15 and n_words[-1] > 70  # from one sentence to long paragraphs


def test_the_shipped_example_data_is_the_generator_output() -> None:
    script = compare.example_data_path().with_name("make_example.py")
    spec = importlib.util.spec_from_file_location("make_example", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = compare.example_data_path().read_text("utf8").splitlines()
    shipped = [json.loads(line) for line in lines]
    assert module.make_examples() == shipped


# --------------------------------------------------------------------------- options


def test_parse_poolings() -> None:
    assert parse_poolings("cls, mean,max mean") == ["cls", "mean", "max"]
    assert parse_poolings(",".join(compare.DEFAULT_POOLINGS)) == compare.DEFAULT_POOLINGS
    with pytest.raises(InputError) as info:
        parse_poolings("mean,avg")
    msg = str(info.value)
    assert "unknown pooling(s) 'avg'" in msg
    for name in compare.POOLINGS:
        assert name in msg
    with pytest.raises(InputError, match="no pooling given"):
        parse_poolings(" , ")


def test_every_default_pooling_is_known_and_registered() -> None:
    from thinc.api import registry

    import thinc_trf_layers  # noqa: F401  (registers the layers)

    assert set(compare.DEFAULT_POOLINGS) <= set(compare.POOLINGS)
    for name, (registry_name, _) in compare.POOLINGS.items():
        assert registry.get("layers", registry_name), name


def test_stratified_split() -> None:
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 2
    train, test = stratified_split(labels, 0.3, seed=3)
    assert sorted(train + test) == list(range(len(labels)))
    assert not set(train) & set(test)
    test_labels = [labels[i] for i in test]
    assert [test_labels.count(label) for label in "abc"] == [3, 2, 1]
    assert {labels[i] for i in train} == {"a", "b", "c"}
    assert stratified_split(labels, 0.3, seed=3) == (train, test)
    assert any(stratified_split(labels, 0.3, seed=s) != (train, test) for s in range(4, 10))
    # a huge fraction still leaves one text of every label for training
    train, test = stratified_split(labels, 0.99, seed=0)
    assert {labels[i] for i in train} == {"a", "b", "c"}


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--epochs", "0"], "argument --epochs: expected a number >= 1, got 0"),
        (["--batch-size", "x"], "argument --batch-size: expected a whole number"),
        (
            ["--test-fraction", "1.5"],
            "argument --test-fraction: expected a fraction strictly between 0 and 1",
        ),
        (["--learn-rate", "-1"], "argument --learn-rate: expected a positive number"),
        (["--seed", "-3"], "argument --seed: expected a seed in [0, 2**32)"),
        (["--repeats", "0"], "argument --repeats: expected a number >= 1, got 0"),
        (["--max-length", "2"], "argument --max-length: expected a number >= 3, got 2"),
    ],
)
def test_bad_option_values(capsys: Any, args: List[str], fragment: str) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["compare", *args])
    assert info.value.code == cli.EXIT_BAD_INPUT
    assert fragment in capsys.readouterr().err


def test_seeds_of_the_repeats_must_stay_in_range(tmp_path: pathlib.Path, capsys: Any) -> None:
    out = tmp_path / "out"
    code = cli.main(["compare", "--seed", str(2**32 - 1), "--repeats", "2", "--out", str(out)])
    assert code == cli.EXIT_BAD_INPUT
    assert "uses seeds up to 4294967296; seeds must stay below 2**32" in capsys.readouterr().err
    assert not out.exists()


def test_version(capsys: Any) -> None:
    import thinc_trf_layers

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"thinc-trf-layers {thinc_trf_layers.__version__}"


def test_no_command_prints_help_and_exits_2(capsys: Any) -> None:
    assert cli.main([]) == cli.EXIT_BAD_INPUT
    assert "compare" in capsys.readouterr().err


def test_model_folder_without_config(tmp_path: pathlib.Path, capsys: Any) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", TWO_LABELS)
    out = tmp_path / "out"
    code = cli.main(["compare", "--data", str(data), "--model", str(tmp_path), "--out", str(out)])
    assert code == cli.EXIT_BAD_INPUT
    assert "not a Hugging Face model folder (no config.json)" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(
    all(importlib.util.find_spec(m) for m in ("torch", "transformers", "matplotlib")),
    reason="runs where a dependency of compare is missing (the Thinc 9.1 venv)",
)
def test_missing_dependencies_are_reported(tmp_path: pathlib.Path, capsys: Any) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", TWO_LABELS)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf8")
    out = tmp_path / "out"
    code = cli.main(["compare", "--data", str(data), "--model", str(model), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_BAD_INPUT
    assert "compare needs " in err and "pip install 'thinc-trf-layers[torch,demo]'" in err
    assert not out.exists()
