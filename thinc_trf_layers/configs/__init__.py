"""The spaCy training configs that the docs use, shipped with the package: ``config_path(NAME)``
or ``python -m thinc_trf_layers config NAME`` gives one's path (docs/spacy.md)."""

import pathlib
from typing import List

FOLDER = pathlib.Path(__file__).parent


def config_names() -> List[str]:
    """The shipped configs' names: their file names without ``.cfg``."""
    return sorted(path.stem for path in FOLDER.glob("*.cfg"))


def config_path(name: str) -> pathlib.Path:
    """The path of the shipped config ``name`` (``"pooled_textcat"``)."""
    if name not in config_names():
        raise ValueError(
            f"config_path: no shipped config {name!r}; expected one of {', '.join(config_names())}."
        )
    return FOLDER / f"{name}.cfg"


__all__ = ["config_names", "config_path"]
