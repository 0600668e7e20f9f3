"""``python -m thinc_trf_layers compare``: which pooling of a transformer's outputs works
best on your labelled texts (docs/cli.md). ``thinc_trf_layers.cli`` parses the command
line and calls ``check_options`` and ``run``.

Modules, in the order a run uses them:

- ``errors``: ``InputError`` (bad input: one ``error:`` line, exit 2) and the exit codes;
- ``poolings``: the poolings by name (``POOLINGS``) and the ``--poolings`` parser;
- ``data``: loading and checking the ``.jsonl``/``.csv`` data, the stratified splits;
- ``options``: ``CompareOptions`` and the checks made before any model loads;
- ``features``: loading the Hugging Face model, running it once over every text;
- ``training``: the heads (the library's public layers + ``Softmax``), training, scores,
  the timing per batch;
- ``report``: the table, the chart, writing the results into ``--out``;
- ``runner``: ``run``, the steps above in order.

Everything up to ``options`` is plain Python; torch, transformers, matplotlib and tqdm
are imported only when ``run`` needs them.
"""
from .data import (
    Dataset,
    check_dataset,
    example_data_path,
    load_csv,
    load_data,
    load_jsonl,
    stratified_split,
)
from .errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, InputError
from .options import CompareOptions, check_options
from .poolings import DEFAULT_POOLINGS, LAYER_MIXES, POOLINGS, parse_poolings
from .runner import run

__all__ = [
    "run",
    "check_options",
    "CompareOptions",
    "InputError",
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "Dataset",
    "load_data",
    "load_jsonl",
    "load_csv",
    "check_dataset",
    "stratified_split",
    "example_data_path",
    "POOLINGS",
    "DEFAULT_POOLINGS",
    "LAYER_MIXES",
    "parse_poolings",
]
