"""trf2tensor, trf2layers, trf_pool, cls_pool and TransformerOutput (no spaCy needed)."""
import warnings
from typing import Any, List

import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from thinc.api import Model, Ops, chain, list2ragged
from thinc.types import Ragged

from helpers import set_ops, to_numpy
from thinc_trf_layers import (
    LayerGradientError,
    LayerInputError,
    TransformerOutput,
    check_gradients,
    cls_pool,
    map_list,
    select_token,
    trf2layers,
    trf2tensor,
    trf_pool,
)
from thinc_trf_layers.layers.reduce_max import reduce_max
from thinc_trf_layers.layers.reduce_mean import reduce_mean
from thinc_trf_layers.testing.strategies import transformer_outputs

# --- references written here ------------------------------------------------------


def real_rows(X: TransformerOutput, index: int = 0) -> Any:
    T = X.tensors[index]
    parts = [T[s, :n] for s, n in enumerate(X.lengths)]
    return numpy.concatenate(parts) if parts else numpy.zeros((0, T.shape[2]), dtype=T.dtype)


def ref_mean(Xs: List[TransformerOutput], width: int, index: int = 0) -> Any:
    out = numpy.zeros((len(Xs), width))
    for i, X in enumerate(Xs):
        rows = real_rows(X, index).astype("float64")
        if len(rows):
            out[i] = rows.mean(0)
    return out


def ref_cls(Xs: List[TransformerOutput], width: int, token: int = 0) -> Any:
    out = numpy.zeros((len(Xs), width))
    for i, X in enumerate(Xs):
        T = X.tensors[0]
        rows = [T[s, token if token >= 0 else n + token] for s, n in enumerate(X.lengths) if n]
        if rows:
            out[i] = numpy.mean(numpy.asarray(rows, dtype="float64"), axis=0)
    return out


def width_of(Xs: List[TransformerOutput]) -> int:
    return int(Xs[0].tensors[0].shape[2]) if Xs else 0


def one(T: Any, lengths: Any, **kwargs: Any) -> TransformerOutput:
    return TransformerOutput(tensors=[numpy.asarray(T)], lengths=numpy.asarray(lengths, dtype="int32"), **kwargs)


# --- gradient checks on hypothesis-made batches -----------------------------------


@given(Xs=transformer_outputs(max_tensors=3), data=st.data())
def test_trf2tensor_gradients(Xs: List[TransformerOutput], data: Any) -> None:
    n = len(Xs[0].tensors) if Xs else 1
    index = data.draw(st.integers(-n, n - 1))
    model = trf2tensor(index)
    Ys = model.predict(Xs)
    for X, Y in zip(Xs, Ys):
        assert Y is X.tensors[index]
    check_gradients(model, Xs)


@given(Xs=transformer_outputs(hidden_layers=3))
def test_trf2layers_gradients(Xs: List[TransformerOutput]) -> None:
    model = trf2layers()
    Ys = model.predict(Xs)
    assert [len(Y) for Y in Ys] == [3] * len(Xs)
    check_gradients(model, Xs)


@given(Xs=transformer_outputs(max_tensors=2), index=st.sampled_from([0, -1]))
def test_trf_pool_mean_gradients_and_values(Xs: List[TransformerOutput], index: int) -> None:
    model = trf_pool(reduce_mean(), index=index)
    Y = model.predict(Xs)
    assert Y.shape == (len(Xs), width_of(Xs))
    assert_allclose(Y, ref_mean(Xs, width_of(Xs), index), rtol=1e-7, atol=1e-9)
    if Xs:  # an empty batch gives a float32 (0, 0): nothing to check
        check_gradients(model, Xs)


@given(Xs=transformer_outputs(min_length=1, min_docs=1))
def test_trf_pool_max_never_sees_padding(Xs: List[TransformerOutput]) -> None:
    # padding holds 1e3: a max over padding would show it
    Y = trf_pool(reduce_max()).predict(Xs)
    assert (Y < 1e3).all()


@given(Xs=transformer_outputs(), token=st.sampled_from([0, -1]))
def test_cls_pool_gradients_and_values(Xs: List[TransformerOutput], token: int) -> None:
    model = cls_pool(token_index=token)
    Y = model.predict(Xs)
    assert_allclose(Y, ref_cls(Xs, width_of(Xs), token), rtol=1e-7, atol=1e-9)
    if Xs:
        check_gradients(model, Xs)


@given(
    Xs=transformer_outputs(dtype="float32", max_width=9),
    token=st.sampled_from([0, 1, -1]),
    factor=st.sampled_from([1.0, 0.5, -2.0, 0.0]),
)
def test_cls_pool_backprop_is_the_same_through_the_kernel_and_the_generic_path(
    Xs: List[TransformerOutput], token: int, factor: float
) -> None:
    # NumpyOps writes the gradients in one pass of the pieces kernel (padding included),
    # the generic Ops (CupyOps' code) scatters the picks into zeros
    assume(all(int(n) > token for X in Xs for n in X.lengths if n) or token < 1)
    fast = cls_pool(token_index=token, grad_factor=factor)
    generic = set_ops(cls_pool(token_index=token, grad_factor=factor), Ops())
    Y, bp = fast(Xs, is_train=True)
    Y_generic, bp_generic = generic(Xs, is_train=True)
    assert_allclose(Y, Y_generic, rtol=1e-6, atol=1e-6)
    dY = numpy.linspace(-1, 1, Y.size).reshape(Y.shape).astype(Y.dtype)
    got = bp(dY)
    want = bp_generic(dY)
    assert len(got) == len(want) == len(Xs)
    for g, w in zip(got, want):
        assert g.tensors[0].dtype == w.tensors[0].dtype == numpy.float32
        assert_allclose(g.tensors[0], w.tensors[0], rtol=1e-6, atol=1e-7)
        assert g.tensors[0].flags.writeable == w.tensors[0].flags.writeable


@given(Xs=transformer_outputs(min_length=1))
def test_cls_route_equals_cls_pool(Xs: List[TransformerOutput]) -> None:
    # discussion #7178: trf2tensor(0) >> select_token(0) per span >> mean over spans
    route = chain(trf2tensor(0), map_list(select_token(0)), list2ragged(), reduce_mean())
    Y_route = route.predict(Xs)
    assert_allclose(Y_route, cls_pool().predict(Xs), rtol=1e-7, atol=1e-9)
    if any(len(X.lengths) for X in Xs):
        # (Thinc's list2ragged turns an all-empty batch into float32, whatever the input)
        check_gradients(route, Xs)


# --- what backprop hands back ---------------------------------------------------------


def test_trf2tensor_grad_only_for_the_picked_tensor() -> None:
    rng = numpy.random.RandomState(0)
    X = TransformerOutput(
        tensors=[rng.rand(2, 4, 3) for _ in range(3)],
        lengths=numpy.array([4, 2]),
        hidden_states=[rng.rand(2, 4, 3) for _ in range(13)],
    )
    Y, backprop = trf2tensor(1)([X], is_train=True)
    dY = numpy.ones_like(Y[0])
    (dX,) = backprop([dY])
    assert isinstance(dX, TransformerOutput)
    assert dX.tensors[1] is dY  # passed through, no copy
    for d in [dX.tensors[0], dX.tensors[2], *dX.hidden_states]:
        # the others are zero views that own no memory
        assert d.shape == (2, 4, 3) and not d.any()
        assert d.base is not None and d.base.nbytes <= 8 and not d.flags.writeable
    assert dX.lengths is X.lengths


@pytest.mark.parametrize("factor", [0.0, 0.5, -2.0])
def test_grad_factor_scales_what_flows_back(factor: float) -> None:
    rng = numpy.random.RandomState(0)
    Xs = [one(rng.rand(2, 4, 3), [4, 1]), one(rng.rand(1, 2, 3), [2])]
    for layer in [trf2tensor, lambda **kw: trf_pool(reduce_mean(), **kw), lambda **kw: cls_pool(**kw)]:
        base, scaled = layer(), layer(grad_factor=factor)
        Y, bp = base(Xs, is_train=True)
        dY = (numpy.ones((2, 3)) if not isinstance(Y, list) else [numpy.ones_like(y) for y in Y])
        want = bp(dY)
        _, bp2 = scaled(Xs, is_train=True)
        got = bp2(dY)
        for w, g in zip(want, got):
            assert_allclose(g.tensors[0], w.tensors[0] * factor)


def test_grad_factor_for_trf2layers() -> None:
    rng = numpy.random.RandomState(0)
    X = one(rng.rand(1, 2, 3), [2], hidden_states=[rng.rand(1, 2, 3) for _ in range(3)])
    Y, bp = trf2layers(grad_factor=0.25)([X], is_train=True)
    (dX,) = bp([[numpy.ones((1, 2, 3))] * 3])
    for d in dX.hidden_states:
        assert_allclose(d, 0.25)
    _, bp0 = trf2layers(grad_factor=0.0)([X], is_train=True)
    (dX0,) = bp0([[numpy.ones((1, 2, 3))] * 3])
    assert all(not d.any() and not d.flags.writeable for d in dX0.hidden_states)


def test_cls_pool_backprop_writes_only_the_picked_rows() -> None:
    T = numpy.arange(2 * 4 * 2, dtype="float32").reshape(2, 4, 2)
    X = one(T, [4, 2])
    Y, bp = cls_pool(token_index=-1)([X], is_train=True)
    assert_allclose(Y[0], (T[0, 3] + T[1, 1]) / 2)
    (dX,) = bp(numpy.ones((1, 2), dtype="float32"))
    d = dX.tensors[0]
    assert d.dtype == numpy.float32 and d.flags.writeable
    want = numpy.zeros_like(T)
    want[0, 3] = want[1, 1] = 0.5
    assert_allclose(d, want)


# --- edge cases -------------------------------------------------------------------


def test_empty_batch_and_docs_without_spans(ops: Ops) -> None:
    for layer in [trf2tensor(), trf_pool(reduce_mean()), cls_pool()]:
        set_ops(layer, ops)
        Y, bp = layer([], is_train=True)
        assert bp(Y) == []
    empty = TransformerOutput([ops.alloc3f(0, 3, 5)], ops.asarray1i([]))
    Y, bp = set_ops(trf_pool(reduce_mean()), ops)([empty, empty], is_train=True)
    assert Y.shape == (2, 5) and not to_numpy(Y).any()
    (d1, d2) = bp(Y)
    assert d1.tensors[0].shape == (0, 3, 5)
    Y, bp = set_ops(cls_pool(), ops)([empty], is_train=True)
    assert Y.shape == (1, 5)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("lengths_dtype", ["int32", "int64"])
def test_dtypes_are_kept(dtype: str, lengths_dtype: str, ops: Ops) -> None:
    rng = numpy.random.RandomState(0)
    T = ops.asarray(rng.uniform(-1, 1, (2, 3, 4)).astype(dtype))
    X = TransformerOutput([T], ops.asarray(numpy.array([3, 1], dtype=lengths_dtype)))
    for layer in [trf2tensor(), trf_pool(reduce_mean()), cls_pool()]:
        Y, bp = set_ops(layer, ops)([X], is_train=True)
        y = Y[0] if isinstance(Y, list) else Y
        assert y.dtype == numpy.dtype(dtype)
        dY = [Y[0] * 0 + 1] if isinstance(Y, list) else Y * 0 + 1
        (dX,) = bp(dY)
        assert dX.tensors[0].dtype == numpy.dtype(dtype) and dX.tensors[0].shape == (2, 3, 4)
    want = numpy.concatenate([to_numpy(T)[0], to_numpy(T)[1, :1]]).astype("float64").mean(0)
    got = to_numpy(set_ops(trf_pool(reduce_mean()), ops).predict([X]))[0]
    assert_allclose(got.astype("float64"), want, rtol=2e-3 if dtype == "float16" else 1e-6, atol=1e-3)


def test_nan_propagates_to_its_doc() -> None:
    T = numpy.ones((1, 3, 2))
    T[0, 0, 0] = numpy.nan
    Xs = [one(T, [3]), one(numpy.ones((1, 3, 2)), [3])]
    for layer in [trf_pool(reduce_mean()), cls_pool()]:
        Y = layer.predict(Xs)
        assert numpy.isnan(Y[0, 0]) and not numpy.isnan(Y[1]).any()


def test_trf_pool_initializes_its_pooling_and_nO() -> None:
    from thinc_trf_layers.layers.attention_pool import attention_pool

    rng = numpy.random.RandomState(0)
    Xs = [one(rng.rand(2, 4, 3), [4, 2])]
    model = trf_pool(attention_pool())
    model.initialize(X=Xs)
    Y, bp = model(Xs, is_train=True)
    assert Y.shape == (1, 3)
    check_gradients(model, Xs)


def test_trf_pool_layer_dims() -> None:
    model = trf_pool(reduce_mean())
    assert model.name == "trf_pool(reduce_mean)"
    assert isinstance(model.layers[0], Model)


# --- from_hf ----------------------------------------------------------------------


@pytest.mark.parametrize("side", ["right", "left"])
def test_from_hf_any_padding_side(side: str) -> None:
    rng = numpy.random.RandomState(0)
    lens = [3, 5, 1]
    hidden = [rng.rand(3, 5, 2) for _ in range(4)]
    mask = numpy.zeros((3, 5), dtype="int64")
    for i, n in enumerate(lens):
        if side == "right":
            mask[i, :n] = 1
        else:
            mask[i, 5 - n :] = 1
    outs = TransformerOutput.from_hf(mask, last_hidden_state=hidden[-1], hidden_states=hidden)
    assert len(outs) == 3
    for i, (out, n) in enumerate(zip(outs, lens)):
        real = mask[i].astype(bool)
        assert out.tensors[0].shape == (1, n, 2) and list(out.lengths) == [n]
        assert_allclose(out.tensors[0][0], hidden[-1][i][real])
        assert len(out.hidden_states) == 4
        assert_allclose(out.hidden_states[1][0], hidden[1][i][real])
    if side == "right":
        assert numpy.shares_memory(outs[0].tensors[0], hidden[-1])
    # pooled mean equals a masked mean over the padded batch
    Y = trf_pool(reduce_mean()).predict(outs)
    want = (hidden[-1] * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    assert_allclose(Y, want)


def test_from_hf_last_layer_from_hidden_states_and_torch() -> None:
    torch = pytest.importorskip("torch")
    hidden = [torch.rand(2, 3, 4) for _ in range(2)]
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    outs = TransformerOutput.from_hf(mask, hidden_states=hidden)
    assert_allclose(outs[0].tensors[0][0], hidden[-1][0, :2].numpy())
    assert outs[1].tensors[0].shape == (1, 3, 4)


def test_from_hf_errors() -> None:
    with pytest.raises(LayerInputError, match="expected last_hidden_state or hidden_states"):
        TransformerOutput.from_hf(numpy.ones((2, 3)))
    with pytest.raises(LayerInputError, match=r"attention_mask of shape \(batch, wordpieces\)"):
        TransformerOutput.from_hf(numpy.ones(3), last_hidden_state=numpy.ones((1, 3, 2)))
    with pytest.raises(LayerInputError, match=r"last_hidden_state of shape \(2, 3, width\)"):
        TransformerOutput.from_hf(numpy.ones((2, 3)), last_hidden_state=numpy.ones((2, 4, 2)))
    with pytest.raises(LayerInputError, match=r"hidden_states\[0\] with a floating-point dtype"):
        TransformerOutput.from_hf(numpy.ones((2, 3)), hidden_states=[numpy.ones((2, 3, 2), dtype="i")])


# --- errors -----------------------------------------------------------------------


GOOD = one(numpy.zeros((1, 2, 3)), [2])


@pytest.mark.parametrize("make", [trf2tensor, trf2layers, lambda: trf_pool(reduce_mean()), cls_pool])
def test_unsupported_inputs_name_the_type(make: Any) -> None:
    model = make()
    with pytest.raises(LayerInputError, match=rf"{model.name[:6]}.*expected a list with one transformer output per Doc.*got an array"):
        model.predict(numpy.zeros((1, 2, 3)))
    with pytest.raises(
        LayerInputError,
        match=r"item 1 of the batch is a builtins.dict; expected one transformer output per Doc: a spacy-transformers "
        r"TransformerData, a spacy-curated-transformers DocTransformerOutput, a Ragged .*TransformerOutput",
    ):
        model.predict([GOOD, {"last_hidden_state": 1}])


def test_index_errors() -> None:
    with pytest.raises(LayerInputError, match=r"trf2tensor\(3\): tensor index 3 is out of range for the TransformerOutput, which has 1 tensor"):
        trf2tensor(3).predict([GOOD])
    with pytest.raises(LayerInputError, match=r"expected an int index, got '0'"):
        trf2tensor("0")  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match=r"expected an int index, got True"):
        trf_pool(reduce_mean(), index=True)
    with pytest.raises(LayerInputError, match=r"expected an int token_index, got 0.0"):
        cls_pool(token_index=0.0)  # type: ignore[arg-type]
    with pytest.raises(LayerInputError, match=r"token index 2 is out of range for span 1 of Doc 0, which has 2 real wordpiece"):
        cls_pool(token_index=2).predict([one(numpy.zeros((2, 4, 3)), [4, 2])])
    with pytest.raises(LayerInputError, match="expected pooling to be a Thinc Model"):
        trf_pool("reduce_mean")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", True, None])
def test_grad_factor_errors(bad: Any) -> None:
    for make in [
        lambda: trf2tensor(grad_factor=bad),
        lambda: trf2layers(grad_factor=bad),
        lambda: trf_pool(reduce_mean(), grad_factor=bad),
        lambda: cls_pool(grad_factor=bad),
    ]:
        with pytest.raises(LayerInputError, match=r"expected grad_factor to be a finite float, got"):
            make()


@pytest.mark.parametrize("layer", ["trf2ragged", "trf2tokens", "trf2spans", "trf_pool"])
def test_a_mix_that_is_not_a_model_is_refused_naming_the_layer(layer: str) -> None:
    """Not an AttributeError from reading the mix's name: the layer's own error."""
    import thinc_trf_layers

    make = getattr(thinc_trf_layers, layer)
    args = [reduce_mean()] if layer == "trf_pool" else []
    with pytest.raises(LayerInputError, match=rf"^{layer}(\(0\))?: expected mix to be None or a Thinc Model.*got a builtins\.str"):
        make(*args, mix="scalar_mix")


def test_container_errors() -> None:
    with pytest.raises(LayerInputError, match=r"span lengths are \[3\]; expected 1 lengths, each in \[0, 2\]"):
        trf2tensor().predict([one(numpy.zeros((1, 2, 3)), [3])])
    with pytest.raises(LayerInputError, match=r"span lengths are \[2\]; expected 2 lengths"):
        trf_pool(reduce_mean()).predict([one(numpy.zeros((2, 2, 3)), [2])])
    with pytest.raises(LayerInputError, match=r"TransformerOutput.tensors\[0\] to be a floating-point array of shape \(spans, wordpieces, width\), got an array of shape \(2, 3\)"):
        trf2tensor().predict([one(numpy.zeros((2, 3)), [2, 3])])
    with pytest.raises(LayerInputError, match=r"floating-point.*\(int32\)"):
        trf2tensor().predict([one(numpy.zeros((1, 2, 3), dtype="int32"), [2])])
    with pytest.raises(LayerInputError, match=r"tensors to be a non-empty list"):
        trf2tensor().predict([TransformerOutput([], numpy.zeros(0, dtype="i"))])
    with pytest.raises(LayerInputError, match=r"lengths as a 1d int array"):
        trf2tensor().predict([TransformerOutput([numpy.zeros((1, 2, 3))], numpy.array([2.0]))])
    with pytest.raises(LayerInputError, match=r"trf2layers: expected TransformerOutput.hidden_states to be a non-empty list.*got None.*from_hf"):
        trf2layers().predict([GOOD])
    with pytest.raises(LayerInputError, match=r"hidden_states\[1\] has shape \(1, 2, 3\) but its span lengths are \[5\]"):
        trf2layers().predict(
            [TransformerOutput([numpy.zeros((1, 5, 3))], numpy.array([5]), [numpy.zeros((1, 5, 3)), numpy.zeros((1, 2, 3))])]
        )
    ragged = Ragged(numpy.zeros((3, 2), dtype="f"), numpy.array([1, 2], dtype="i"))
    with pytest.raises(LayerInputError, match=r"a Ragged holds one layer of wordpieces"):
        trf2layers().predict([ragged])
    with pytest.raises(LayerInputError, match=r"out of range for a Ragged.*holds one layer \(index 0\)"):
        trf2tensor(1).predict([ragged])
    with pytest.raises(LayerInputError, match=r"cls_pool\(0, 0\)[^:]*: item 0 of the batch is a Ragged.*removes the BOS/\[CLS\] piece"):
        cls_pool().predict([ragged])
    with pytest.raises(LayerInputError, match=r"expected the Ragged to hold floating-point data of shape \(wordpieces, width\)"):
        trf2tensor().predict([Ragged(numpy.zeros((3,), dtype="f"), numpy.array([3], dtype="i"))])


def test_gradient_errors() -> None:
    Xs = [one(numpy.zeros((1, 2, 3)), [2])]
    _, bp = trf2tensor()(Xs, is_train=True)
    with pytest.raises(LayerGradientError, match=r"trf2tensor\(0\) \(item 0\): backprop expected a gradient of shape \(1, 2, 3\)"):
        bp([numpy.zeros((1, 2, 2))])
    with pytest.raises(LayerGradientError, match=r"trf2tensor\(0\): backprop expected a list of 1 gradients"):
        bp(numpy.zeros((1, 2, 3)))
    _, bp = cls_pool()(Xs, is_train=True)
    with pytest.raises(LayerGradientError, match=r"cls_pool\(0, 0\)[^:]*: backprop expected a gradient of shape \(1, 3\) \(float64\)"):
        bp(numpy.zeros((1, 3), dtype="f"))
    _, bp = trf_pool(reduce_mean())(Xs, is_train=True)
    with pytest.raises(LayerGradientError):
        bp(numpy.zeros((2, 3)))
    X = one(numpy.zeros((1, 2, 3)), [2], hidden_states=[numpy.zeros((1, 2, 3))] * 2)
    _, bp = trf2layers()([X], is_train=True)
    with pytest.raises(LayerGradientError, match=r"trf2layers \(Doc 0\): backprop expected a list of 2 gradients"):
        bp([[numpy.zeros((1, 2, 3))]])
    with pytest.raises(LayerGradientError, match=r"trf2layers: backprop expected a list of 1 gradients, one list of layers per Doc"):
        bp([])


def test_no_warning_for_our_container() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, bp = trf2tensor(0)([GOOD], is_train=True)
        bp([numpy.ones((1, 2, 3))])


def test_trf2layers_n_layers() -> None:
    X = one(numpy.zeros((1, 2, 3)), [2], hidden_states=[numpy.zeros((1, 2, 3))] * 2)
    assert len(trf2layers(n_layers=2).predict([X])[0]) == 2
    with pytest.raises(LayerInputError, match=r"trf2layers: Doc 0 has 2 hidden layers \(thinc_trf_layers TransformerOutput\); expected n_layers=3"):
        trf2layers(n_layers=3).predict([X])
    with pytest.raises(LayerInputError, match=r"expected n_layers >= 1, got 0"):
        trf2layers(n_layers=0)
    with pytest.raises(LayerInputError, match=r"expected an int n_layers, got '2'"):
        trf2layers(n_layers="2")  # type: ignore[arg-type]


def test_trf2layers_empty_docs_keep_the_layer_count() -> None:
    X = one(numpy.ones((1, 2, 3)), [2], hidden_states=[numpy.ones((1, 2, 3))] * 2)
    empty = TransformerOutput([numpy.zeros((0, 2, 3))], numpy.zeros(0, dtype="i"), [numpy.zeros((0, 2, 3))] * 2)
    Ys = trf2layers().predict([X, empty])
    assert [len(Y) for Y in Ys] == [2, 2] and Ys[1][0].shape == (0, 2, 3)


def test_trf_pool_with_thincs_pooling_on_a_batch_without_wordpieces() -> None:
    """Thinc's reduce_mean loses the width of an empty Ragged; backprop still works."""
    import thinc.api

    empty = TransformerOutput(tensors=[numpy.zeros((0, 3, 4), dtype="f")], lengths=numpy.zeros((0,), dtype="i"))
    model = trf_pool(thinc.api.reduce_mean())
    model.initialize()
    Y, backprop = model([empty], is_train=True)
    (dX,) = backprop(numpy.zeros_like(Y))
    assert dX.tensors[0].shape == (0, 3, 4)


@pytest.mark.parametrize("where", ["tensors", "lengths"])
def test_torch_arrays_in_a_transformer_output_get_a_clear_error(where: str) -> None:
    torch = pytest.importorskip("torch")
    T: Any = numpy.zeros((1, 3, 4), dtype="f")
    lengths: Any = numpy.asarray([3], dtype="i")
    if where == "tensors":
        T = torch.zeros(1, 3, 4)
    else:
        lengths = torch.tensor([3])
    X = TransformerOutput(tensors=[T], lengths=lengths)
    for layer in (trf_pool(reduce_mean()), cls_pool(), trf2tensor(0)):
        with pytest.raises(LayerInputError, match=r"NumPy or CuPy array.*TransformerOutput\.from_hf"):
            layer([X], is_train=False)
