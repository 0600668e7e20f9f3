"""Rows of the generic layer table (tests/layer_cases.py) for the pooling layers.

Expected outputs come from plain NumPy loops over the rows (``tests/pooling_reference``
style, written here independently of the layers).
"""
from typing import Any, Callable, List

import numpy
from thinc.types import Ragged

from layer_cases import Case

rng = numpy.random.RandomState(1)
# rows of lengths 2, 0, 3, 1: a zero-length row in the middle
LENGTHS = numpy.asarray([2, 0, 3, 1], dtype="int32")
DATA = rng.uniform(-1, 1, (int(LENGTHS.sum()), 3))
# a padded batch with the same rows, right-padded to 4, padding filled with junk
PADDED = numpy.full((4, 4, 3), 7.0)
_start = 0
for _i, _n in enumerate(LENGTHS):
    PADDED[_i, :_n] = DATA[_start : _start + _n]
    _start += _n
LEFT_MASK = numpy.zeros((4, 4), dtype="int64")
PADDED_LEFT = numpy.full((4, 4, 3), -7.0)
_start = 0
for _i, _n in enumerate(LENGTHS):
    if _n:
        LEFT_MASK[_i, 4 - _n :] = 1
        PADDED_LEFT[_i, 4 - _n :] = DATA[_start : _start + _n]
    _start += _n


def rows(X: Ragged) -> List[Any]:
    out, start = [], 0
    for n in X.lengths:
        out.append(X.dataXd[start : start + int(n)])
        start += int(n)
    return out


def per_row(fn: Callable[[Any], Any]) -> Callable[[Ragged], Any]:
    def expected(X: Ragged) -> Any:
        width = X.dataXd.shape[1]
        out = []
        for r in rows(X):
            out.append(fn(r) if len(r) else numpy.zeros_like(fn(numpy.ones((1, width)))))
        return numpy.asarray(out).reshape(len(out), -1)

    return expected


def padded_to_ragged(inputs: Any) -> Ragged:
    """The real positions of a padded batch (lengths or a 0/1 mask), in order."""
    X, second = inputs
    if second.ndim == 1:
        mask = numpy.arange(X.shape[1])[None, :] < second[:, None]
    else:
        mask = second != 0
    data = numpy.concatenate([X[i][mask[i]] for i in range(X.shape[0])] + [X.reshape(-1, X.shape[-1])[:0]])
    return Ragged(data, mask.sum(axis=1))


def ref_weighted(r: Any) -> Any:
    w = numpy.arange(1, len(r) + 1, dtype="float64")
    return (r * w[:, None]).sum(0) / w.sum()


REFERENCES = {
    "reduce_first": lambda r: r[0],
    "reduce_last": lambda r: r[-1],
    "reduce_sum": lambda r: r.sum(0),
    "reduce_mean": lambda r: r.mean(0),
    "reduce_max": lambda r: r.max(0),
    "reduce_mean_max": lambda r: numpy.concatenate([r.mean(0), r.max(0)]),
    "reduce_mean_sqrt_len": lambda r: r.sum(0) / numpy.sqrt(len(r)),
    "reduce_weighted_mean": ref_weighted,
    # attention_pool starts with q = 0: uniform attention, i.e. the mean
    "attention_pool": lambda r: r.mean(0),
    "reduce_gem": lambda r: (numpy.maximum(r, 1e-6) ** 3).mean(0) ** (1 / 3),
}


def ragged_input() -> Ragged:
    return Ragged(DATA.copy(), LENGTHS.copy())


CASES: List[Case] = []
for _name, _ref in REFERENCES.items():
    CASES.append(
        Case(
            f"thinc_trf_layers.{_name}.v1",
            {},
            ragged_input,
            "Floats2d",
            expected=per_row(_ref),
            # GeM's clamp at eps has a kink; keep inputs away from it by construction
            grad_kwargs={"rtol": 1e-3, "atol": 1e-5} if _name == "reduce_gem" else {},
        )
    )

CASES.append(
    Case(
        "thinc_trf_layers.reduce_gem.v1",
        {"p": 2.5, "learn_p": True},
        ragged_input,
        "Floats2d",
        expected=per_row(lambda r: (numpy.maximum(r, 1e-6) ** 2.5).mean(0) ** (1 / 2.5)),
        id="reduce_gem_learned_p",
        grad_kwargs={"rtol": 1e-3, "atol": 1e-5},
    )
)

# Padded batches, right (lengths) and left (attention mask), for a direct pooling, one
# with parameters (run through a Ragged) and mean_max.
def padded_case(name: str, form: str) -> Case:
    """with_padded_mask(name) on the right-padded batch with its lengths ("lengths") or on
    the left-padded one with its attention mask ("left_mask")."""
    make = (
        (lambda: (PADDED.copy(), LENGTHS.copy()))
        if form == "lengths"
        else (lambda: (PADDED_LEFT.copy(), LEFT_MASK.copy()))
    )
    return Case(
        "thinc_trf_layers.with_padded_mask.v1",
        {"pooling": {"@layers": f"thinc_trf_layers.{name}.v1"}},
        make,
        "Floats2d",
        expected=lambda X, e=per_row(REFERENCES[name]): e(padded_to_ragged(X)),
        id=f"with_padded_mask_{name}_{form}",
        grad_kwargs={"rtol": 1e-3, "atol": 1e-5} if name == "reduce_gem" else {},
    )


for _name in ("reduce_mean", "reduce_max", "reduce_mean_max", "reduce_weighted_mean", "attention_pool"):
    CASES.append(padded_case(_name, "lengths"))
    CASES.append(padded_case(_name, "left_mask"))
for _name in ("reduce_first", "reduce_last", "reduce_sum", "reduce_mean_sqrt_len", "reduce_gem"):
    CASES.append(padded_case(_name, "left_mask"))


def _picked(X: Ragged, index: int) -> Ragged:
    picks = [r[index] for r in rows(X) if len(r)]
    return Ragged(numpy.stack(picks), numpy.asarray([1 if len(r) else 0 for r in rows(X)], dtype="int32"))


CASES.append(Case("thinc_trf_layers.pick_token.v1", {"token_index": -1}, ragged_input, "Ragged", expected=lambda X: _picked(X, -1)))
CASES.append(
    Case("thinc_trf_layers.pick_token.v1", {"token_index": 0}, ragged_input, "Ragged", expected=lambda X: _picked(X, 0), id="pick_token_first")
)
