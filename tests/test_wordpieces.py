"""The transformer-output core: Wordpieces, trf2ragged, trf_pool as its chain, pooling in
place on every backend, the container adapters (a fourth container needs only one)."""
import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, List, Tuple
from unittest import mock

import numpy
import pytest
import thinc.api
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from thinc.api import Model, NumpyOps, Ops, chain
from thinc.types import Ragged

from helpers import set_ops
from thinc_trf_layers import (
    ContainerAdapter,
    LayerGradientError,
    LayerInputError,
    TransformerOutput,
    Wordpieces,
    attention_pool,
    check_gradients,
    cls_pool,
    reduce_first,
    reduce_gem,
    reduce_last,
    reduce_max,
    reduce_mean,
    reduce_mean_max,
    reduce_mean_sqrt_len,
    reduce_sum,
    reduce_weighted_mean,
    register_adapter,
    trf2ragged,
    trf2tensor,
    trf_pool,
    with_padded_mask,
)
from thinc_trf_layers.backends import reduce as pooling_backends
from thinc_trf_layers.containers import DocTensor, unregister_adapter

POOLINGS: List[Tuple[str, Callable[[], Model[Ragged, Any]]]] = [
    ("sum", reduce_sum),
    ("mean", reduce_mean),
    ("mean_sqrt_len", reduce_mean_sqrt_len),
    ("weighted_mean", reduce_weighted_mean),
    ("max", reduce_max),
    ("mean_max", reduce_mean_max),
    ("first", reduce_first),
    ("last", reduce_last),
    ("attention", attention_pool),
    ("gem", lambda: reduce_gem(p=2.0)),
    ("thinc mean", thinc.api.reduce_mean),
]
NAMES = [name for name, _ in POOLINGS]
MAKE = dict(POOLINGS)
BACKENDS = ["compiled", "numpy", "generic"]


def backend_ops(name: str) -> Tuple[Ops, ContextManager[Any]]:
    """The Ops and context for a backend: NumpyOps with and without the compiled kernels,
    the generic Ops (the code CupyOps runs)."""
    if name == "generic":
        return Ops(), contextlib.nullcontext()
    if name == "numpy":
        return NumpyOps(), mock.patch.object(pooling_backends, "COMPILED", None)
    return NumpyOps(), contextlib.nullcontext()


@st.composite
def docs(draw: st.DrawFn, *, dtype: str = "float64", min_docs: int = 0, max_docs: int = 4) -> List[TransformerOutput]:
    """Batches of TransformerOutput: 0..3 spans per Doc (a long Doc in strided spans),
    empty spans and Docs, padding that holds 1e3, and distinct values 0.25 apart (no ties
    for a max, whatever the finite-difference step)."""
    width = draw(st.integers(1, 3))
    structure = []
    for _ in range(draw(st.integers(min_docs, max_docs))):
        n_pieces = draw(st.integers(1, 5))
        structure.append((n_pieces, draw(st.lists(st.integers(0, n_pieces), max_size=3))))
    rng = numpy.random.RandomState(draw(st.integers(0, 2**16)))
    total = sum(len(lens) * n for n, lens in structure) * width
    values = (rng.permutation(max(total, 1))[:total] * 0.25 - total * 0.125).astype(dtype)
    out, at = [], 0
    for n_pieces, lens in structure:
        size = len(lens) * n_pieces * width
        T = values[at : at + size].reshape(len(lens), n_pieces, width).copy()
        at += size
        for s, n in enumerate(lens):
            T[s, n:] = 1e3
        out.append(TransformerOutput(tensors=[T], lengths=numpy.asarray(lens, dtype="int32")))
    return out


def real_rows(Xs: List[TransformerOutput], width: int, dtype: Any) -> Ragged:
    rows = [
        numpy.concatenate([X.tensors[0][s, :n] for s, n in enumerate(X.lengths)] or [numpy.zeros((0, width))])
        for X in Xs
    ]
    data = numpy.concatenate(rows).astype(dtype) if rows else numpy.zeros((0, width), dtype=dtype)
    return Ragged(data, numpy.asarray([len(r) for r in rows], dtype="int32"))


def scatter(Xs: List[TransformerOutput], d_rows: Any) -> List[Any]:
    """The padded gradients that put ``d_rows`` (the real rows, in order) in place."""
    out, at = [], 0
    for X in Xs:
        dT = numpy.zeros_like(X.tensors[0])
        for s, n in enumerate(X.lengths):
            if n:
                dT[s, :n] = d_rows[at : at + n]
                at += n
        out.append(dT)
    return out


def width_of(Xs: List[TransformerOutput]) -> int:
    return int(Xs[0].tensors[0].shape[2]) if Xs else 0


# --- Wordpieces is a Ragged of the real rows ------------------------------------------------


@given(Xs=docs())
def test_trf2ragged_gives_the_real_rows_of_every_doc(Xs: List[TransformerOutput]) -> None:
    R = trf2ragged().predict(Xs)
    want = real_rows(Xs, width_of(Xs), "float64")
    assert isinstance(R, Ragged) and isinstance(R, Wordpieces)
    assert R.lengths.tolist() == want.lengths.tolist()
    if Xs:
        assert_allclose(R.dataXd, want.dataXd)
        assert R.dataXd.shape[1] == width_of(Xs)  # an all-empty batch keeps its width
        assert R.data is R.data  # gathered once
    for i in range(len(Xs)):
        assert_allclose(R[i].dataXd.reshape(-1, width_of(Xs)), want[i].dataXd.reshape(-1, width_of(Xs)))


def test_wordpieces_does_not_gather_for_our_poolings() -> None:
    Xs = [TransformerOutput([numpy.ones((2, 4, 3), dtype="f")], numpy.asarray([4, 2]))]
    R = trf2ragged().predict(Xs)
    Y, bp = reduce_mean()(R, is_train=True)
    dR = bp(numpy.ones_like(Y))
    assert R._data is None and dR._data is None  # nothing was gathered
    assert isinstance(dR, Wordpieces) and dR.arrays[0].shape == (8, 3)
    # one padded gradient per Doc, written once: zeros at padding, dY / n at real rows
    assert_allclose(dR.arrays[0][:6], 1 / 6)
    assert not dR.arrays[0][6:].any()
    # trf2ragged hands that very array on: no copy
    R, bp_gather = trf2ragged()(Xs, is_train=True)
    Y, bp_pool = reduce_mean()(R, is_train=True)
    dR = bp_pool(numpy.ones_like(Y))
    (dX,) = bp_gather(dR)
    assert numpy.shares_memory(dX.tensors[0], dR.arrays[0]) and dX.tensors[0].flags.writeable


# --- trf_pool is chain(trf2ragged(), pooling), fast path included -----------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None)
@given(Xs=docs(min_docs=1), dtype=st.sampled_from(["float32", "float64"]))
def test_trf_pool_equals_its_pooling_on_the_gathered_rows(
    name: str, backend: str, Xs: List[TransformerOutput], dtype: str
) -> None:
    # (an empty batch is float32 whatever the reference's dtype: tested elsewhere)
    # Thinc's poolings lose the width and dtype of a batch without rows (ours do not)
    assume(name != "thinc mean" or any(int(X.lengths.sum()) for X in Xs))
    if name == "thinc mean" and backend == "generic":
        dtype = "float32"  # Thinc's generic Ops computes reduce_mean in float32 whatever the input
    Xs = [TransformerOutput([X.tensors[0].astype(dtype)], X.lengths) for X in Xs]
    ops, context = backend_ops(backend)
    with context:
        model = set_ops(trf_pool(MAKE[name]()), ops)
        reference = set_ops(MAKE[name](), ops)
        R = real_rows(Xs, width_of(Xs), dtype)
        model.initialize(X=Xs)
        reference.initialize(X=R)
        if reference.has_param("q"):  # attention: the same, non-zero query
            q = numpy.linspace(-0.5, 0.5, width_of(Xs)).astype("f")
            model.layers[1].set_param("q", q)
            reference.set_param("q", q)
        Y, bp = model(Xs, is_train=True)
        Y_ref, bp_ref = reference(R, is_train=True)
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-9)
        assert Y.dtype == numpy.dtype(dtype)
        assert_allclose(Y, Y_ref, **tol)
        dY = numpy.linspace(-1, 1, Y.size).reshape(Y.shape).astype(Y.dtype)
        dXs = bp(dY)
        want = scatter(Xs, bp_ref(dY).dataXd)
        assert [dX.tensors[0].dtype for dX in dXs] == [numpy.dtype(dtype)] * len(Xs)
        for dX, w in zip(dXs, want):
            assert_allclose(dX.tensors[0], w, **tol)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=20, deadline=None)
@given(Xs=docs(max_docs=3))
def test_trf_pool_gradients(name: str, Xs: List[TransformerOutput]) -> None:
    assume(Xs)  # (an empty batch says nothing about the width attention_pool needs)
    assume(name != "thinc mean" or any(int(X.lengths.sum()) for X in Xs))
    model = trf_pool(MAKE[name]())
    model.initialize(X=Xs)
    check_gradients(model, Xs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "attention"])
def test_trf_pool_on_tensors_of_width_0(name: str, backend: str) -> None:
    """A transformer output of width 0 (empty and multi-span Docs among it) pools to
    (docs, 0) and backprops zero-width gradients of every tensor's shape (Thinc's Ragged
    holds (n, 0) data as (0, 0), which the gathering poolings hand back)."""
    ops, context = backend_ops(backend)
    Xs = [
        TransformerOutput([numpy.zeros((2, 4, 0), dtype="float32")], numpy.asarray([3, 1], dtype="int32")),
        TransformerOutput([numpy.zeros((1, 4, 0), dtype="float32")], numpy.asarray([0], dtype="int32")),
        TransformerOutput([numpy.zeros((1, 4, 0), dtype="float32")], numpy.asarray([2], dtype="int32")),
    ]
    with context:
        model = set_ops(trf_pool(MAKE[name]()), ops)
        model.initialize(X=Xs)
        Y, backprop = model(Xs, is_train=True)
        assert Y.shape == (3, 0)
        dXs = backprop(numpy.ones_like(Y))
    assert [dX.tensors[0].shape for dX in dXs] == [X.tensors[0].shape for X in Xs]


def test_trf_pool_attention_takes_its_width_from_the_arrays() -> None:
    """trf_pool(attention_pool()) learns a query of the tensors' width: from the arrays
    even when no Doc has a real wordpiece, and an output of width 0 is refused by name."""
    no_rows = [TransformerOutput([numpy.zeros((2, 4, 8), dtype="float32")], numpy.asarray([0, 0], dtype="int32"))]
    model = trf_pool(attention_pool())
    model.initialize(X=no_rows)
    assert model.layers[1].get_dim("nI") == 8
    assert model.predict(no_rows).shape == (1, 8)
    width_0 = [TransformerOutput([numpy.zeros((2, 4, 0), dtype="float32")], numpy.asarray([3, 1], dtype="int32"))]
    model = trf_pool(attention_pool())
    with pytest.raises(LayerInputError, match=r"attention_pool: expected data of a positive width.*shape \(4, 0\)"):
        model.initialize(X=width_0)
    assert not model.layers[1].has_param("q")


def test_a_width_0_gradient_must_still_have_the_rows() -> None:
    """At width 0 a gradient has no values, but its rows must still be the wordpieces':
    (0, 0) data (Thinc's form of (n, 0)) whose lengths sum to them, or (n, 0)."""
    Xs = [TransformerOutput([numpy.zeros((2, 4, 0), dtype="float32")], numpy.asarray([3, 1], dtype="int32"))]
    _, backprop = trf2ragged()(Xs, is_train=True)
    for shape, lengths in (((0, 0), [4]), ((4, 0), [4])):
        dXs = backprop(Ragged(numpy.zeros(shape, dtype="float32"), numpy.asarray(lengths, dtype="int32")))
        assert dXs[0].tensors[0].shape == (2, 4, 0)
    for shape, lengths in (((0, 0), [9]), ((0, 768), [0]), ((0, 0, 0), [0])):
        with pytest.raises(LayerGradientError, match="expected the gradient of its input"):
            backprop(Ragged(numpy.zeros(shape, dtype="float32"), numpy.asarray(lengths, dtype="int32")))


@pytest.mark.parametrize("name", NAMES)
def test_trf_pool_is_the_chain(name: str) -> None:
    rng = numpy.random.RandomState(0)
    Xs = [
        TransformerOutput([rng.uniform(-1, 1, (len(lens), 5, 3))], numpy.asarray(lens, dtype="int32"))
        for lens in ([5, 2], [0], [], [3, 0, 1])
    ]
    chained = chain(trf2ragged(), MAKE[name]())
    fused = trf_pool(MAKE[name]())
    for model in (chained, fused):
        model.initialize(X=Xs or None)
    if fused.layers[1].has_param("q"):
        chained.layers[1].set_param("q", fused.layers[1].get_param("q"))
    pooling = fused.layers[1].name
    assert [layer.name for layer in fused.layers] == [f"trf_pool({pooling}).trf2ragged(0)", pooling]
    Y1, bp1 = chained(Xs, is_train=True)
    Y2, bp2 = fused(Xs, is_train=True)
    assert_allclose(Y1, Y2)
    for d1, d2 in zip(bp1(numpy.ones_like(Y1)), bp2(numpy.ones_like(Y2))):
        assert_allclose(d1.tensors[0], d2.tensors[0])


def test_nan_propagates_and_padding_never_counts() -> None:
    T = numpy.zeros((2, 3, 2), dtype="f")
    T[:, 2] = numpy.nan  # padding
    T[1, 0, 1] = numpy.nan  # a real NaN in the second span, column 1
    Xs = [TransformerOutput([T], numpy.asarray([2, 2]))]
    for make in (reduce_sum, reduce_mean, reduce_max, reduce_mean_max):
        Y = trf_pool(make()).predict(Xs)
        assert not numpy.isnan(Y[0, 0]) and numpy.isnan(Y[0, 1]), make
    Y = trf_pool(reduce_first()).predict(Xs)
    assert not numpy.isnan(Y).any()


def test_max_over_spans_takes_the_first_maximum_and_routes_the_gradient_there() -> None:
    T = numpy.asarray([[[1.0, 5.0], [3.0, 0.0]], [[3.0, 9.0], [2.0, -1.0]]], dtype="f")
    Xs = [TransformerOutput([T], numpy.asarray([2, 1]))]
    Y, bp = trf_pool(reduce_max())(Xs, is_train=True)
    assert_allclose(Y, [[3.0, 9.0]])
    (dX,) = bp(numpy.asarray([[1.0, 2.0]], dtype="f"))
    want = numpy.zeros_like(T)
    want[0, 1, 0] = 1.0  # 3 first in span 0 (a tie with span 1's 3: the first wins)
    want[1, 0, 1] = 2.0
    assert_allclose(dX.tensors[0], want)


# --- with_padded_mask builds a Wordpieces over the padded batch ----------------------------------


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_with_padded_mask_left_and_right_padding(name: str, data: st.DataObject) -> None:
    B, L, W = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    rng = numpy.random.RandomState(data.draw(st.integers(0, 1000)))
    X = (rng.permutation(B * L * W).reshape(B, L, W) * 0.25).astype("float64")
    lengths = [data.draw(st.integers(0, L)) for _ in range(B)]
    left = data.draw(st.booleans())
    mask = numpy.zeros((B, L), dtype="int64")
    for b, n in enumerate(lengths):
        if left:
            mask[b, L - n :] = 1
        else:
            mask[b, :n] = 1
    model = with_padded_mask(MAKE[name]())
    model.initialize(X=(X, mask))
    rows = Ragged(X.reshape(B * L, W)[mask.reshape(-1) != 0], numpy.asarray(lengths, dtype="int32"))
    reference = MAKE[name]()
    reference.initialize(X=rows)
    if reference.has_param("q"):
        reference.set_param("q", model.layers[0].get_param("q"))
    assert_allclose(model.predict((X, mask)), reference.predict(rows), rtol=1e-9, atol=1e-9)
    if sum(lengths) or name != "thinc mean":
        check_gradients(model, (X, mask))


# --- the containers: errors, and a fourth one needs only an adapter ------------------------


@pytest.mark.parametrize("make", [lambda: trf_pool(reduce_mean()), cls_pool, trf2ragged, trf2tensor])
def test_a_batch_that_mixes_widths_or_dtypes_is_refused(make: Callable[[], Model[Any, Any]]) -> None:
    a = TransformerOutput([numpy.zeros((1, 3, 4), dtype="f")], numpy.asarray([3]))
    wide = TransformerOutput([numpy.zeros((1, 3, 5), dtype="f")], numpy.asarray([3]))
    half = TransformerOutput([numpy.zeros((1, 3, 4), dtype="float16")], numpy.asarray([3]))
    model = make()
    with pytest.raises(LayerInputError, match=r"Doc 1 of the batch has a tensor of width 5 .*Doc 0 has width 4"):
        model.predict([a, wide])
    with pytest.raises(LayerInputError, match=r"Doc 2 .*float16.*Doc 0 .*float32.*one width and dtype"):
        model.predict([a, a, half])


def test_trf2ragged_refuses_a_gradient_of_the_wrong_shape_or_dtype() -> None:
    Xs = [TransformerOutput([numpy.zeros((1, 3, 4), dtype="f")], numpy.asarray([2]))]
    R, bp = trf2ragged()(Xs, is_train=True)
    with pytest.raises(LayerGradientError, match=r"trf2ragged\(0\): backprop expected .* shape \(2, 4\)"):
        bp(Ragged(numpy.zeros((3, 4), dtype="f"), numpy.asarray([3], dtype="i")))
    with pytest.raises(LayerGradientError, match=r"in float32"):
        bp(Ragged(numpy.zeros((2, 4), dtype="float64"), numpy.asarray([2], dtype="i")))
    with pytest.raises(LayerGradientError, match=r"got an array"):
        bp(numpy.zeros((2, 4), dtype="f"))  # type: ignore[arg-type]
    for empty in (numpy.zeros((0, 0), dtype="f"), numpy.zeros((0, 4), dtype="f")):
        # no values for rows that have them is not a zero gradient
        with pytest.raises(LayerGradientError, match=r"shape \(2, 4\)"):
            bp(Ragged(empty, numpy.asarray([2], dtype="i")))


@pytest.mark.parametrize(
    "other_shape, other_lengths",
    [
        ((2, 3, 4), [1, 1]),  # the same rows in two spans
        ((1, 5, 4), [2]),  # the same span, padded further
    ],
)
def test_a_wordpieces_gradient_of_another_layout_is_read_as_its_rows(
    other_shape: Tuple[int, ...], other_lengths: List[int]
) -> None:
    # only a gradient with this very layout is taken as padded arrays; another one with
    # the same rows is read as a Ragged: its real rows go into this batch's padding
    Xs = [TransformerOutput([numpy.zeros((1, 3, 4), dtype="f")], numpy.asarray([2]))]
    R, bp = trf2ragged()(Xs, is_train=True)
    other = numpy.random.RandomState(0).uniform(-1, 1, other_shape).astype("f")
    dR, _ = trf2ragged()([TransformerOutput([other], numpy.asarray(other_lengths))], is_train=True)
    (dX,) = bp(dR)
    expected = numpy.zeros((1, 3, 4), dtype="f")
    expected[0, :2] = dR.dataXd
    assert_allclose(dX.tensors[0], expected)


def test_transformer_output_errors_are_clear() -> None:
    with pytest.raises(LayerInputError, match=r"TransformerOutput: expected lengths .* got None.*from_hf"):
        TransformerOutput([numpy.zeros((1, 2, 3))], None)  # type: ignore[arg-type]


@dataclass
class Vectors:
    """A made-up fourth container: one unpadded (wordpieces, width) array per Doc."""

    rows: Any


class VectorsAdapter(ContainerAdapter):
    name = "test Vectors"

    def accepts(self, X: Any) -> bool:
        return isinstance(X, Vectors)

    def read_tensor(self, layer: str, ops: Ops, X: Any, index: int) -> DocTensor:
        n, width = X.rows.shape
        return DocTensor(
            X.rows.reshape(1, n, width), [n], True,
            lambda dT: [Vectors(dT.reshape(n, width) if dT is not None else numpy.zeros_like(X.rows))], self,
        )


@pytest.fixture
def vectors_adapter() -> Any:
    adapter = register_adapter(VectorsAdapter())
    yield adapter
    unregister_adapter(adapter)


@pytest.mark.usefixtures("vectors_adapter")
@pytest.mark.parametrize(
    "make", [lambda: trf_pool(reduce_mean()), lambda: trf_pool(reduce_max()), trf2ragged, cls_pool, trf2tensor]
)
def test_a_fourth_container_needs_only_an_adapter(make: Callable[[], Model[Any, Any]]) -> None:
    rng = numpy.random.RandomState(0)
    Xs = [Vectors(rng.uniform(-1, 1, (n, 3))) for n in (4, 1, 0)]
    model = make()
    model.initialize(X=Xs)
    Y = model.predict(Xs)
    if model.name.startswith("trf_pool(reduce_mean"):
        assert_allclose(Y[:2], [Xs[0].rows.mean(0), Xs[1].rows.mean(0)])
    check_gradients(model, Xs)
    Y, bp = model(Xs, is_train=True)
    if isinstance(Y, Ragged):
        dY: Any = Ragged(numpy.ones_like(Y.dataXd), Y.lengths)
    else:
        dY = [numpy.ones_like(y) for y in Y] if isinstance(Y, list) else numpy.ones_like(Y)
    assert [type(d) for d in bp(dY)] == [Vectors] * 3


def test_without_the_adapter_the_container_is_refused_naming_the_others() -> None:
    with pytest.raises(LayerInputError, match=r"item 0 of the batch is a .*Vectors; expected .*TransformerOutput"):
        trf_pool(reduce_mean()).predict([Vectors(numpy.zeros((2, 3)))])


# --- reduce_gem ----------------------------------------------------------------------------


@pytest.mark.parametrize("p, learn_p", [(3.0, False), (2.5, False), (2.5, True), (2.0, False)])
def test_gem_backprop_twice_gives_the_same_gradient(p: float, learn_p: bool) -> None:
    """A second call of reduce_gem's backprop gives the same gradient (nothing of the
    first one's is kept)."""
    rng = numpy.random.RandomState(0)
    X = Ragged(rng.uniform(-1, 2, (9, 4)).astype("f"), numpy.asarray([5, 0, 4], dtype="int32"))
    model = reduce_gem(p=p, learn_p=learn_p)
    model.initialize(X=X)
    Y, bp = model(X, is_train=True)
    dY = numpy.linspace(-1, 1, Y.size).reshape(Y.shape).astype("f")
    first = bp(dY).dataXd.copy()
    grad_p = model.get_grad("p").copy() if learn_p else None
    second = bp(dY).dataXd
    assert_allclose(first, second, rtol=1e-6)
    assert first.any()
    if grad_p is not None:
        assert_allclose(model.get_grad("p"), 2 * grad_p, rtol=1e-5)  # accumulated twice


# --- every reduction over pieces: the compiled kernels against the generic code ---------------


@st.composite
def pieces(draw: st.DrawFn) -> Wordpieces:
    """Rows made of pieces of two arrays, in any order, overlapping or empty (as token rows
    in strided spans are), with NaN now and then."""
    sizes = [draw(st.integers(0, 6)) for _ in range(2)]
    width = draw(st.integers(1, 4))
    rng = numpy.random.RandomState(draw(st.integers(0, 2**16)))
    arrays = [rng.uniform(-2, 2, (n, width)) for n in sizes]
    if draw(st.booleans()) and sizes[0]:
        arrays[0][rng.randint(sizes[0]), rng.randint(width)] = numpy.nan
    counts = draw(st.lists(st.integers(0, 3), min_size=0, max_size=5))
    spec = []
    for _ in range(sum(counts)):
        a = draw(st.sampled_from([a for a in (0, 1) if sizes[a]] or [0]))
        start = draw(st.integers(0, sizes[a]))
        spec.append((a, start, draw(st.integers(0, sizes[a] - start))))
    return Wordpieces(
        NumpyOps(), arrays, [p[0] for p in spec], [p[1] for p in spec], [p[2] for p in spec],
        numpy.concatenate([[0], numpy.cumsum(counts)]), width=width, dtype="float64",
    )


@settings(max_examples=60, deadline=None)
@given(X=pieces(), dtype=st.sampled_from(["float32", "float64"]))
def test_every_reduction_on_pieces_agrees_with_its_gathered_rows(X: Wordpieces, dtype: str) -> None:
    """Each reduction and its gradient over pieces in place (the compiled kernels) equals
    the generic code on the gathered rows, the gradient scattered back (rows that pieces
    share add up, rows no piece holds get zeros)."""
    X = X.with_arrays([A.astype(dtype) for A in X.arrays])
    X.dtype = numpy.dtype(dtype)
    gathered = Ragged(numpy.asarray(X.data).reshape(-1, X.width).astype(dtype), X.lengths)
    for name in ["sum", "mean", "mean_sqrt_len", "weighted_mean", "first", "last", "max", "mean_max"]:
        reduce, backprop = getattr(pooling_backends, f"reduce_{name}"), getattr(pooling_backends, f"backprop_reduce_{name}")
        fast, generic = reduce(NumpyOps(), X), reduce(Ops(), gathered)
        (Yf, wf), (Yg, wg) = [o if isinstance(o, tuple) else (o, None) for o in (fast, generic)]
        assert_allclose(Yf, Yg, rtol=1e-5, atol=1e-6, err_msg=name)
        dY = numpy.linspace(-1, 1, Yf.size).reshape(Yf.shape).astype(dtype)
        dX = backprop(NumpyOps(), dY, X) if wf is None else backprop(NumpyOps(), dY, wf, X)
        dR = backprop(Ops(), dY, gathered) if wg is None else backprop(Ops(), dY, wg, gathered)
        want = X.scatter(dR.dataXd.astype(dtype)) if X.row_ends[-1] else X.zeros()[1]
        for got, expected in zip(dX.arrays, want):
            assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)
