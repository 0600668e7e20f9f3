"""The compiled segment kernels (``backends/_kernels.pyx``) against the xp-generic
backend, method by method, on hypothesis-drawn segments: tiled (a Ragged) and placed by
explicit starts in blocks (a padded batch), float32 and float64, NaN and ties, segments
on both sides of the max gradient's SCATTER_MIN_ROWS (16), widths that leave a remainder
after the vectorised part of each loop; and positions of a max that are out of range."""
from typing import Any, Optional, Tuple
from unittest import mock

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from thinc.api import NumpyOps, Ops

from thinc_trf_layers.backends import pooling
from thinc_trf_layers.backends.pooling import CompiledPoolingBackend, NumpyPoolingBackend, PoolingBackend

from helpers import streaming

TOL = {"float32": 1e-5, "float64": 1e-12}


def test_compiled_kernels_are_built() -> None:
    # `pip install` builds them optionally; our CI has a C compiler and must have them
    assert pooling.COMPILED is not None, "thinc_trf_layers.backends._kernels was not built"
    assert type(pooling.get_pooling_backend(NumpyOps())) is CompiledPoolingBackend


def test_compiled_kernels_are_current() -> None:
    """The built extension has every entry point its stub declares: the build is optional,
    so a failed compile would leave an older extension in place without a word."""
    import pathlib
    import re

    stub = pathlib.Path(pooling.__file__).with_name("_kernels.pyi").read_text()
    declared = set(re.findall(r"^def (\w+)\(", stub, re.M))
    assert declared, "no functions in _kernels.pyi"
    missing = sorted(name for name in declared if not hasattr(pooling.COMPILED, name))
    assert not missing, f"the built _kernels lacks {missing}: rebuild it (pip install -e .)"


@st.composite
def segments(draw: st.DrawFn) -> Tuple[Any, Any, Optional[Any], int]:
    """(X, lengths, starts, block): with starts None the segments tile X; else segment b
    is at rows starts[b].. within the block b * block .. (b + 1) * block - 1 of X."""
    B = draw(st.integers(1, 6))
    W = draw(st.sampled_from([1, 3, 4, 7, 8, 9, 17, 33]))
    lengths = numpy.asarray(draw(st.lists(st.integers(0, 19), min_size=B, max_size=B)), dtype="int64")
    padded = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    rng = numpy.random.RandomState(seed)
    if padded:
        block = int(lengths.max()) + draw(st.integers(0, 3))
        first = numpy.asarray([rng.randint(0, block - n + 1) for n in lengths], dtype="int64")
        starts: Optional[Any] = numpy.arange(B, dtype="int64") * block + first
        n_rows = B * block
    else:
        block, starts, n_rows = 0, None, int(lengths.sum())
    # small integers: ties are common, and sums are exact in either dtype
    X = rng.randint(-4, 5, size=(n_rows, W)).astype("float64")
    if X.size and draw(st.booleans()):
        X.reshape(-1)[rng.randint(X.size, size=3)] = numpy.nan
    return X, lengths, starts, block


def _backends() -> Tuple[PoolingBackend, PoolingBackend]:
    return CompiledPoolingBackend(NumpyOps()), PoolingBackend(Ops())


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=60)
@given(case=segments(), weighted=st.booleans())
def test_forward_kernels_match_the_generic_backend(dtype: str, case: Any, weighted: bool) -> None:
    X, lengths, starts, _ = case
    X = X.astype(dtype)
    fast, generic = _backends()
    nonempty = lengths > 0
    assert_allclose(
        fast.segment_sum(X, lengths, weighted=weighted, starts=starts),
        generic.segment_sum(X, lengths, weighted=weighted, starts=starts),
        rtol=TOL[dtype], atol=TOL[dtype],
    )
    Yf, wf = fast.segment_max(X, lengths, starts=starts)
    Yg, wg = generic.segment_max(X, lengths, starts=starts)
    assert Yf.dtype == X.dtype and wf.dtype.kind == "i"
    assert_array_equal(Yf, Yg)  # NaN where the generic one has NaN, zeros for empty rows
    assert_array_equal(wf[nonempty], wg[nonempty])  # the first maximum, or the first NaN
    sums, maxes, which = fast.segment_sum_max(X, lengths, starts=starts)
    assert_allclose(sums, generic.segment_sum(X, lengths, starts=starts), rtol=TOL[dtype], atol=TOL[dtype])
    assert_array_equal(maxes, Yf)
    assert_array_equal(which, wf)
    # a scale per segment (a mean's 1 / n): applied to the sums, written into [sums | max]
    scale = (1.0 / numpy.maximum(lengths, 1)).astype(dtype)
    assert_allclose(
        fast.segment_sum(X, lengths, weighted=weighted, starts=starts, scale=scale),
        generic.segment_sum(X, lengths, weighted=weighted, starts=starts, scale=scale),
        rtol=TOL[dtype], atol=TOL[dtype],
    )
    Yf, wf = fast.segment_mean_max(X, lengths, scale, starts=starts)
    Yg, wg = generic.segment_mean_max(X, lengths, scale, starts=starts)
    assert Yf.shape == (len(lengths), 2 * X.shape[1]) and Yf.dtype == X.dtype
    assert_allclose(Yf, Yg, rtol=TOL[dtype], atol=TOL[dtype])
    assert_array_equal(wf[nonempty], wg[nonempty])


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("stream", [False, True], ids=["stores", "streaming-stores"])
@settings(max_examples=60)
@given(case=segments(), weighted=st.booleans(), seed=st.integers(0, 2**16))
def test_gradient_kernels_match_the_generic_backend(
    dtype: str, stream: bool, case: Any, weighted: bool, seed: int
) -> None:
    with streaming(stream):
        _check_gradient_kernels(dtype, case, weighted, seed)


def _check_gradient_kernels(dtype: str, case: Any, weighted: bool, seed: int) -> None:
    X, lengths, starts, block = case
    X = numpy.nan_to_num(X).astype(dtype)
    n_rows = int(X.shape[0])
    B, W = int(lengths.shape[0]), int(X.shape[1])
    rng = numpy.random.RandomState(seed)
    d_sum = rng.uniform(-1, 1, (B, W)).astype(dtype)
    d_max = rng.uniform(-1, 1, (B, W)).astype(dtype)
    fast, generic = _backends()
    _, which = fast.segment_max(X, lengths, starts=starts)
    _, which_g = generic.segment_max(X, lengths, starts=starts)
    # garbage at the padding must be overwritten: the kernels write every row once
    got = fast.sum_backprop(d_sum, lengths, n_rows, weighted=weighted, starts=starts, block=block)
    want = generic.sum_backprop(d_sum, lengths, n_rows, weighted=weighted, starts=starts, block=block)
    assert got.shape == (n_rows, W) and got.dtype == X.dtype
    assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])
    got = fast.max_backprop(d_max, which, lengths, n_rows, starts=starts, block=block)
    want = generic.max_backprop(d_max, which_g, lengths, n_rows, starts=starts, block=block)
    assert_array_equal(got, want)
    got = fast.sum_max_backprop(d_sum, d_max, which, lengths, n_rows, starts=starts, block=block)
    want = generic.sum_max_backprop(d_sum, d_max, which_g, lengths, n_rows, starts=starts, block=block)
    assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])
    # scaled, and (mean_max) both halves read from one (B, 2W) gradient in place
    scale = (1.0 / numpy.maximum(lengths, 1)).astype(dtype)
    got = fast.sum_backprop(d_sum, lengths, n_rows, weighted=weighted, starts=starts, block=block, scale=scale)
    want = generic.sum_backprop(d_sum, lengths, n_rows, weighted=weighted, starts=starts, block=block, scale=scale)
    assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])
    dY = numpy.concatenate([d_sum, d_max], axis=1)
    got = fast.mean_max_backprop(dY, which, lengths, n_rows, scale, starts=starts, block=block)
    want = generic.mean_max_backprop(dY, which_g, lengths, n_rows, scale, starts=starts, block=block)
    assert got.dtype == X.dtype
    assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
def test_compiled_backend_hands_other_dtypes_and_layouts_on() -> None:
    fast = CompiledPoolingBackend(NumpyOps())
    X = numpy.asarray([[1.0, 4.0], [3.0, 2.0], [5.0, 0.5]])
    lengths = numpy.asarray([2, 1], dtype="int32")
    for dtype in ("float16", "float32", "float64"):
        Xd = X.astype(dtype)
        Y, which = fast.segment_max(Xd, lengths)
        assert Y.dtype == Xd.dtype
        assert_array_equal(Y, [[3.0, 4.0], [5.0, 0.5]])
        assert_array_equal(which, [[1, 0], [0, 0]])
        assert_array_equal(fast.segment_sum(Xd, lengths, weighted=True), [[7.0, 8.0], [5.0, 0.5]])
    # not C-contiguous: the kernels get a contiguous copy
    Xf = numpy.asfortranarray(X)
    assert_array_equal(fast.segment_sum(Xf, lengths), [[4.0, 6.0], [5.0, 0.5]])
    # a gradient whose rows are not contiguous (a transposed view) is copied first
    dT = numpy.asarray([[1.0, 2.0], [3.0, 4.0]]).T
    assert_array_equal(fast.sum_backprop(dT, lengths, 3), [[1.0, 3.0], [1.0, 3.0], [2.0, 4.0]])
    # a float16 gradient, or positions of another int dtype, go to the NumPy kernels
    d = numpy.ones((2, 2), dtype="float16")
    dX = fast.max_backprop(d, numpy.asarray([[1, 0], [0, 0]]), lengths, 3)
    assert dX.dtype == numpy.float16
    assert_array_equal(dX, [[0, 1], [1, 0], [1, 1]])


def test_without_the_compiled_kernels_numpy_ops_get_the_numpy_backend(monkeypatch: Any) -> None:
    ops = NumpyOps()
    monkeypatch.setattr(pooling, "COMPILED", None)
    assert type(pooling.get_pooling_backend(ops)) is NumpyPoolingBackend
    with pytest.raises(ImportError, match="_kernels"):
        CompiledPoolingBackend(ops)
    monkeypatch.undo()
    if pooling.COMPILED is not None:
        # the cache notices the switch back
        assert type(pooling.get_pooling_backend(ops)) is CompiledPoolingBackend


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
def test_kernels_refuse_rows_that_are_not_contiguous() -> None:
    kernels = pooling.COMPILED
    X = numpy.ones((3, 2), dtype="float32")
    starts = numpy.asarray([0, 2], dtype="int64")
    lengths = numpy.asarray([2, 1], dtype="int64")
    no_scale = numpy.empty((0,), dtype="float32")
    out = numpy.zeros((2, 2), dtype="float32").T  # columns are contiguous, rows are not
    with pytest.raises(ValueError, match="segment_sum: out: each row must be contiguous"):
        kernels.segment_sum(X, starts, lengths, out, False, no_scale)
    # a column block of a wider array is fine: rows contiguous, 4 elements apart
    wide = numpy.zeros((2, 4), dtype="float32")
    kernels.segment_sum(X, starts, lengths, wide[:, 2:], False, no_scale)
    assert_array_equal(wide, [[0, 0, 2, 2], [0, 0, 1, 1]])


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
def test_kernels_check_shapes_and_bounds_before_touching_memory() -> None:
    kernels = pooling.COMPILED
    X = numpy.ones((4, 3), dtype="float32")
    lengths = numpy.asarray([2, 2], dtype="int64")
    good = numpy.asarray([0, 2], dtype="int64")
    none = numpy.empty((0,), dtype="float32")
    out = numpy.zeros((2, 3), dtype="float32")
    which = numpy.zeros((2, 3), dtype="int32")
    no_rows = numpy.empty((0, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"segment_sum: segment 1 \(start 3, length 2\) is outside rows 0..3"):
        kernels.segment_sum(X, numpy.asarray([0, 3], dtype="int64"), lengths, out, False, none)
    with pytest.raises(ValueError, match=r"segment_max: segment 0 \(start -1, length 2\)"):
        kernels.segment_max(X, numpy.asarray([-1, 2], dtype="int64"), lengths, out, which, no_rows, none)
    with pytest.raises(ValueError, match=r"segment_sum: 1 starts for 2 lengths"):
        kernels.segment_sum(X, good[:1].copy(), lengths, out, False, none)
    with pytest.raises(ValueError, match=r"segment_max: which: expected shape \(2, 3\), got \(1, 3\)"):
        kernels.segment_max(X, good, lengths, out, which[:1].copy(), no_rows, none)
    with pytest.raises(ValueError, match=r"segment_sum: expected 2 scale factors \(or none\), got 3"):
        kernels.segment_sum(X, good, lengths, out, False, numpy.ones(3, dtype="float32"))
    dX = numpy.empty((4, 3), dtype="float32")
    d = numpy.ones((2, 3), dtype="float32")
    # blocks of 3 rows: 2 blocks need 6 rows
    with pytest.raises(ValueError, match=r"segment_fill: 2 blocks of 3 rows do not fit in 4 rows"):
        kernels.segment_fill(dX, good, lengths, 3, d, none, False, no_rows, which)
    # a segment that leaves its block of 2 rows
    with pytest.raises(ValueError, match=r"segment_fill: segment 0 \(start 1, length 2\) is outside rows 0..1"):
        kernels.segment_fill(dX, numpy.asarray([1, 2], dtype="int64"), lengths, 2, d, none, False, no_rows, which)
    with pytest.raises(ValueError, match=r"segment_fill: give d_sum, d_max or both"):
        kernels.segment_fill(dX, good, lengths, 0, no_rows, none, False, no_rows, which)
    kernels.segment_fill(dX, good, lengths, 2, d, none, True, no_rows, which)
    assert_array_equal(dX, [[1, 1, 1], [2, 2, 2], [1, 1, 1], [2, 2, 2]])
    with pytest.raises(ValueError, match="are not 3 parts"):
        kernels.concat_rows(numpy.empty((2, 8), dtype="uint8"), [numpy.zeros((2, 2), dtype="uint8")] * 3)


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 2.5, 0.5])
@settings(max_examples=30)
@given(case=segments(), seed=st.integers(0, 2**16))
def test_gem_kernels_match_the_generic_layer(dtype: str, p: float, case: Any, seed: int) -> None:
    """reduce_gem on NumpyOps (the compiled gem_sum / gem_grad) against the same layer on
    the generic Ops (xp code): values at and below eps, NaN, empty rows."""
    from thinc.types import Ragged

    from thinc_trf_layers import reduce_gem

    X, lengths, starts, _ = case
    if starts is not None:
        return  # gem works on a Ragged: the tiled cases only
    X = (X / 4).astype(dtype)
    results = []
    for ops in (NumpyOps(), Ops()):
        model = reduce_gem(p)
        model.ops = ops
        R = Ragged(ops.asarray(X), ops.asarray(lengths.astype("int32")))
        Y, backprop = model(R, is_train=True)
        dY = numpy.random.RandomState(seed).uniform(-1, 1, Y.shape).astype(dtype)
        results.append((Y, backprop(dY).dataXd))
    (Yc, dXc), (Yg, dXg) = results
    tol = 1e-4 if dtype == "float32" else 1e-10
    assert_allclose(Yc, Yg, rtol=tol, atol=tol)
    assert_allclose(dXc, dXg, rtol=tol, atol=tol)
    assert_array_equal(numpy.isnan(dXc), numpy.isnan(dXg))


@st.composite
def pieces_batches(draw: st.DrawFn) -> Tuple[Any, Any, Any, Any, Any, Any, Any, int]:
    """Padded arrays (spans, L, W) and the pieces of their real rows: one output row per
    array (its spans in order, some empty), as the pieces kernels take them; widths around
    the kernels' column blocks (32), rows on both sides of SCATTER_MIN_ROWS (16), NaN and
    ties."""
    n_arrays = draw(st.integers(1, 4))
    W = draw(st.sampled_from([1, 5, 31, 32, 33, 64, 70]))
    rng = numpy.random.RandomState(draw(st.integers(0, 2**16)))
    arrays, block, starts, lengths, seg_ptr, tiles, grad_starts = [], [], [], [], [0], [0], []
    n_rows = 0
    for a in range(n_arrays):
        S, L = draw(st.integers(0, 3)), draw(st.sampled_from([1, 2, 6, 8, 9, 16, 17, 25]))
        X = rng.randint(-3, 4, size=(S * L, W)).astype("float64")
        if X.size and draw(st.booleans()):
            X.reshape(-1)[rng.randint(X.size, size=2)] = numpy.nan
        arrays.append(X)
        for s in range(S):
            n = int(rng.randint(0, L + 1))
            f = int(rng.randint(0, L - n + 1))
            block.append(a)
            starts.append(s * L + f)
            lengths.append(n)
            grad_starts.append(n_rows + s * L + f)
            tiles.append(n_rows + (s + 1) * L)
        seg_ptr.append(len(lengths))
        n_rows += S * L
    i64 = lambda v: numpy.asarray(v, dtype="int64")  # noqa: E731
    return arrays, i64(block), i64(starts), i64(lengths), i64(seg_ptr), i64(tiles), i64(grad_starts), n_rows


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("stream", [False, True], ids=["stores", "streaming-stores"])
@settings(max_examples=60)
@given(case=pieces_batches(), seed=st.integers(0, 2**16))
def test_pieces_kernels_match_the_generic_backend_on_the_gathered_rows(
    dtype: str, stream: bool, case: Any, seed: int
) -> None:
    """pieces_sum / pieces_max / pieces_fill against the generic backend's segment
    kernels on the same rows gathered into a Ragged, and the gradient scattered back;
    the fill with plain and with streaming stores."""
    with streaming(stream):
        _check_pieces_kernels(dtype, case, seed)


def _check_pieces_kernels(dtype: str, case: Any, seed: int) -> None:
    arrays, block, starts, lengths, seg_ptr, tiles, grad_starts, n_rows = case
    K = pooling.COMPILED
    assert K is not None
    arrays = [a.astype(dtype) for a in arrays]
    W = int(arrays[0].shape[1])
    B = int(seg_ptr.shape[0]) - 1
    gen = PoolingBackend(Ops())
    rows = [arrays[a][s : s + n] for a, s, n in zip(block.tolist(), starts.tolist(), lengths.tolist())]
    data = numpy.concatenate(rows) if rows else numpy.zeros((0, W), dtype=dtype)
    seg_lengths = numpy.asarray([int(lengths[p0:p1].sum()) for p0, p1 in zip(seg_ptr[:-1], seg_ptr[1:])])
    scale = numpy.random.RandomState(seed).uniform(0.5, 2, B).astype(dtype)
    tol = TOL[dtype]
    for weighted in (False, True):
        out = numpy.full((B, W), 9, dtype=dtype)
        K.pieces_sum(arrays, block, starts, lengths, seg_ptr, out, weighted, scale)
        want = gen.segment_sum(data, seg_lengths, weighted=weighted, scale=scale)
        assert_allclose(out, want, rtol=tol, atol=tol)
    Y = numpy.full((B, 2 * W), 9, dtype=dtype)
    which = numpy.full((B, W), 9, dtype="int32")
    K.pieces_max(arrays, block, starts, lengths, seg_ptr, Y[:, W:], which, Y[:, :W], scale)
    m, w = gen.segment_max(data, seg_lengths)
    assert_array_equal(Y[:, W:], m)
    assert_array_equal(which, numpy.where(seg_lengths[:, None] > 0, w, 0))
    assert_allclose(Y[:, :W], gen.segment_sum(data, seg_lengths, scale=scale), rtol=tol, atol=tol)
    # the max alone (no sums) takes its own path through the kernel
    Ym = numpy.full((B, W), 9, dtype=dtype)
    which_m = numpy.full((B, W), 9, dtype="int32")
    K.pieces_max(arrays, block, starts, lengths, seg_ptr, Ym, which_m, numpy.empty((0, W), dtype=dtype), scale)
    assert_array_equal(Ym, m)
    assert_array_equal(which_m, which)
    # the gradient: every row of the buffer written, real rows as the generic backprop
    d = numpy.random.RandomState(seed).uniform(-1, 1, (B, 2 * W)).astype(dtype)
    dX = numpy.full((n_rows, W), 9, dtype=dtype)
    K.pieces_fill(dX, tiles, grad_starts, lengths, seg_ptr, d[:, :W], scale, False, d[:, W:], which)
    want_rows = gen.sum_max_backprop(
        (d[:, :W] * scale[:, None]).astype(dtype), numpy.ascontiguousarray(d[:, W:]), which, seg_lengths,
        int(data.shape[0]),
    )
    want = numpy.zeros((n_rows, W), dtype=dtype)
    at = 0
    for g, n in zip(grad_starts.tolist(), lengths.tolist()):
        want[g : g + n] = want_rows[at : at + n]
        at += n
    assert_allclose(dX, want, rtol=tol, atol=tol)
    # the sum's gradient alone, and the max's alone
    no_rows = numpy.empty((0, W), dtype=dtype)
    for d_sum, d_max, kind in ((d[:, :W], no_rows, "sum"), (no_rows, d[:, W:], "max")):
        dX = numpy.full((n_rows, W), 9, dtype=dtype)
        K.pieces_fill(dX, tiles, grad_starts, lengths, seg_ptr, d_sum, scale, False, d_max, which)
        if kind == "sum":
            want_rows = gen.sum_backprop((d[:, :W] * scale[:, None]).astype(dtype), seg_lengths, int(data.shape[0]))
        else:
            want_rows = gen.max_backprop(numpy.ascontiguousarray(d[:, W:]), which, seg_lengths, int(data.shape[0]))
        want = numpy.zeros((n_rows, W), dtype=dtype)
        at = 0
        for g, n in zip(grad_starts.tolist(), lengths.tolist()):
            want[g : g + n] = want_rows[at : at + n]
            at += n
        assert_allclose(dX, want, rtol=tol, atol=tol, err_msg=kind)


def _fill_reference(
    n_rows: int, W: int, rows: Any, d_sum: Optional[Any], d_max: Any, which: Any, dtype: Any
) -> Any:
    """The gradient every fill must write, element by element: ``rows[b]`` lists output row
    b's rows of dX in position order; a ``which`` that is no position of its row adds
    nothing. Rows of no output row: zeros."""
    dX = numpy.zeros((n_rows, W), dtype=dtype)
    for b, rs in enumerate(rows):
        for k, r in enumerate(rs):
            base = d_sum[b].copy() if d_sum is not None else numpy.zeros(W, dtype=dtype)
            dX[r] = numpy.where(which[b] == k, base + d_max[b], base).astype(dtype)
    return dX


OUT_OF_RANGE = [-1, -(2**31), 2**31 - 1, 1000]


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [15, 16, 17, 40])
@pytest.mark.parametrize("with_sum", [False, True])
@pytest.mark.parametrize("stream", [False, True], ids=["stores", "streaming-stores"])
def test_segment_fill_ignores_positions_out_of_range(dtype: str, n: int, with_sum: bool, stream: bool) -> None:
    """A max's position that is not in its segment (or is one past it) adds nothing and
    writes nothing outside dX, on both sides of SCATTER_MIN_ROWS; NaN and -0.0 in d_max;
    plain and streaming stores."""
    with streaming(stream):
        _check_segment_fill_out_of_range(dtype, n, with_sum)


def _check_segment_fill_out_of_range(dtype: str, n: int, with_sum: bool) -> None:
    K = pooling.COMPILED
    assert K is not None
    rng = numpy.random.RandomState(n)
    B, W, block = 2, 9, n + 3
    starts = numpy.asarray([1, block + 2], dtype="int64")
    which = rng.randint(0, n, size=(B, W)).astype("int32")
    which[0, : len(OUT_OF_RANGE) + 1] = OUT_OF_RANGE + [n]
    d_sum = rng.uniform(-1, 1, (B, W)).astype(dtype)
    d_max = rng.uniform(-1, 1, (B, W)).astype(dtype)
    d_max[1, 0], d_max[1, 1] = numpy.nan, -0.0
    guarded = numpy.full((B * block + 4, W), 5, dtype=dtype)
    dX = guarded[2:-2]
    no_rows = numpy.empty((0, W), dtype=dtype)
    lengths = numpy.asarray([n, n], dtype="int64")
    K.segment_fill(dX, starts, lengths, block, d_sum if with_sum else no_rows, numpy.empty((0,), dtype=dtype),
                   False, d_max, which)
    rows = [range(int(s), int(s) + n) for s in starts]
    want = _fill_reference(B * block, W, rows, d_sum if with_sum else None, d_max, which, dtype)
    assert_array_equal(dX, want)
    assert (guarded[:2] == 5).all() and (guarded[-2:] == 5).all()


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("stream", [False, True], ids=["stores", "streaming-stores"])
def test_pieces_fill_ignores_positions_out_of_range(dtype: str, stream: bool) -> None:
    """The same for pieces: random layouts with empty pieces and padding, output rows on
    both sides of SCATTER_MIN_ROWS, positions out of range or one past the end; plain and
    streaming stores, into a dX that starts off any 16-byte boundary."""
    with streaming(stream):
        _check_pieces_fill_out_of_range(dtype)


def _check_pieces_fill_out_of_range(dtype: str) -> None:
    K = pooling.COMPILED
    assert K is not None
    rng = numpy.random.RandomState(0)
    for _ in range(200):
        B, W = int(rng.randint(1, 4)), int(rng.choice([1, 5, 33]))
        tiles, starts, lengths, seg_ptr = [0], [], [], [0]
        for _ in range(B):
            for _ in range(rng.randint(0, 5)):
                n, pad = int(rng.choice([0, 0, 1, 3, 8, 17])), int(rng.randint(0, 3))
                starts.append(tiles[-1] + int(rng.randint(0, pad + 1)))
                lengths.append(n)
                tiles.append(tiles[-1] + n + pad)
            seg_ptr.append(len(lengths))
        N = tiles[-1]
        if N == 0:
            continue
        rows = [
            [r for p in range(seg_ptr[b], seg_ptr[b + 1]) for r in range(starts[p], starts[p] + lengths[p])]
            for b in range(B)
        ]
        which = numpy.stack([rng.randint(0, max(len(rs), 1), size=W) for rs in rows]).astype("int32")
        for b, rs in enumerate(rows):
            which[b, rng.randint(W)] = OUT_OF_RANGE[rng.randint(len(OUT_OF_RANGE))]
            which[b, rng.randint(W)] = len(rs)  # one past the end
        d_sum = rng.uniform(-1, 1, (B, W)).astype(dtype)
        d_max = rng.uniform(-1, 1, (B, W)).astype(dtype)
        i64 = lambda v: numpy.asarray(v, dtype="int64")  # noqa: E731
        for ds in (d_sum, None):
            guarded = numpy.full((N + 4, W), 5, dtype=dtype)
            dX = guarded[2:-2]
            K.pieces_fill(dX, i64(tiles), i64(starts), i64(lengths), i64(seg_ptr),
                          ds if ds is not None else numpy.empty((0, W), dtype=dtype),
                          numpy.empty((0,), dtype=dtype), False, d_max, which)
            assert_array_equal(dX, _fill_reference(N, W, rows, ds, d_max, which, dtype))
            assert (guarded[:2] == 5).all() and (guarded[-2:] == 5).all()


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("stream", [False, True], ids=["memset", "streaming-stores"])
def test_zero_fill_writes_zeros_only_where_it_is_told(stream: bool) -> None:
    """zero_fill on every start within a 64-byte line and sizes around the streamed runs'
    limits (4096 bytes, whole lines): zeros in the given bytes, the guard bytes on both
    sides untouched."""
    K = pooling.COMPILED
    assert K is not None
    with streaming(stream):
        for start in range(0, 66):
            for n in [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4095, 4096, 4097, 4160, 10000]:
                buf = numpy.full(start + n + 16, 7, dtype="uint8")
                K.zero_fill(buf[start : start + n])
                assert not buf[start : start + n].any()
                assert (buf[:start] == 7).all() and (buf[start + n :] == 7).all()


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
def test_stream_min_bytes_is_set_and_checked() -> None:
    K = pooling.COMPILED
    assert K is not None
    old = K.set_stream_min_bytes(123)
    try:
        assert K.set_stream_min_bytes(numpy.int64(456)) == 123
        for bad in (-1, 1.5, "1", None, True, 2**63, -(2**70)):
            with pytest.raises(ValueError, match=r"set_stream_min_bytes: expected a size in bytes"):
                K.set_stream_min_bytes(bad)
        assert K.set_stream_min_bytes(2**63 - 1) == 456
        assert K.set_stream_min_bytes(old) == 2**63 - 1
    finally:
        K.set_stream_min_bytes(old)


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
def test_zero_fill_refuses_what_is_not_contiguous_bytes() -> None:
    K = pooling.COMPILED
    assert K is not None
    with pytest.raises(ValueError):
        K.zero_fill(numpy.zeros(8, dtype="float32"))  # not bytes: view("uint8") first
    with pytest.raises(ValueError):
        K.zero_fill(numpy.zeros(16, dtype="uint8")[::2])
    with pytest.raises(TypeError):
        K.zero_fill(None)


@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("W", [7, 33])
@pytest.mark.parametrize("n", [1, 16, 17, 130])
def test_streamed_fills_of_long_segments_write_what_plain_stores_write(dtype: str, W: int, n: int) -> None:
    """Streamed fills (the padding as runs of zeros: whole 64-byte lines streamed in runs
    of 4096 bytes or more, the rest memset) of segments and pieces with short and long
    padding before and after them, the max's gradient added once the rows are written:
    sums, maxima and both, weighted, positions out of range; the same values as the plain
    stores (which the tests above hold to the generic backend), into a dX off any 16- or
    64-byte boundary, with rows that share cache lines."""
    K = pooling.COMPILED
    assert K is not None
    rng = numpy.random.RandomState(n * W)
    B = 3
    pads = [0, 1, 3, 150, 400]  # 150 rows of 7 float32 are 4200 bytes
    # segment_fill: segment b in block b, after a padding of its own
    block = n + 401
    starts = numpy.asarray([b * block + int(rng.choice(pads)) for b in range(B)], dtype="int64")
    seg_lengths = numpy.asarray([n, max(n // 2, 1), 0], dtype="int64")
    # pieces_fill: output row b is pieces of n and n // 2 + 1 rows, each in a tile with padding
    tiles, p_starts, p_lengths, seg_ptr = [0], [], [], [0]
    for _ in range(B):
        for m in (n, n // 2 + 1):
            before, after = int(rng.choice(pads)), int(rng.choice(pads))
            p_starts.append(tiles[-1] + before)
            p_lengths.append(m)
            tiles.append(tiles[-1] + before + m + after)
        seg_ptr.append(len(p_lengths))
    i64 = lambda v: numpy.asarray(v, dtype="int64")  # noqa: E731
    d_sum = rng.uniform(-1, 1, (B, W)).astype(dtype)
    d_max = rng.uniform(-1, 1, (B, W)).astype(dtype)
    scale = rng.uniform(0.5, 2, B).astype(dtype)
    no_rows = numpy.empty((0, W), dtype=dtype)
    for total, call in [
        (B * block, lambda dX, ds, dm, wh, weighted: K.segment_fill(
            dX, starts, seg_lengths, block, ds, scale, weighted, dm, wh)),
        (tiles[-1], lambda dX, ds, dm, wh, weighted: K.pieces_fill(
            dX, i64(tiles), i64(p_starts), i64(p_lengths), i64(seg_ptr), ds, scale, weighted, dm, wh)),
    ]:
        positions = 2 * n + 2  # at most a row's positions over its pieces
        which = rng.randint(0, positions, size=(B, W)).astype("int32")
        which[:, 0] = [-1, positions, 2**31 - 1][:B]
        for ds, dm, weighted in [(d_sum, no_rows, False), (d_sum, no_rows, True), (no_rows, d_max, False),
                                 (d_sum, d_max, False)]:
            out = []
            for stream in (False, True):
                guarded = numpy.full((total * W + 2 * 19,), 5, dtype=dtype)  # 19: off every boundary
                dX = guarded[19:-19].reshape(total, W)
                with streaming(stream):
                    call(dX, ds, dm, which if dm.shape[0] else numpy.empty((0, W), dtype="int32"), weighted)
                assert (guarded[:19] == 5).all() and (guarded[-19:] == 5).all()
                out.append(dX)
            assert_array_equal(out[1], out[0])
            assert out[0].any()


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "no-compiled"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32"])
def test_backend_zeros_are_zeros_of_the_size_and_dtype(compiled: bool, dtype: str) -> None:
    """pooling.zeros: the kernels' zero_fill below LAZY_ZEROS_BYTES (streamed from the
    threshold on), numpy.zeros above it and without the kernels; and memory that held
    something else comes back as zeros."""
    sizes = [0, 1, 1000, 5 << 20]  # 5 Mi elements: 10-40 MiB, below and above the thresholds
    with mock.patch.object(pooling, "COMPILED", pooling.COMPILED if compiled else None), streaming(True):
        for size in sizes:
            junk = numpy.full((size,), 7, dtype=dtype)  # freed just before: its memory may come back
            del junk
            z = pooling.zeros(numpy, size, dtype)
            assert z.shape == (size,) and z.dtype == numpy.dtype(dtype) and not z.any()
    assert pooling.LAZY_ZEROS_BYTES == 32 << 20
    assert pooling.stream_min_bytes() > 0


def test_stream_min_bytes_follows_the_l3_cache(monkeypatch: Any) -> None:
    monkeypatch.setattr(pooling, "l3_cache_bytes", lambda: 32 << 20)
    assert pooling.stream_min_bytes() == 16 << 20
    monkeypatch.setattr(pooling, "l3_cache_bytes", lambda: None)
    assert pooling.stream_min_bytes() == 16 << 20
    monkeypatch.setattr(pooling, "l3_cache_bytes", lambda: 8 << 20)
    assert pooling.stream_min_bytes() == 4 << 20
