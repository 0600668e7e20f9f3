"""token_pool and span_pool on our TransformerOutput with an alignment (no spaCy needed);
in real spaCy pipelines: tests/integration/test_token_listener.py."""
import re
import warnings
from typing import Any, Callable, List, Tuple

import numpy
import pytest
import thinc.api
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from thinc.api import Model, NumpyOps, Ops
from thinc.types import Ragged

from helpers import set_ops, to_numpy
from thinc_trf_layers import (
    LayerGradientError,
    LayerInputError,
    TransformerOutput,
    attention_pool,
    check_gradients,
    reduce_gem,
    reduce_max,
    reduce_mean,
    reduce_mean_max,
    scalar_mix,
    span_pool,
    token_pool,
)
from thinc_trf_layers.testing.strategies import token_spans, transformer_outputs

# --- references written here --------------------------------------------------------


def token_rows(X: TransformerOutput, t: int, T: Any = None) -> Any:
    T = X.tensors[0] if T is None else T
    flat = T.reshape(-1, T.shape[2])
    start = int(numpy.sum(X.align.lengths[:t]))
    return flat[X.align.dataXd[start : start + int(X.align.lengths[t])]]


def span_rows(X: TransformerOutput, start: int, end: int, T: Any = None) -> Any:
    T = X.tensors[0] if T is None else T
    flat = T.reshape(-1, T.shape[2])
    first, last = int(numpy.sum(X.align.lengths[:start])), int(numpy.sum(X.align.lengths[:end]))
    return flat[sorted(set(X.align.dataXd[first:last].tolist()))]


def mean_or_zeros(rows: Any, width: int) -> Any:
    return rows.astype("float64").mean(0) if len(rows) else numpy.zeros(width)


def width_of(Xs: List[TransformerOutput]) -> int:
    return int(Xs[0].tensors[0].shape[2]) if Xs else 1


def doc(lengths: List[int], n_pieces: int, tokens: List[List[int]], width: int = 3, seed: int = 0) -> TransformerOutput:
    rng = numpy.random.RandomState(seed)
    T = rng.uniform(-1, 1, (len(lengths), n_pieces, width))
    hidden = [rng.uniform(-1, 1, T.shape) for _ in range(3)]
    align = Ragged(
        numpy.asarray([p for t in tokens for p in t], dtype="int32"), numpy.asarray([len(t) for t in tokens], dtype="int32")
    )
    return TransformerOutput(tensors=[T], lengths=numpy.asarray(lengths, dtype="int64"), hidden_states=hidden, align=align)


# --- values and gradients on hypothesis batches --------------------------------------


@settings(deadline=None, max_examples=40)
@given(Xs=transformer_outputs(aligned=True, hidden_layers=2))
def test_token_pool_mean_values_and_gradients(Xs: List[TransformerOutput]) -> None:
    model = token_pool()
    model.initialize()
    Ys = model.predict(Xs)
    assert len(Ys) == len(Xs)
    for X, Y in zip(Xs, Ys):
        want = [mean_or_zeros(token_rows(X, t), width_of(Xs)) for t in range(len(X.align.lengths))]
        assert_allclose(Y, numpy.asarray(want).reshape(-1, width_of(Xs)), rtol=1e-6, atol=1e-9)
    check_gradients(model, Xs)


@settings(deadline=None, max_examples=30)
@given(Xs=transformer_outputs(aligned=True, hidden_layers=3))
def test_token_pool_with_a_mix_gradients(Xs: List[TransformerOutput]) -> None:
    model = token_pool(reduce_mean(), mix=scalar_mix(3))  # max: ties have no derivative
    model.initialize()
    check_gradients(model, Xs)


@settings(deadline=None, max_examples=40)
@given(data=st.data(), Xs=transformer_outputs(aligned=True, hidden_layers=2))
def test_span_pool_values_and_gradients(data: Any, Xs: List[TransformerOutput]) -> None:
    spans = data.draw(token_spans(Xs))
    model = span_pool(reduce_mean())
    model.initialize()
    Y = model.predict((Xs, spans))
    want = []
    offsets = numpy.concatenate([[0], numpy.cumsum(spans.lengths)]).astype(int)
    for i, X in enumerate(Xs):
        for start, end in spans.dataXd[offsets[i] : offsets[i + 1]]:
            want.append(mean_or_zeros(span_rows(X, start, end), width_of(Xs)))
    if Xs:  # an empty batch: no width to know
        assert_allclose(Y, numpy.asarray(want).reshape(-1, width_of(Xs)), rtol=1e-6, atol=1e-9)
    assert Y.shape[0] == len(want)
    check_gradients(model, (Xs, spans))
    mixed = span_pool(reduce_mean(), mix=scalar_mix())
    mixed.initialize(X=(Xs, spans))  # the mix's parameters exist before the check's float64 copy
    check_gradients(mixed, (Xs, spans))


# --- behaviour ------------------------------------------------------------------------


def test_whitespace_tokens_get_zeros_and_no_gradient() -> None:
    # Doc of one span of 4 real pieces (of 5); tokens: [1], [] (whitespace), [2, 3]
    X = doc([4], 5, [[1], [], [2, 3]])
    model = token_pool(reduce_max())
    model.initialize()
    (Y,), backprop = model([X], is_train=True)
    assert_allclose(Y[1], 0.0)
    assert_allclose(Y[0], X.tensors[0][0, 1])
    (dX,) = backprop([numpy.ones_like(Y)])
    d = dX.tensors[0][0]
    assert_allclose(d[[0, 4]], 0.0)  # [CLS] and padding: no token reads them
    assert d[1].sum() == pytest.approx(3.0)


def test_a_wordpiece_shared_by_two_tokens_gets_both_gradients_and_counts_once_in_a_span() -> None:
    X = doc([3], 3, [[0, 1], [1, 2]])
    model = token_pool(reduce_mean())
    model.initialize()
    (Y,), backprop = model([X], is_train=True)
    (dX,) = backprop([numpy.ones_like(Y)])
    assert_allclose(dX.tensors[0][0, :, 0], [0.5, 1.0, 0.5])
    spans = Ragged(numpy.asarray([[0, 2]], dtype="int32"), numpy.asarray([1], dtype="int32"))
    pooled = span_pool(reduce_mean())
    pooled.initialize()
    assert_allclose(pooled.predict(([X], spans))[0], X.tensors[0][0].mean(0))


def test_grad_factor_scales_and_zero_freezes() -> None:
    X = doc([3], 3, [[0], [1, 2]])
    grads = {}
    for factor in (1.0, 0.5, 0.0):
        model = token_pool(grad_factor=factor)
        model.initialize()
        (Y,), backprop = model([X], is_train=True)
        grads[factor] = backprop([numpy.ones_like(Y)])[0].tensors[0]
    assert_allclose(grads[0.5], grads[1.0] * 0.5)
    assert not grads[0.0].any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes_are_kept(dtype: str, ops: Ops) -> None:
    X = doc([3, 2], 3, [[0, 1], [2], [], [3, 4]])
    X.tensors = [t.astype(dtype) for t in X.tensors]
    model = set_ops(token_pool(), ops)
    model.initialize()
    (Y,) = model.predict([X])
    assert Y.dtype == dtype and Y.shape == (4, 3)
    spans = Ragged(numpy.asarray([[0, 4], [2, 3]], dtype="int64"), numpy.asarray([2], dtype="int64"))
    pooled = set_ops(span_pool(reduce_mean()), ops)
    pooled.initialize()
    Z = to_numpy(pooled.predict(([X], spans)))
    assert Z.dtype == dtype
    assert_allclose(Z[1], 0.0)


def test_empty_batch_and_docs_without_tokens() -> None:
    model = token_pool()
    model.initialize()
    assert model.predict([]) == []
    empty = doc([], 2, [])
    (Y,), backprop = model([empty], is_train=True)
    assert Y.shape[0] == 0
    (dX,) = backprop([numpy.zeros_like(Y)])
    assert dX.tensors[0].shape == empty.tensors[0].shape


def test_initialize_with_a_sample_sets_the_dims_and_the_mix() -> None:
    X = doc([3], 4, [[0], [1, 2]])
    model = token_pool(reduce_mean_max(), mix=scalar_mix())
    model.initialize(X=[X])
    assert model.get_dim("nI") == 3 and model.get_dim("nO") == 6
    assert model.layers[0].layers[0].attrs["n_layers"] == 3


def test_the_mix_takes_its_layer_count_from_the_first_batch_and_serializes() -> None:
    X = doc([3], 4, [[0], [1, 2]])
    model = token_pool(mix=scalar_mix())
    model.initialize()
    Y = model.predict([X])
    copy = token_pool(mix=scalar_mix())
    copy.initialize()
    copy.from_bytes(model.to_bytes())
    assert copy.layers[0].layers[0].attrs["n_layers"] == 3
    assert_allclose(copy.predict([X])[0], Y[0])


# --- errors -----------------------------------------------------------------------------


def test_a_container_without_alignment_is_refused() -> None:
    X = TransformerOutput(tensors=[numpy.zeros((1, 2, 3))], lengths=numpy.asarray([2]))
    model = token_pool()
    model.initialize()
    with pytest.raises(LayerInputError, match=r"token_pool\(reduce_mean\)[^:]*: Doc 0's thinc_trf_layers TransformerOutput holds no alignment"):
        model.predict([X])


def test_alignment_errors() -> None:
    model = token_pool()
    model.initialize()
    outside = doc([2], 2, [[0], [7]])
    with pytest.raises(LayerInputError, match=r"Doc 0's token alignment points at row 7, which is not a real wordpiece"):
        model.predict([outside])
    padding = doc([3, 1], 4, [[0], [5]])  # row 5: span 1, position 1, padding
    with pytest.raises(LayerInputError, match=r"points at row 5, .*\(2 spans of 4 positions, \[3, 1\] real\)"):
        model.predict([padding])
    X = doc([2], 2, [[0], [1]])
    X.align = Ragged(numpy.asarray([0, 1], dtype="int32"), numpy.asarray([1, 2], dtype="int32"))
    with pytest.raises(LayerInputError, match=r"has 2 positions but its token lengths sum to 3"):
        model.predict([X])
    X.align = Ragged(numpy.asarray([0, 1, 1], dtype="int32"), numpy.asarray([2, -1, 2], dtype="int32"))
    with pytest.raises(LayerInputError, match=r"has a negative length \(-1\)"):
        model.predict([X])
    X.align = Ragged(numpy.asarray([0.0, 1.7], dtype="f"), numpy.asarray([1, 1], dtype="int32"))
    with pytest.raises(LayerInputError, match=r"expected Doc 0's token alignment positions as integers"):
        model.predict([X])
    X.align = [0, 1]  # type: ignore[assignment]
    with pytest.raises(LayerInputError, match=r"token_pool\(reduce_mean\)[^:]*: Doc 0: .*expected align to be None or a Ragged"):
        model.predict([X])


def test_nothing_changes_before_an_error() -> None:
    """A bad alignment or span is refused before the mix runs: a mix that takes its layer
    count from the first batch still has none, and takes it from the next good one."""
    model = token_pool(mix=scalar_mix())
    model.initialize()
    with pytest.raises(LayerInputError):
        model.predict([doc([2], 2, [[0], [7]])])
    assert model.layers[0].layers[0].attrs["n_layers"] is None
    spans = span_pool(reduce_mean(), mix=scalar_mix())
    spans.initialize()
    bad = Ragged(numpy.asarray([[0, 9]], dtype="int32"), numpy.asarray([1], dtype="int32"))
    with pytest.raises(LayerInputError, match=r"span 0 of Doc 0 is \[0, 9\)"):
        spans.predict(([doc([2], 2, [[0], [1]])], bad))
    assert spans.layers[0].layers[0].attrs["n_layers"] is None
    X = doc([2], 2, [[0], [1]])
    X.hidden_states = X.hidden_states + X.hidden_states  # 6 layers
    model.predict([X])
    assert model.layers[0].layers[0].attrs["n_layers"] == 6


def test_width_and_dtype_checks() -> None:
    model = token_pool()
    model.initialize(X=[doc([2], 2, [[0], [1]], width=3)])
    with pytest.raises(LayerInputError, match=r"the wordpieces have width 5, but the layer was initialized for width 3"):
        model.predict([doc([2], 2, [[0], [1]], width=5)])
    fresh = token_pool()
    fresh.initialize()
    narrow = doc([2], 2, [[0], [1]], width=3)
    wide = doc([2], 2, [[0], [1]], width=5)
    with pytest.raises(LayerInputError, match=r"Doc 1 of the batch has a tensor of width 5 \(float64\), but Doc 0 has width 3"):
        fresh.predict([narrow, wide])
    single = doc([2], 2, [[0], [1]], width=3)
    single.tensors = [single.tensors[0].astype("f")]
    with pytest.raises(LayerInputError, match=r"width 3 \(float32\), but Doc 0 has width 3 \(float64\)"):
        fresh.predict([narrow, single])


def test_a_pooling_with_a_width_initializes_on_the_first_batch() -> None:
    from thinc_trf_layers import attention_pool, concat_last

    model = token_pool(attention_pool())
    model.initialize()
    (Y,) = model.predict([doc([3], 3, [[0], [1, 2]], width=4)])
    assert Y.shape == (2, 4) and model.get_dim("nI") == 4
    # a mix that changes the width: the pooling gets the mixed width
    mixed = token_pool(attention_pool(), mix=concat_last(2))
    mixed.initialize()
    (Y,) = mixed.predict([doc([3], 3, [[0], [1, 2]], width=4)])
    assert Y.shape == (2, 8) and mixed.get_dim("nI") == 8


def test_a_pooling_gradient_of_the_wrong_shape_is_refused_also_when_frozen() -> None:
    def forward(model: Any, R: Ragged, is_train: bool) -> Any:
        inner, bp = reduce_mean()(R, is_train)
        return inner, lambda dY: Ragged(numpy.zeros((99, 7)), R.lengths)

    for factor in (1.0, 0.0):
        model = token_pool(Model("bad_backprop", forward), grad_factor=factor)
        (Y,), backprop = model([doc([3], 3, [[0], [1, 2]])], is_train=True)
        with pytest.raises(LayerGradientError, match=r"gradient of (its|the pooling's) input"):
            backprop([numpy.ones_like(Y)])


def test_arguments_are_checked_when_built() -> None:
    with pytest.raises(LayerInputError, match=r"token_pool: expected pooling to be a Thinc Model\[Ragged, Floats2d\].*got a builtins.str"):
        token_pool("mean")  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match=r"span_pool: expected pooling to be a Thinc Model"):
        span_pool(None)  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match=r"token_pool: expected mix to be None or a Thinc Model"):
        token_pool(mix=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make_pooling", [reduce_max, reduce_gem, attention_pool, thinc.api.reduce_mean], ids=lambda f: f.__module__
)
def test_a_pooling_given_as_the_mix_is_refused_at_the_first_batch(make_pooling: Callable[[], Any]) -> None:
    """Ours or Thinc's pooling in mix= builds (mypy refuses it: see the typing tests) and
    is refused at the first batch, before anything is pooled, by a message that names
    the mix and says what may have happened."""
    pooling = make_pooling()
    model = token_pool(reduce_mean(), mix=pooling)
    with pytest.raises(LayerInputError, match=rf"the mix '{re.escape(pooling.name)}' could not mix one Doc's hidden layers \(is a pooling given as the mix\?\)"):
        model.predict([doc([3], 3, [[0], [1, 2]])])


def _identity(model: Model[Any, Any], X: Any, is_train: bool) -> Tuple[Any, Callable[[Any], Any]]:
    return X, lambda dY: dY



def test_span_errors() -> None:
    X = doc([3], 3, [[0], [1], [2]])
    model = span_pool(reduce_mean())
    model.initialize()

    def spans(rows: Any, lengths: Any, dtype: str = "int32") -> Ragged:
        return Ragged(numpy.asarray(rows, dtype=dtype).reshape(-1, 2), numpy.asarray(lengths, dtype="int32"))

    with pytest.raises(LayerInputError, match=r"span 1 of Doc 0 is \[2, 4\); expected token offsets with 0 <= start <= end <= 3"):
        model.predict(([X], spans([[0, 1], [2, 4]], [2])))
    with pytest.raises(LayerInputError, match=r"span 0 of Doc 0 is \[2, 1\)"):
        model.predict(([X], spans([[2, 1]], [1])))
    with pytest.raises(LayerInputError, match=r"has 2 lengths summing to 1 for 1 spans; expected one length per Doc \(1 Docs\)"):
        model.predict(([X], spans([[0, 1]], [1, 0])))
    with pytest.raises(LayerInputError, match=r"expected the spans as a Ragged of int \(start, end\) token offsets"):
        model.predict(([X], Ragged(numpy.zeros((1, 2), dtype="f"), numpy.asarray([1], dtype="int32"))))
    with pytest.raises(LayerInputError, match=r"expected a tuple \(transformer outputs, spans\)"):
        model.predict([X])  # type: ignore[arg-type]


def test_gradient_errors() -> None:
    X = doc([3], 3, [[0], [1, 2]])
    model = token_pool()
    model.initialize()
    (Y,), backprop = model([X], is_train=True)
    with pytest.raises(LayerGradientError, match=r"backprop expected 1 gradients, one per Doc, of shapes \[\(2, 3\)\]"):
        backprop([numpy.ones((3, 3))])
    with pytest.raises(LayerGradientError):
        backprop(numpy.ones((2, 3)))  # type: ignore[arg-type]


def test_a_pooling_that_does_not_give_one_row_per_token_is_refused() -> None:
    from thinc.api import Model

    def forward(model: Any, R: Ragged, is_train: bool) -> Any:
        return R.dataXd[:1], lambda dY: R

    X = doc([3], 3, [[0], [1, 2]])
    model = token_pool(Model("first_row", forward))
    with pytest.raises(LayerInputError, match=r"the pooling 'first_row' should return one row per group of wordpieces \(2\)"):
        model.predict([X])


def test_no_warning_for_our_container() -> None:
    X = doc([3], 3, [[0], [1, 2]])
    model = token_pool(mix=scalar_mix(3))
    model.initialize()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (Y,), backprop = model([X], is_train=True)
        backprop([numpy.ones_like(Y)])


def test_numpy_ops_scatter_matches_a_loop() -> None:
    """The backward adds a token's gradient into every position it reads, repeated
    positions included (NumpyOps' compiled scatter_add for float32 and int32)."""
    X = doc([4], 4, [[0, 1], [1], [1, 2, 3]])
    X.tensors = [X.tensors[0].astype("float32")]
    model = token_pool(reduce_mean())
    model.ops = NumpyOps()
    model.initialize()
    (Y,), backprop = model([X], is_train=True)
    dY = numpy.arange(Y.size, dtype="float32").reshape(Y.shape)
    (dX,) = backprop([dY])
    want = numpy.zeros((4, 3), dtype="float32")
    for t, rows in enumerate([[0, 1], [1], [1, 2, 3]]):
        for r in rows:
            want[r] += dY[t] / len(rows)
    assert_allclose(dX.tensors[0][0], want, rtol=1e-6)
