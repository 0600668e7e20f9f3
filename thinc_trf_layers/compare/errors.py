"""The errors and exit codes of the compare command."""

#: Exit code of a run stopped by bad input (the same code argparse uses for bad options).
EXIT_BAD_INPUT = 2
#: What the command prints when it is stopped with Ctrl-C.
INTERRUPTED = "interrupted; nothing written."
#: Exit code of a run stopped with Ctrl-C (128 + SIGINT, what a shell reports).
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """Bad input: reported on stderr as one ``error: ...`` line, exit code 2."""


__all__ = ["InputError", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]
