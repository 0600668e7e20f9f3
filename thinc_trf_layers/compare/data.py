"""Loading and splitting the labelled texts of the compare command.

Plain Python (no Thinc, no torch): ``load_data`` reads a ``.jsonl`` or ``.csv`` file and
checks everything the later steps rely on, raising ``InputError`` with the file, the line
and what was expected; ``stratified_split`` makes the seeded train/test splits.
"""
import csv
import json
import math
import pathlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Dict, List, Sequence, Tuple

from .errors import InputError

#: The data set shipped in the package (written for this project, see data/make_example.py).
EXAMPLE_DATA = "example.jsonl"


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
    return pathlib.Path(__file__).parent.parent / "data" / EXAMPLE_DATA


def _check_unicode(where: str, what: str, value: str) -> None:
    """A lone surrogate (a JSON escape like "\\ud800" without its pair) is no text that
    UTF-8, the tokenizer or the terminal can take: refuse it here, with its position."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = value[err.start]
        raise InputError(
            f"{where}: {what} holds a lone surrogate {ascii(bad)} at character {err.start + 1}, "
            f"which is not valid Unicode text; expected text that UTF-8 can encode (a "
            f"\\ud800-\\udfff escape is only valid as the first or second half of a pair)."
        ) from None


def _check_example(where: str, text: object, label: object) -> Tuple[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: 'text' must be a non-empty string, got {text!r}.")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InputError(f"{where}: 'label' must be a string or an integer, got {label!r}.")
    label = str(label).strip()
    if not label:
        raise InputError(f"{where}: 'label' must not be empty.")
    _check_unicode(where, "'text'", text)
    _check_unicode(where, "'label'", label)
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
            text, label = _check_example(f"{path}, line {lineno}", obj["text"], obj["label"])
            texts.append(text)
            labels.append(label)
    return Dataset(texts, labels, str(path))


def load_csv(path: pathlib.Path) -> Dataset:
    """Read a CSV file with a header row that names a ``text`` and a ``label`` column
    (each once; other columns are ignored)."""
    texts: List[str] = []
    labels: List[str] = []
    with _open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
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
        for name in ("text", "label"):
            at = [str(i + 1) for i, column in enumerate(columns) if column == name]
            if len(at) > 1:
                raise InputError(
                    f"{path}, line 1: the header names the column {name!r} {len(at)} times "
                    f"(columns {', '.join(at[:-1])} and {at[-1]}), got {columns}; expected "
                    f"each of 'text' and 'label' once."
                )
        text_at = columns.index("text")
        label_at = columns.index("label")
        try:
            for row in reader:
                lineno = reader.line_num
                if not any(value.strip() for value in row):
                    continue
                if len(row) > len(header):
                    raise InputError(
                        f"{path}, line {lineno}: more fields than the header has "
                        f"({len(header)}); quote texts that contain commas."
                    )
                if len(row) <= max(text_at, label_at):
                    raise InputError(
                        f"{path}, line {lineno}: fewer fields than the header has ({len(header)})."
                    )
                text, label = _check_example(f"{path}, line {lineno}", row[text_at], row[label_at])
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


def stratified_split(
    labels: Sequence[str], test_fraction: float, seed: int
) -> Tuple[List[int], List[int]]:
    """Split indices into (train, test), per label, seeded; each part gets every label.

    Every label with n texts puts ``round(n * test_fraction)`` of them, clipped to
    [1, n - 1], into the test part. The result depends only on the labels, the fraction
    and the seed. Returns sorted index lists.
    """
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


__all__ = [
    "Dataset",
    "EXAMPLE_DATA",
    "example_data_path",
    "load_data",
    "load_jsonl",
    "load_csv",
    "check_dataset",
    "stratified_split",
]
