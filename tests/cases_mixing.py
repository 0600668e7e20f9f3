"""Rows of the generic layer table (tests/test_layers_api.py) for the layer mixes.

Untrained, ``scalar_mix`` and ``weighted_layer_pooling`` are the plain mean of the layers
they use, which is what the expected outputs say.
"""
from typing import Any, Callable, List

import numpy

from layer_cases import Case

rng = numpy.random.RandomState(7)
LAYERS = [rng.uniform(-1, 1, (3, 4, 5)) for _ in range(6)]
NO_SPANS = [numpy.zeros((0, 4, 5)) for _ in range(6)]


def _copy(layers: List[Any]) -> Callable[[], List[Any]]:
    return lambda: [X.copy() for X in layers]


CASES = [
    Case(
        "thinc_trf_layers.scalar_mix.v1",
        {"n_layers": 6},
        _copy(LAYERS),
        "Floats3d",
        expected=lambda Xs: numpy.mean(numpy.stack(Xs), axis=0),
    ),
    Case(
        "thinc_trf_layers.scalar_mix.v1",
        {"n_layers": 6, "dropout": 0.0},
        _copy(NO_SPANS),
        "Floats3d",
        expected=lambda Xs: numpy.zeros((0, 4, 5)),
        id="scalar_mix_no_spans",
    ),
    Case(
        "thinc_trf_layers.weighted_layer_pooling.v1",
        {"n_layers": 6, "layer_start": 2},
        _copy(LAYERS),
        "Floats3d",
        expected=lambda Xs: numpy.mean(numpy.stack(Xs[2:]), axis=0),
    ),
    Case(
        "thinc_trf_layers.weighted_layer_pooling.v1",
        {"n_layers": 6},
        _copy(NO_SPANS),
        "Floats3d",
        expected=lambda Xs: numpy.zeros((0, 4, 5)),
        id="weighted_layer_pooling_no_spans",
    ),
    Case(
        "thinc_trf_layers.concat_last.v1",
        {"k": 4},
        _copy(LAYERS),
        "Floats3d",
        expected=lambda Xs: numpy.concatenate(Xs[-4:], axis=-1),
    ),
    Case(
        "thinc_trf_layers.concat_last.v1",
        {"k": 2},
        _copy(NO_SPANS),
        "Floats3d",
        expected=lambda Xs: numpy.zeros((0, 4, 10)),
        id="concat_last_no_spans",
    ),
    Case(
        "thinc_trf_layers.mean_last.v1",
        {"k": 4},
        _copy(LAYERS),
        "Floats3d",
        expected=lambda Xs: numpy.mean(numpy.stack(Xs[-4:]), axis=0),
    ),
    Case(
        "thinc_trf_layers.mean_last.v1",
        {"k": 6},
        _copy(NO_SPANS),
        "Floats3d",
        expected=lambda Xs: numpy.zeros((0, 4, 5)),
        id="mean_last_no_spans",
    ),
    Case(
        "thinc_trf_layers.map_list.v1",
        {"layer": {"@layers": "thinc_trf_layers.scalar_mix.v1", "n_layers": 3}},
        lambda: [[X.copy() for X in LAYERS[:3]], [X.copy() for X in NO_SPANS[:3]], [X[:1, :2].copy() for X in LAYERS[3:]]],
        "List[Floats3d]",
        expected=lambda docs: [numpy.mean(numpy.stack(layers), axis=0) for layers in docs],
        id="map_list_scalar_mix_per_doc",
    ),
]
