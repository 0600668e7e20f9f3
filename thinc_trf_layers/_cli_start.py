"""Ctrl-C in the first seconds of ``python -m thinc_trf_layers`` / ``thinc-trf-layers``.

Python imports this package (and with it Thinc, which imports torch: seconds) before the
command line's own code runs, so a Ctrl-C then would end in a traceback from deep inside
those imports. The package's ``__init__`` imports this module first: when, and only
when, the process is that command, it installs a SIGINT handler that prints the
command's one line and exits with 130; ``cli.main`` puts Python's own handler back as it
starts (from then on it catches ``KeyboardInterrupt`` itself). Importing the package as
a library changes nothing.
"""
import os
import signal
import sys
from types import FrameType
from typing import List, Optional

#: What the command prints when it is stopped with Ctrl-C.
INTERRUPTED = "interrupted; nothing written."
#: Its exit code (128 + SIGINT, what a shell reports).
EXIT_INTERRUPTED = 130


def is_the_command(argv: Optional[List[str]] = None) -> bool:
    """Whether the process was started as ``python ... -m thinc_trf_layers ...`` or as the
    ``thinc-trf-layers`` console script (``sys.orig_argv``, Python 3.10+)."""
    args = argv if argv is not None else list(getattr(sys, "orig_argv", []))
    skip = False
    for i, arg in enumerate(args[1:], start=1):
        if skip:  # the value of -X, -W
            skip = False
            continue
        if arg in ("-X", "-W", "--check-hash-based-pycs"):
            skip = True
            continue
        if arg == "-m":
            return i + 1 < len(args) and args[i + 1] == "thinc_trf_layers"
        if arg.startswith("-m"):
            return arg[2:] == "thinc_trf_layers"
        if arg == "-c" or not arg.startswith("-"):
            # a script (the console script among them) or code: nothing after it is ours
            return os.path.basename(arg) == "thinc-trf-layers"
    return False


def _interrupted(signum: int, frame: Optional[FrameType]) -> None:
    print(INTERRUPTED, file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


def install() -> None:
    """Install the start-up handler if this process is the command (and Python's default
    handler is in place: a parent that ignores SIGINT keeps it ignored)."""
    if is_the_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)


def uninstall() -> None:
    """Put Python's handler back (``KeyboardInterrupt``), if the start-up one is in place."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


install()
