"""``python -m thinc_trf_layers compare``: which pooling of a transformer's outputs works
best on your labelled texts (docs/cli.md). ``thinc_trf_layers.cli`` parses the command
line and calls ``check_options``, then ``run``. Its modules, in the order a run uses them
(each says what it holds): ``inputs``, ``features``, ``training``, ``runner``; torch,
transformers, matplotlib and tqdm are imported only when ``run`` needs them.
"""
from .inputs import (DEFAULT_POOLINGS, EXIT_BAD_INPUT, EXIT_INTERRUPTED, INTERRUPTED, POOLINGS,
                     CompareOptions, Dataset, InputError, check_options, example_data_path,
                     load_data, parse_poolings, stratified_split)
from .runner import run

__all__ = ["run", "check_options", "CompareOptions", "InputError", "EXIT_BAD_INPUT",
           "EXIT_INTERRUPTED", "INTERRUPTED", "Dataset", "load_data", "stratified_split",
           "example_data_path", "POOLINGS", "DEFAULT_POOLINGS", "parse_poolings"]
