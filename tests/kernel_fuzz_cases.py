"""Hostile calls of the compiled kernels, run in a child process by
``test_hostile_inputs.py`` (a crash there must fail a test, not kill pytest).

``python kernel_fuzz_cases.py KERNEL`` calls ``KERNEL`` (pieces_sum, pieces_max,
pieces_fill, attention_grad, gem) with extreme integers as arrays, starts, lengths, row
offsets and positions, and prints one JSON line before each call (``{"start": case}``)
and one after it (``{"case": ..., "got": ..., "want": ...}``): ``got`` is "ok" (the call
returned the reference result), "wrong" (it returned something else), "ValueError: ..."
or another exception's name; ``want`` is "ok" where the call is valid (worked out with
Python ints, which do not overflow) and "ValueError" otherwise. A crash leaves a "start"
line without its answer.
"""
import itertools
import json
import sys
from typing import Any, Callable, Iterator, Tuple

import numpy

from thinc_trf_layers.backends import _kernels as K

#: int64 values that break sums and products: around 2**31, 2**32, 2**62, 2**63.
EXTREMES = sorted(
    {0, 1, 2, 3, 5, 6, 7, -1, -2, 2**31 - 1, 2**31, -(2**31), 2**32 + 1, 2**62, -(2**62),
     2**63 - 1, 2**63 - 5, -(2**63)}
)
N, W = 6, 3
X = (numpy.arange(N * W, dtype="float32").reshape(N, W) % 5) - 2
NONE1 = numpy.empty((0,), dtype="float32")
NONE2 = numpy.empty((0, W), dtype="float32")
Case = Tuple[str, Callable[[], bool], bool]


def i64(*values: int) -> Any:
    return numpy.asarray(values, dtype="int64")


def fits(s: int, n: int, rows: int) -> bool:
    return 0 <= s <= rows and 0 <= n <= rows - s


def sum_cases() -> Iterator[Case]:
    for a, s, n in itertools.product([0, 1, -1, 2**63 - 1], EXTREMES, EXTREMES):

        def call(a: int = a, s: int = s, n: int = n) -> bool:
            out = numpy.full((1, W), 9.0, dtype="float32")
            K.pieces_sum([X], i64(a), i64(s), i64(n), i64(0, 1), out, NONE1, NONE1)
            return bool(numpy.array_equal(out[0], X[s : s + n].sum(axis=0)))

        yield f"pieces_sum array={a} start={s} length={n}", call, a == 0 and fits(s, n, N)
    for last in EXTREMES:  # row offsets that do not end at the pieces

        def offsets(last: int = last) -> bool:
            K.pieces_sum([X], i64(0), i64(0), i64(2), i64(0, last), numpy.empty((1, W), "float32"), NONE1, NONE1)
            return True

        yield f"pieces_sum row_ptr=[0, {last}]", offsets, last == 1


def max_cases() -> Iterator[Case]:
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call(s: int = s, n: int = n) -> bool:
            out, which = numpy.full((1, W), 9.0, dtype="float32"), numpy.zeros((1, W), dtype="int32")
            K.pieces_max([X], i64(0), i64(s), i64(n), i64(0, 1), out, which, NONE2, NONE1)
            rows = X[s : s + n]
            want = rows.max(axis=0) if n else numpy.zeros(W, "float32")
            return bool(numpy.array_equal(out[0], want) and (not n or numpy.array_equal(which[0], rows.argmax(axis=0))))

        yield f"pieces_max start={s} length={n}", call, fits(s, n, N)


def fill_cases() -> Iterator[Case]:
    d = numpy.ones((1, W), dtype="float32")
    none_which = numpy.empty((0, W), "int32")
    for a, s, n in itertools.product([0, 1, -1, 2**63 - 1], EXTREMES, EXTREMES):

        def call(a: int = a, s: int = s, n: int = n) -> bool:
            dX = numpy.full((N, W), 9.0, dtype="float32")  # two arrays of 3 rows, stacked
            K.pieces_fill(dX, i64(0, 3, N), i64(a), i64(s), i64(n), i64(0, 1), d, NONE1, NONE1, NONE2, none_which)
            want = numpy.zeros((N, W), "float32")
            want[3 * a + s : 3 * a + s + n] = 1
            return bool(numpy.array_equal(dX, want))

        yield f"pieces_fill array={a} start={s} length={n}", call, a in (0, 1) and fits(s, n, 3)
    for offsets in ([0, 3, N], [0, N], [0, 7, N], [0, 4, 3], [1, N], [0, 3, 5]):

        def bad_offsets(offsets: Any = offsets) -> bool:
            dX = numpy.zeros((N, W), dtype="float32")
            K.pieces_fill(dX, i64(*offsets), i64(0), i64(0), i64(2), i64(0, 1), d, NONE1, NONE1, NONE2, none_which)
            return bool(numpy.array_equal(dX[:2], numpy.ones((2, W))) and not dX[2:].any())

        valid = offsets[0] == 0 and offsets[-1] == N and all(b >= a for a, b in zip(offsets, offsets[1:]))
        yield f"pieces_fill offsets={offsets}", bad_offsets, valid
    for q in [0, 2, 3, -1, 2**31 - 1, -(2**31)]:  # a max's position in or outside the piece

        def scatter(q: int = q) -> bool:
            dX = numpy.full((N, W), 9.0, dtype="float32")
            which = numpy.full((1, W), q, dtype="int32")
            K.pieces_fill(dX, i64(0, N), i64(0), i64(1), i64(3), i64(0, 1), NONE2, NONE1, NONE1, d, which)
            want = numpy.zeros((N, W), "float32")
            if 0 <= q < 3:
                want[1 + q] = 1
            return bool(numpy.array_equal(dX, want))

        yield f"pieces_fill which={q}", scatter, True


def tiling_cases(kernel: str) -> Iterator[Case]:
    for a, b in itertools.product(EXTREMES, EXTREMES):
        lengths = i64(a, b)

        def call(lengths: Any = lengths) -> bool:
            if kernel == "gem":
                out = numpy.empty((2, W), "float32")
                K.gem(X, lengths, 2.0, 1e-6, out, NONE2, NONE2)
                rows = [X[: int(lengths[0])], X[int(lengths[0]) :]]
                return bool(numpy.allclose(out, [(numpy.maximum(r, 1e-6) ** 2).sum(axis=0) for r in rows]))
            a_ = numpy.full((N,), 0.5, dtype="float32")
            dX, dq = numpy.empty((N, W), "float32"), numpy.empty((W,), "float32")
            K.attention_grad(X, lengths, a_, numpy.zeros((2, W), "float32"), numpy.zeros((2, W), "float32"),
                             numpy.zeros(W, "float32"), dX, dq)
            return not dX.any() and not dq.any()

        yield f"{kernel} lengths=[{a}, {b}]", call, a >= 0 and b >= 0 and a + b == N


CASES = {
    "pieces_sum": sum_cases, "pieces_max": max_cases, "pieces_fill": fill_cases,
    "attention_grad": lambda: tiling_cases("attention_grad"), "gem": lambda: tiling_cases("gem"),
}


def main(kernel: str) -> None:
    for case, call, valid in CASES[kernel]():
        print(json.dumps({"start": case}), flush=True)
        try:
            got = "ok" if call() else "wrong"
        except ValueError as err:
            got = f"ValueError: {err}"
        except Exception as err:  # noqa: BLE001
            got = type(err).__name__
        print(json.dumps({"case": case, "got": got, "want": "ok" if valid else "ValueError"}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
