"""``python -m thinc_trf_layers compare``: which pooling of a transformer's outputs works
best on your labelled texts (docs/cli.md). ``thinc_trf_layers.cli`` parses the command
line and calls ``check_options``, then ``run``.

Modules, in the order a run uses them: ``inputs`` (the errors and exit codes, the
poolings by name, the data, ``--model`` and ``--out``: everything checked before a model
loads, plain Python), ``features`` (the transformer pass), ``training`` (the heads, their
training and scores) and ``runner`` (``run``: the table, the chart, the result files).
torch, transformers, matplotlib and tqdm are imported only when ``run`` needs them.
"""
from .inputs import (DEFAULT_POOLINGS, EXIT_BAD_INPUT, EXIT_INTERRUPTED, INTERRUPTED, POOLINGS,
                     CompareOptions, Dataset, InputError, check_options, example_data_path,
                     load_data, parse_poolings, stratified_split)
from .runner import run

__all__ = ["run", "check_options", "CompareOptions", "InputError", "EXIT_BAD_INPUT",
           "EXIT_INTERRUPTED", "INTERRUPTED", "Dataset", "load_data", "stratified_split",
           "example_data_path", "POOLINGS", "DEFAULT_POOLINGS", "parse_poolings"]
