import numpy

from layer_cases import Case

rng = numpy.random.RandomState(0)
X3 = rng.uniform(-1, 1, (3, 4, 5))
LIST3 = [rng.uniform(-1, 1, (2, 4, 3)), rng.uniform(-1, 1, (0, 4, 3)), rng.uniform(-1, 1, (1, 2, 3))]

CASES = [
    Case(
        "thinc_trf_layers.select_token.v1",
        {"index": 0},
        lambda: X3.copy(),
        "Floats2d",
        expected=lambda X: X[:, 0],
    ),
    Case(
        "thinc_trf_layers.select_token.v1",
        {"index": -1},
        lambda: X3.copy(),
        "Floats2d",
        expected=lambda X: X[:, -1],
        id="select_token_last",
    ),
    Case(
        "thinc_trf_layers.array_getitem.v1",
        {"index": ":, 1:3"},
        lambda: X3.copy(),
        "Floats3d",
        expected=lambda X: X[:, 1:3],
    ),
    Case(
        "thinc_trf_layers.array_getitem.v1",
        {"index": [0, -1]},
        lambda: X3.copy(),
        "ArrayXd",
        expected=lambda X: X[0, -1],
        id="array_getitem_list",
    ),
    Case(
        "thinc_trf_layers.map_list.v1",
        {"layer": {"@layers": "thinc_trf_layers.select_token.v1", "index": 0}},
        lambda: [x.copy() for x in LIST3],
        "List[Floats2d]",
        expected=lambda Xs: [X[:, 0] for X in Xs],
    ),
]
