"""``python -m thinc_trf_layers compare``: which pooling of a transformer's outputs works
best on your labelled texts (docs/cli.md says how its modules divide the work)."""

from .inputs import DEFAULT_POOLINGS, EXIT_BAD_INPUT, EXIT_INTERRUPTED, INTERRUPTED, POOLINGS
from .inputs import CompareOptions, Dataset, InputError, check_options, example_data_path
from .inputs import load_data, parse_poolings, stratified_split
from .runner import run

__all__ = [
    "run",
    "check_options",
    "CompareOptions",
    "InputError",
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "INTERRUPTED",
    "Dataset",
    "load_data",
    "stratified_split",
    "example_data_path",
    "POOLINGS",
    "DEFAULT_POOLINGS",
    "parse_poolings",
]
