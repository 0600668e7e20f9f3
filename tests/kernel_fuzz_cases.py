"""Hostile calls of the compiled kernels, run in a child process by
``test_hostile_inputs.py`` (a crash there must fail a test, not kill pytest).

``python kernel_fuzz_cases.py KERNEL`` calls ``KERNEL`` (segment_sum, segment_max,
segment_fill, concat_rows, pieces_sum, pieces_max, pieces_fill, gem_sum, gem_grad) with extreme integers as starts, lengths, blocks and shapes,
and prints one JSON line before each call (``{"start": id}``) and one after it
(``{"id": id, "got": ..., "want": ...}``): ``got`` is "ok" (the call returned the
reference result), "wrong" (it returned something else), "ValueError" or another
exception's name; ``want`` is "ok" where the call is valid (worked out with Python ints,
which do not overflow) and "ValueError" otherwise. A crash leaves a "start" line without
its answer.
"""
import itertools
import json
import sys
from typing import Any, Callable, Iterator, List, Optional, Tuple

import numpy

from thinc_trf_layers.backends import _kernels as K

I64_MAX = 2**63 - 1
#: int64 values that break sums and products: around 2**31, 2**32, 2**62, 2**63, and
#: values whose sum with a small start wraps to a small (passing) number.
EXTREMES = sorted(
    {
        0, 1, 2, 3, 5, 6, 7, -1, -2,
        2**31 - 1, 2**31, 2**31 + 1, -(2**31), -(2**31) - 1, 2**32, 2**32 + 1,
        2**62, 2**62 + 1, -(2**62), I64_MAX, I64_MAX - 1, I64_MAX - 5, -(2**63), -(2**63) + 1,
    }
)
#: Blocks as a caller might pass them: beyond int64, numpy ints, not ints at all.
BLOCKS: List[Any] = EXTREMES + [
    2**63, 2**64, 2**64 + 3, -(2**63) - 1, numpy.int64(3), numpy.uint64(2**63), 3.0, None, "3"
]
N_ROWS, W = 6, 3
#: The rows of a zero-width float64 array NumPy still creates (its byte size must fit).
HUGE = 2**59
MAX_POS = 2**31 - 1


def _valid(starts: List[int], lengths: List[int], n_rows: int, block: int = 0, positions: bool = False) -> bool:
    """Whether every segment lies in its rows (its block), in Python ints."""
    B = len(lengths)
    if block < 0 or (block > 0 and B * block > n_rows):
        return False
    for b, (s, n) in enumerate(zip(starts, lengths)):
        lo, hi = (b * block, (b + 1) * block) if block > 0 else (0, n_rows)
        if n < 0 or s < lo or s + n > hi or (positions and n > MAX_POS):
            return False
    return True


def _data(rows: int = N_ROWS, dtype: str = "float32") -> Any:
    return numpy.arange(rows * W, dtype=dtype).reshape(rows, W) % 5 - 2


def _i64(values: List[int]) -> Any:
    return numpy.asarray(values, dtype="int64")


Case = Tuple[str, Callable[[], bool], bool]


def _sum_cases() -> Iterator[Case]:
    X = _data()
    none = numpy.empty((0,), dtype="float32")
    for s, n in itertools.product(EXTREMES, EXTREMES):
        for weighted in (False, True):

            def call(s: int = s, n: int = n, weighted: bool = weighted) -> bool:
                out = numpy.full((1, W), 9, dtype="float32")
                K.segment_sum(X, _i64([s]), _i64([n]), out, weighted, none)
                w = numpy.arange(1, n + 1, dtype="float32")[:, None] if weighted else 1.0
                return bool(numpy.array_equal(out[0], (X[s : s + n] * w).sum(axis=0)))

            yield f"sum start={s} length={n} weighted={weighted}", call, _valid([s], [n], N_ROWS)
    # two segments, the second hostile: the first must not hide it
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call2(s: int = s, n: int = n) -> bool:
            out = numpy.full((2, W), 9, dtype="float32")
            K.segment_sum(X, _i64([0, s]), _i64([2, n]), out, False, none)
            return bool(numpy.array_equal(out, [X[:2].sum(0), X[s : s + n].sum(0)]))

        yield f"sum starts=[0, {s}] lengths=[2, {n}]", call2, _valid([0, s], [2, n], N_ROWS)
    # rows no real array could hold, without allocating them: a zero-width X of 2**59 rows
    huge = numpy.empty((HUGE, 0), dtype="float64")
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call3(s: int = s, n: int = n) -> bool:
            K.segment_sum(huge, _i64([s]), _i64([n]), numpy.empty((1, 0)), False, numpy.empty((0,)))
            return True

        yield f"sum (2**59, 0) start={s} length={n}", call3, _valid([s], [n], HUGE)


def _max_reference(X: Any, s: int, n: int) -> Tuple[Any, Any]:
    if n == 0:
        return numpy.zeros((W,), X.dtype), numpy.zeros((W,), "int32")
    seg = X[s : s + n]
    return seg.max(axis=0), seg.argmax(axis=0).astype("int32")


def _max_cases() -> Iterator[Case]:
    X = _data(dtype="float64")
    none = numpy.empty((0,), dtype="float64")
    for s, n in itertools.product(EXTREMES, EXTREMES):
        for with_sums in (False, True):

            def call(s: int = s, n: int = n, with_sums: bool = with_sums) -> bool:
                out = numpy.full((1, W), 9.0)
                which = numpy.full((1, W), 9, dtype="int32")
                sums = numpy.full((1 if with_sums else 0, W), 9.0)
                K.segment_max(X, _i64([s]), _i64([n]), out, which, sums, none)
                m, w = _max_reference(X, s, n)
                ok = numpy.array_equal(out[0], m) and numpy.array_equal(which[0], w)
                return bool(ok and (not with_sums or numpy.array_equal(sums[0], X[s : s + n].sum(0))))

            yield f"max start={s} length={n} sums={with_sums}", call, _valid([s], [n], N_ROWS, positions=True)
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call2(s: int = s, n: int = n) -> bool:
            out = numpy.full((2, W), 9.0)
            which = numpy.zeros((2, W), dtype="int32")
            K.segment_max(X, _i64([1, s]), _i64([3, n]), out, which, numpy.empty((0, W)), none)
            m, w = _max_reference(X, s, n)
            return bool(numpy.array_equal(out[1], m) and numpy.array_equal(which[1], w))

        yield f"max starts=[1, {s}] lengths=[3, {n}]", call2, _valid([1, s], [3, n], N_ROWS, positions=True)
    # segments longer than an int32 position can count, in a zero-width X (no memory)
    huge = numpy.empty((HUGE, 0), dtype="float32")
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call3(s: int = s, n: int = n) -> bool:
            K.segment_max(
                huge, _i64([s]), _i64([n]), numpy.empty((1, 0), "float32"), numpy.empty((1, 0), "int32"),
                numpy.empty((0, 0), "float32"), numpy.empty((0,), "float32"),
            )
            return True

        yield f"max (2**59, 0) start={s} length={n}", call3, _valid([s], [n], HUGE, positions=True)


def _fill_reference(
    n_rows: int, starts: List[int], lengths: List[int], block: int, d: Any, with_max: Optional[Any]
) -> Any:
    """What segment_fill writes: rows outside every segment (block == 0) or block keep the
    sentinel 9."""
    ref = numpy.full((n_rows, W), 9.0)
    for b, (s, n) in enumerate(zip(starts, lengths)):
        if block > 0:
            ref[b * block : (b + 1) * block] = 0.0
        for k in range(n):
            row = d[b].copy()
            if with_max is not None:
                row = row + numpy.where(with_max[b] == k, d[b], 0.0)
            ref[s + k] = row
    return ref


def _fill_cases() -> Iterator[Case]:
    d = numpy.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    which = numpy.asarray([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype="int32")
    none = numpy.empty((0,), dtype="float64")
    no_rows = numpy.empty((0, W))
    for s, n in itertools.product(EXTREMES, EXTREMES):
        for with_max in (False, True):

            def call(s: int = s, n: int = n, with_max: bool = with_max) -> bool:
                dX = numpy.full((N_ROWS, W), 9.0)
                dm = d[:1] if with_max else no_rows
                K.segment_fill(dX, _i64([s]), _i64([n]), 0, d[:1], none, False, dm, which[:1])
                ref = _fill_reference(N_ROWS, [s], [n], 0, d[:1], which[:1] if with_max else None)
                return bool(numpy.array_equal(dX, ref))

            yield f"fill start={s} length={n} max={with_max}", call, _valid([s], [n], N_ROWS, 0, with_max)
    # blocks: B blocks of `block` rows, every segment at the start of its block
    for B, block in itertools.product((1, 2, 3), BLOCKS):
        for n in (0, 1, 2**62, I64_MAX):

            def call2(B: int = B, block: Any = block, n: int = n) -> bool:
                dX = numpy.full((N_ROWS, W), 9.0)
                blk = int(block)
                starts = [b * blk for b in range(B)]
                K.segment_fill(dX, _i64(starts), _i64([n] * B), block, d[:B], none, False, no_rows, which[:B])
                return bool(numpy.array_equal(dX, _fill_reference(N_ROWS, starts, [n] * B, blk, d[:B], None)))

            exact = isinstance(block, (int, numpy.integer)) and not isinstance(block, bool)
            starts_ok = exact and -(2**63) <= int(block) * (B - 1) <= I64_MAX and int(block) <= I64_MAX
            blk = int(block) if starts_ok else 0
            want = starts_ok and blk >= 1 and _valid([b * blk for b in range(B)], [n] * B, N_ROWS, blk)
            if starts_ok and int(block) == 0:
                want = _valid([0] * B, [n] * B, N_ROWS, 0)
            if not starts_ok:
                continue  # the starts themselves would not fit in int64
            yield f"fill B={B} block={block!r} length={n}", call2, want
    # a block that is not an int, or beyond int64: a ValueError, not an OverflowError
    for block in BLOCKS:
        if isinstance(block, (int, numpy.integer)) and -(2**63) <= int(block) <= I64_MAX:
            continue

        def call3(block: Any = block) -> bool:
            dX = numpy.full((N_ROWS, W), 9.0)
            K.segment_fill(dX, _i64([0]), _i64([1]), block, d[:1], none, False, no_rows, which[:1])
            return True

        yield f"fill block={block!r} (type {type(block).__name__})", call3, False
    # starts and lengths hostile within blocks of 3 rows (two blocks in 6 rows)
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call4(s: int = s, n: int = n) -> bool:
            dX = numpy.full((N_ROWS, W), 9.0)
            K.segment_fill(dX, _i64([0, s]), _i64([1, n]), 3, d[:2], none, False, d[:2], which[:2])
            return bool(numpy.array_equal(dX, _fill_reference(N_ROWS, [0, s], [1, n], 3, d[:2], which[:2])))

        yield f"fill block=3 starts=[0, {s}] lengths=[1, {n}]", call4, _valid([0, s], [1, n], N_ROWS, 3, True)
    # a zero-width dX of 2**59 rows: blocks and segments no real array could hold
    huge = numpy.empty((HUGE, 0))
    for block, n in itertools.product(EXTREMES, (0, 2**31 - 1, 2**31, 2**62)):
        for with_max in (False, True):
            if block < 0 or block * 2 > I64_MAX:
                continue

            def call5(block: int = block, n: int = n, with_max: bool = with_max) -> bool:
                dm = numpy.empty((2 if with_max else 0, 0))
                K.segment_fill(
                    huge, _i64([0, block]), _i64([n, n]), block, numpy.empty((2, 0)), numpy.empty((0,)),
                    False, dm, numpy.empty((2, 0), "int32"),
                )
                return True

            yield (
                f"fill (2**59, 0) block={block} lengths={n} max={with_max}", call5,
                _valid([0, block], [n, n], HUGE, block, with_max),
            )


def _concat_cases() -> Iterator[Case]:
    R = 3
    for k, out_w, part_rows, part_w in itertools.product(
        (1, 2, 3), (0, 1, 4, 7, 8, 12, 13), (0, 2, 3, 4), (0, 1, 3, 4, 5)
    ):

        def call(k: int = k, out_w: int = out_w, part_rows: int = part_rows, part_w: int = part_w) -> bool:
            parts = [numpy.full((part_rows, part_w), j + 1, dtype="uint8") for j in range(k)]
            out = numpy.zeros((R, out_w), dtype="uint8")
            K.concat_rows(out, parts)
            if out_w == 0:
                return bool((out == 0).all())
            return bool(numpy.array_equal(out, numpy.concatenate(parts, axis=1)))

        valid = out_w == 0 or (out_w % k == 0 and part_rows == R and part_w == out_w // k)
        yield f"concat k={k} out=(3, {out_w}) parts=({part_rows}, {part_w})", call, valid
    # zero-size arrays with shapes no real array of bytes could have
    for rows in (2**40, HUGE):

        def call2(rows: int = rows) -> bool:
            K.concat_rows(numpy.empty((rows, 0), "uint8"), [numpy.empty((rows, 0), "uint8")] * 3)
            return True

        yield f"concat out=({rows}, 0)", call2, True

        def call3(rows: int = rows) -> bool:
            K.concat_rows(numpy.empty((0, 6), "uint8"), [numpy.empty((rows, 0), "uint8")] * 3)
            return True

        yield f"concat out=(0, 6) parts=({rows}, 0)", call3, True

        def call4(rows: int = rows) -> bool:
            K.concat_rows(numpy.zeros((2, 6), "uint8"), [numpy.empty((rows, 0), "uint8")] * 3)
            return True

        yield f"concat out=(2, 6) parts=({rows}, 0)", call4, False


# --- the pieces kernels: output rows made of pieces of several arrays ----------------------


def _piece_ok(arrays_rows: List[int], block: int, s: int, n: int) -> bool:
    return 0 <= block < len(arrays_rows) and n >= 0 and 0 <= s and s + n <= arrays_rows[block]


def _seg_ptr_ok(seg_ptr: List[int], P: int) -> bool:
    return bool(seg_ptr) and seg_ptr[0] == 0 and seg_ptr[-1] == P and all(
        a <= b for a, b in zip(seg_ptr, seg_ptr[1:])
    )


def _pieces_arrays() -> List[Any]:
    return [_data(N_ROWS, "float64"), _data(4, "float64") + 1]


def _gathered(arrays: List[Any], pieces: List[Tuple[int, int, int]]) -> Any:
    return numpy.concatenate([arrays[a][s : s + n] for a, s, n in pieces]) if pieces else numpy.zeros((0, W))


def _pieces_sum_cases() -> Iterator[Case]:
    arrays = _pieces_arrays()
    rows = [int(a.shape[0]) for a in arrays]
    none = numpy.empty((0,))
    # one output row: a valid piece, then a hostile one (array, start, length)
    for blk, s, n in itertools.product((-1, 0, 1, 2, 2**31, I64_MAX, -(2**63)), EXTREMES, EXTREMES):
        if blk not in (0, 1) and (s, n) != (0, 1):
            continue  # a bad array index: one start and length is enough
        for weighted in (False, True):

            def call(blk: int = blk, s: int = s, n: int = n, weighted: bool = weighted) -> bool:
                out = numpy.full((1, W), 9.0)
                K.pieces_sum(arrays, _i64([0, blk]), _i64([1, s]), _i64([2, n]), _i64([0, 2]), out, weighted, none)
                g = _gathered(arrays, [(0, 1, 2), (blk, s, n)])
                w = numpy.arange(1, len(g) + 1)[:, None] if weighted else 1.0
                return bool(numpy.array_equal(out[0], (g * w).sum(axis=0)))

            yield (
                f"pieces_sum block={blk} start={s} length={n} weighted={weighted}", call,
                _piece_ok(rows, blk, s, n),
            )
    # hostile row offsets (seg_ptr) for two rows of one piece each
    for a, b, c in itertools.chain(
        ((0, x, 2) for x in EXTREMES), ((x, 1, 2) for x in EXTREMES), ((0, 1, x) for x in EXTREMES)
    ):

        def call2(a: int = a, b: int = b, c: int = c) -> bool:
            out = numpy.full((2, W), 9.0)
            K.pieces_sum(arrays, _i64([0, 1]), _i64([0, 1]), _i64([2, 3]), _i64([a, b, c]), out, False, none)
            g0, g1 = arrays[0][0:2], arrays[1][1:4]
            ref = [g0.sum(0) + g1.sum(0), numpy.zeros(W)] if b == 2 else (
                [numpy.zeros(W), g0.sum(0) + g1.sum(0)] if b == 0 else [g0.sum(0), g1.sum(0)]
            )
            return bool(numpy.array_equal(out, ref))

        yield f"pieces_sum seg_ptr=[{a}, {b}, {c}]", call2, _seg_ptr_ok([a, b, c], 2)
    # a zero-width array of 2**59 rows: pieces no real array could hold
    huge = [numpy.empty((HUGE, 0))]
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call3(s: int = s, n: int = n) -> bool:
            K.pieces_sum(huge, _i64([0]), _i64([s]), _i64([n]), _i64([0, 1]), numpy.empty((1, 0)), False, none)
            return True

        yield f"pieces_sum (2**59, 0) start={s} length={n}", call3, _piece_ok([HUGE], 0, s, n)


def _pieces_max_reference(g: Any) -> Tuple[Any, Any]:
    if len(g) == 0:
        return numpy.zeros((W,)), numpy.zeros((W,), "int32")
    return g.max(axis=0), g.argmax(axis=0).astype("int32")


def _pieces_max_cases() -> Iterator[Case]:
    arrays = _pieces_arrays()
    rows = [int(a.shape[0]) for a in arrays]
    none = numpy.empty((0,))
    for blk, s, n in itertools.product((-1, 0, 1, 2, 2**31, I64_MAX, -(2**63)), EXTREMES, EXTREMES):
        if blk not in (0, 1) and (s, n) != (0, 1):
            continue
        for with_sums in (False, True):

            def call(blk: int = blk, s: int = s, n: int = n, with_sums: bool = with_sums) -> bool:
                out = numpy.full((1, W), 9.0)
                which = numpy.full((1, W), 9, dtype="int32")
                sums = numpy.full((1 if with_sums else 0, W), 9.0)
                K.pieces_max(arrays, _i64([0, blk]), _i64([1, s]), _i64([2, n]), _i64([0, 2]), out, which, sums, none)
                g = _gathered(arrays, [(0, 1, 2), (blk, s, n)])
                m, w = _pieces_max_reference(g)
                ok = numpy.array_equal(out[0], m) and numpy.array_equal(which[0], w)
                return bool(ok and (not with_sums or numpy.array_equal(sums[0], g.sum(0))))

            yield (
                f"pieces_max block={blk} start={s} length={n} sums={with_sums}", call,
                _piece_ok(rows, blk, s, n),
            )
    for a, b, c in itertools.chain(
        ((0, x, 2) for x in EXTREMES), ((x, 1, 2) for x in EXTREMES), ((0, 1, x) for x in EXTREMES)
    ):

        def call2(a: int = a, b: int = b, c: int = c) -> bool:
            out = numpy.full((2, W), 9.0)
            which = numpy.zeros((2, W), dtype="int32")
            K.pieces_max(
                arrays, _i64([0, 1]), _i64([0, 1]), _i64([2, 3]), _i64([a, b, c]), out, which, numpy.empty((0, W)), none
            )
            return True

        yield f"pieces_max seg_ptr=[{a}, {b}, {c}]", call2, _seg_ptr_ok([a, b, c], 2)
    # rows longer than int32 positions, in a zero-width array (no memory): two pieces of
    # one row whose lengths add up past 2**31 - 1 are refused too
    huge = [numpy.empty((HUGE, 0))]
    for s, n in itertools.product(EXTREMES, EXTREMES):

        def call3(s: int = s, n: int = n) -> bool:
            K.pieces_max(
                huge, _i64([0, 0]), _i64([0, s]), _i64([2, n]), _i64([0, 2]), numpy.empty((1, 0)),
                numpy.empty((1, 0), "int32"), numpy.empty((0, 0)), none,
            )
            return True

        ok = _piece_ok([HUGE], 0, s, n) and 2 + n <= MAX_POS
        yield f"pieces_max (2**59, 0) starts=[0, {s}] lengths=[2, {n}]", call3, ok


def _pieces_fill_reference(
    tiles: List[int], starts: List[int], lengths: List[int], seg_ptr: List[int], d: Any, which: Optional[Any]
) -> Any:
    ref = numpy.zeros((tiles[-1], W))
    for b in range(len(seg_ptr) - 1):
        k0 = 0
        for p in range(seg_ptr[b], seg_ptr[b + 1]):
            for k in range(lengths[p]):
                row = d[b] * 1.0
                if which is not None:
                    row = row + numpy.where(which[b] == k0 + k, d[b], 0.0)
                ref[starts[p] + k] = row
            k0 += lengths[p]
    return ref


def _pieces_fill_cases() -> Iterator[Case]:
    d = numpy.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    which = numpy.asarray([[0, 1, 2], [1, 0, 0]], dtype="int32")
    none = numpy.empty((0,))
    no_rows = numpy.empty((0, W))
    # two pieces of one row tiling 6 rows at a hostile cut t; the second piece hostile
    for t, s, n in itertools.product(EXTREMES, EXTREMES, EXTREMES):
        if t not in (-1, 0, 1, 3, 6, 7, 2**62, I64_MAX) or (t != 3 and (s, n) != (3, 2)):
            continue
        for with_max in (False, True):

            def call(t: int = t, s: int = s, n: int = n, with_max: bool = with_max) -> bool:
                dX = numpy.full((N_ROWS, W), 9.0)
                K.pieces_fill(
                    dX, _i64([0, t, N_ROWS]), _i64([0, s]), _i64([1, n]), _i64([0, 2]), d[:1], none, False,
                    d[:1] if with_max else no_rows, which[:1],
                )
                ref = _pieces_fill_reference([0, t, N_ROWS], [0, s], [1, n], [0, 2], d[:1], which[:1] if with_max else None)
                return bool(numpy.array_equal(dX, ref))

            ok = 1 <= t <= N_ROWS and t <= s and n >= 0 and s + n <= N_ROWS and (not with_max or 1 + n <= MAX_POS)
            yield f"pieces_fill tiles=[0, {t}, 6] starts=[0, {s}] lengths=[1, {n}] max={with_max}", call, ok
    # hostile first and last tile offsets, and row offsets
    for a, c in itertools.product(EXTREMES, EXTREMES):
        if a not in (0, -1, 1, I64_MAX, -(2**63)) and c not in (6, 5, 7, I64_MAX, -(2**63)):
            continue

        def call2(a: int = a, c: int = c) -> bool:
            dX = numpy.full((N_ROWS, W), 9.0)
            K.pieces_fill(dX, _i64([a, 3, c]), _i64([0, 3]), _i64([1, 1]), _i64([0, 1, 2]), d, none, False, no_rows, which)
            return bool(numpy.array_equal(dX, _pieces_fill_reference([0, 3, 6], [0, 3], [1, 1], [0, 1, 2], d, None)))

        yield f"pieces_fill tiles=[{a}, 3, {c}]", call2, a == 0 and c == N_ROWS
    for a, b, c in itertools.chain(
        ((0, x, 2) for x in EXTREMES), ((x, 1, 2) for x in EXTREMES), ((0, 1, x) for x in EXTREMES)
    ):

        def call3(a: int = a, b: int = b, c: int = c) -> bool:
            dX = numpy.full((N_ROWS, W), 9.0)
            K.pieces_fill(dX, _i64([0, 3, 6]), _i64([0, 3]), _i64([1, 1]), _i64([a, b, c]), d, none, False, d, which)
            return bool(numpy.array_equal(dX, _pieces_fill_reference([0, 3, 6], [0, 3], [1, 1], [a, b, c], d, which)))

        yield f"pieces_fill seg_ptr=[{a}, {b}, {c}]", call3, _seg_ptr_ok([a, b, c], 2)
    # a zero-width dX of 2**59 rows
    huge = numpy.empty((HUGE, 0))
    for t, n in itertools.product(EXTREMES, EXTREMES):
        if n not in (0, 1, 2**31 - 2, 2**31 - 1, 2**31, 2**62, I64_MAX):
            continue

        def call4(t: int = t, n: int = n) -> bool:
            K.pieces_fill(
                huge, _i64([0, t, HUGE]), _i64([0, t]), _i64([2, n]), _i64([0, 2]), numpy.empty((1, 0)), none,
                False, numpy.empty((1, 0)), numpy.empty((1, 0), "int32"),
            )
            return True

        ok = 2 <= t <= HUGE and 0 <= n <= HUGE - t and 2 + n <= MAX_POS
        yield f"pieces_fill (2**59, 0) tiles=[0, {t}, 2**59] lengths=[2, {n}]", call4, ok


# --- the GeM kernels ------------------------------------------------------------------------


def _gem_cases(grad: bool) -> Iterator[Case]:
    X = numpy.abs(_data(N_ROWS, "float64")) + 0.5
    name = "gem_grad" if grad else "gem_sum"
    for lengths in itertools.chain(
        ([n] for n in EXTREMES), ([a, b] for a, b in itertools.product(EXTREMES, EXTREMES)),
        ([n, 6 - n] for n in EXTREMES if -(2**62) <= n <= 2**62),
        ([I64_MAX, I64_MAX, 8], [2**63 - 3, 9], [-(2**63), 2**62, 2**62, 6]),
    ):

        def call(lengths: List[int] = lengths) -> bool:
            B = len(lengths)
            if grad:
                d = numpy.arange(B * W, dtype="float64").reshape(B, W)
                dX = numpy.full((N_ROWS, W), 9.0)
                K.gem_grad(X, _i64(lengths), 3.0, 1e-6, d, dX)
                ref = X * X * numpy.repeat(d, lengths, axis=0)
                return bool(numpy.array_equal(dX, ref))
            out = numpy.full((B, W), 9.0)
            K.gem_sum(X, _i64(lengths), 3.0, 1e-6, out)
            ends = numpy.cumsum(lengths)
            return bool(numpy.array_equal(out, [(X[e - n : e] ** 2 * X[e - n : e]).sum(0) for n, e in zip(lengths, ends)]))

        ok = all(n >= 0 for n in lengths) and sum(lengths) == N_ROWS
        yield f"{name} lengths={lengths}", call, ok
    huge = numpy.empty((HUGE, 0))
    for n in EXTREMES:
        if HUGE - n > I64_MAX:
            continue  # the second length would not fit in int64

        def call2(n: int = n) -> bool:
            if grad:
                K.gem_grad(huge, _i64([n, HUGE - n]), 3.0, 1e-6, numpy.empty((2, 0)), huge)
            else:
                K.gem_sum(huge, _i64([n, HUGE - n]), 3.0, 1e-6, numpy.empty((2, 0)))
            return True

        yield f"{name} (2**59, 0) lengths=[{n}, 2**59 - {n}]", call2, 0 <= n <= HUGE


CASES = {
    "segment_sum": _sum_cases,
    "segment_max": _max_cases,
    "segment_fill": _fill_cases,
    "concat_rows": _concat_cases,
    "pieces_sum": _pieces_sum_cases,
    "pieces_max": _pieces_max_cases,
    "pieces_fill": _pieces_fill_cases,
    "gem_sum": lambda: _gem_cases(False),
    "gem_grad": lambda: _gem_cases(True),
}


def main(kernel: str) -> None:
    for i, (name, call, valid) in enumerate(CASES[kernel]()):
        print(json.dumps({"start": i, "case": name}), flush=True)
        try:
            got = "ok" if call() else "wrong"
        except Exception as e:  # noqa: BLE001 - reported to the parent, which decides
            got = type(e).__name__ + ": " + str(e)
        print(json.dumps({"id": i, "case": name, "got": got, "want": "ok" if valid else "ValueError"}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
