"""Our layers on the real spacy-transformers and spacy-curated-transformers containers,
built from arrays of realistic shape (padded spans, several spans per Doc, empty Docs)."""
import warnings
from typing import Any, List, Optional

import numpy
import pytest
from numpy.testing import assert_allclose
from thinc.api import Ops, chain, list2ragged
from thinc.types import Ragged

pytest.importorskip("spacy_transformers")
from spacy_transformers.data_classes import TransformerData, WordpieceBatch  # noqa: E402
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions  # noqa: E402
from transformers.utils import ModelOutput  # noqa: E402

from helpers import set_ops  # noqa: E402
from thinc_trf_layers import (  # noqa: E402
    LayerInputError,
    TransformerOutput,
    TransformerGradientWarning,
    attention_pool,
    check_gradients,
    cls_pool,
    map_list,
    mean_last,
    reduce_last,
    reduce_max,
    reduce_mean_max,
    reduce_sum,
    reduce_weighted_mean,
    select_token,
    trf2layers,
    trf2ragged,
    trf2tensor,
    trf_pool,
)
from thinc_trf_layers.layers.reduce_mean import reduce_mean  # noqa: E402

WIDTH = 4
N_LAYERS = 3  # hidden states: embeddings + 2 layers


def st_data(
    lengths: List[int],
    n_pieces: int,
    *,
    hidden: bool = True,
    seed: int = 0,
    dtype: str = "float32",
    mask_dtype: str = "float32",
) -> TransformerData:
    """A TransformerData as split_by_doc makes it: spans padded to ``n_pieces``."""
    rng = numpy.random.RandomState(seed)
    n_spans = len(lengths)
    mask = numpy.zeros((n_spans, n_pieces), dtype=mask_dtype)
    for s, n in enumerate(lengths):
        mask[s, :n] = 1
    layers = [rng.uniform(-1, 1, (n_spans, n_pieces, WIDTH)).astype(dtype) for _ in range(N_LAYERS)]
    for layer in layers:
        layer[mask == 0] = 1e3  # padding must never count
    output = ModelOutput()
    output["last_hidden_state"] = layers[-1]
    output["pooler_output"] = rng.uniform(-1, 1, (n_spans, WIDTH)).astype(dtype)
    if hidden:
        output["hidden_states"] = layers
    wordpieces = WordpieceBatch(
        strings=[["[CLS]"] + ["x"] * (n - 2) + ["[SEP]"] for n in lengths],
        input_ids=numpy.ones((n_spans, n_pieces), dtype="i"),
        attention_mask=mask,
        lengths=list(lengths),
        token_type_ids=None,
    )
    n_tokens = sum(max(n - 2, 0) for n in lengths)
    align = Ragged(numpy.arange(n_tokens, dtype="i"), numpy.ones(n_tokens, dtype="i"))
    return TransformerData(wordpieces=wordpieces, model_output=output, align=align)


def batch(**kwargs: Any) -> List[TransformerData]:
    # a long Doc in two spans, a short one, an empty Doc, a one-wordpiece span
    return [
        st_data([6, 4], 6, seed=1, **kwargs),
        st_data([3], 6, seed=2, **kwargs),
        TransformerData.empty(),
        st_data([1], 6, seed=3, **kwargs),
    ]


#: the core on every container: the wordpieces as a Ragged, our poolings in place, a
#: pooling that reads the gathered rows
CORE = [
    lambda: chain(trf2ragged(), reduce_sum()),
    lambda: trf_pool(reduce_max()),
    lambda: trf_pool(reduce_mean_max()),
    lambda: trf_pool(reduce_last()),
    lambda: trf_pool(reduce_weighted_mean()),
    lambda: trf_pool(attention_pool(WIDTH)).initialize(),
]


def real_rows(td: TransformerData, T: Any) -> Any:
    return numpy.concatenate([T[s, :n] for s, n in enumerate(td.wordpieces.lengths)])


# --- spacy-transformers -----------------------------------------------------------


def test_trf2tensor_reads_tensors_and_hands_back_last_hidden_state_only() -> None:
    Xs = batch()
    Ys, bp = trf2tensor(0)(Xs, is_train=True)
    assert Ys[0] is Xs[0].model_output.last_hidden_state
    assert Ys[2].shape == (0, 0, WIDTH) and Ys[2].dtype == numpy.float32
    dYs = [numpy.ones_like(Y) for Y in Ys]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dXs = bp(dYs)
    # the empty Doc gets no entry, as spacy-transformers' own trfs2arrays does
    assert len(dXs) == 3
    for dX, X, dY in zip(dXs, [Xs[0], Xs[1], Xs[3]], [dYs[0], dYs[1], dYs[3]]):
        assert isinstance(dX, TransformerData)
        assert list(dX.model_output.keys()) == ["last_hidden_state"]
        assert len(dX.tensors) == 1 and dX.tensors[0] is dY
        assert dX.wordpieces is X.wordpieces and dX.align is X.align


def test_data_of_transformer_model_v1_reaches_and_gets_a_gradient_for_every_tensor() -> None:
    from thinc_trf_layers.spacy.transformer_model import AllLayersData

    Xs = [AllLayersData(d.wordpieces, d.model_output, d.align) for d in batch()]
    kept = [Xs[0], Xs[1], Xs[3]]  # the empty Doc gets no entry
    Ys, bp = trf2tensor(0)(Xs, is_train=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dXs = bp([numpy.ones_like(Y) for Y in Ys])
    assert len(dXs) == 3
    for dX, X in zip(dXs, kept):
        assert type(dX) is AllLayersData
        assert list(dX.model_output.keys()) == ["last_hidden_state", "pooler_output", "hidden_states"]
        d_last, d_pooler, d_hidden = dX.tensors
        assert (d_last == 1).all()
        assert d_pooler.shape == X.model_output["pooler_output"].shape and not d_pooler.any()
        # the layers on the first axis: the pipe's += sums two listeners layer by layer
        assert d_hidden.shape == (N_LAYERS, *X.model_output["hidden_states"][0].shape) and not d_hidden.any()
        assert all(t.flags.writeable for t in dX.tensors)
    Ls, bp_layers = trf2layers()(Xs, is_train=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every layer reaches: no TransformerGradientWarning
        dXs = bp_layers([[numpy.full_like(L, i + 1) for i, L in enumerate(layers)] for layers in Ls])
    for dX in dXs:
        d_last, d_pooler, d_hidden = dX.tensors
        assert not d_last.any() and not d_pooler.any()
        for i in range(N_LAYERS):
            assert (d_hidden[i] == i + 1).all()


def test_gradient_is_what_the_transformer_component_accumulates() -> None:
    # Transformer.update's callback adds later listeners' gradients into the first one's
    # arrays in place: every tensor we hand back must be writable.
    Xs = batch()
    # mean_last hands back one read-only array for its k layers: trf2layers copies it
    mixed = chain(trf2layers(), map_list(mean_last(2)))
    for model in [cls_pool(), trf_pool(reduce_mean()), trf2tensor(0), cls_pool(grad_factor=0.0), mixed]:
        Y, bp = model(Xs, is_train=True)

        def dY() -> Any:
            return [numpy.ones_like(y) for y in Y] if isinstance(Y, list) else numpy.ones_like(Y)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TransformerGradientWarning)  # unreached layers
            first, second = bp(dY()), bp(dY())
        for a, b in zip(first, second):
            before = a.tensors[0].copy()
            a.tensors[0][...] += b.tensors[0]
            assert_allclose(a.tensors[0], before + b.tensors[0])


def test_values_against_references() -> None:
    Xs = batch()
    Y = trf_pool(reduce_mean()).predict(Xs)
    for i, X in enumerate(Xs):
        if i == 2:
            assert not Y[i].any()
            continue
        T = X.model_output.last_hidden_state
        assert_allclose(Y[i], real_rows(X, T).mean(0), rtol=1e-6)
    Y = cls_pool().predict(Xs)
    assert_allclose(Y[0], Xs[0].model_output.last_hidden_state[:, 0].mean(0), rtol=1e-6)
    route = chain(trf2tensor(0), map_list(select_token(0)), list2ragged(), reduce_mean())
    assert_allclose(route.predict(Xs), Y, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: trf2tensor(0),
        lambda: trf_pool(reduce_mean()),
        lambda: cls_pool(),
        lambda: cls_pool(token_index=-1),
        lambda: chain(trf2tensor(0), map_list(select_token(0)), list2ragged(), reduce_mean()),
        *CORE,
    ],
)
def test_gradients_through_transformer_data(make: Any) -> None:
    # check_gradients walks dataclasses: give the attention mask an int dtype so that it
    # is held fixed, like the lengths (the layers read the lengths, not the mask)
    Xs = [X for X in batch(mask_dtype="int32") if X.tensors]
    check_gradients(make(), Xs)


def test_trf2layers_last_layer_reaches_last_hidden_state_and_warns_once() -> None:
    Xs = batch()
    model = trf2layers()
    Ys, bp = model(Xs, is_train=True)
    assert [len(Y) for Y in Ys] == [N_LAYERS] * 4
    assert Ys[2][0].shape == (0, 0, WIDTH)
    dYs = [[numpy.full_like(L, j + 1.0) for j, L in enumerate(Y)] for Y in Ys]
    with pytest.warns(TransformerGradientWarning, match=r"trf2layers: spacy-transformers' TransformerModel backpropagates into last_hidden_state only.*hidden layers 0..1"):
        dXs = bp(dYs)
    assert len(dXs) == 3
    assert list(dXs[0].model_output.keys()) == ["last_hidden_state"]
    assert_allclose(dXs[0].tensors[0], float(N_LAYERS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(Xs, is_train=True)[1](dYs)  # once per model


def test_trf2layers_when_last_layer_is_not_last_hidden_state() -> None:
    X = st_data([3], 4)
    X.model_output["last_hidden_state"] = X.model_output["last_hidden_state"] + 1
    _, bp = trf2layers()([X], is_train=True)
    with pytest.warns(TransformerGradientWarning):
        (dX,) = bp([[numpy.ones((1, 4, WIDTH), dtype="f")] * N_LAYERS])
    # the component still gets the one writable tensor it needs, of zeros
    assert not dX.tensors[0].any() and dX.tensors[0].flags.writeable


def test_picking_a_tensor_that_cannot_be_trained_warns() -> None:
    X = st_data([3], 4)
    output = ModelOutput()
    output["last_hidden_state"] = X.model_output["last_hidden_state"]
    output["other"] = X.model_output["last_hidden_state"] * 2
    X.model_output = output
    Y, bp = trf2tensor(1)([X], is_train=True)
    with pytest.warns(TransformerGradientWarning, match=r"trf2tensor\(1\): .*the gradient of tensor 1 cannot reach"):
        (dX,) = bp([numpy.ones_like(Y[0])])
    assert list(dX.model_output.keys()) == ["last_hidden_state"] and not dX.tensors[0].any()
    _, bp0 = trf2tensor(1, grad_factor=0.0)([X], is_train=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bp0([numpy.ones_like(Y[0])])  # frozen on purpose: no warning


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("index", [0, 1])
def test_cls_pool_backprop_is_the_same_through_the_kernel_and_the_generic_path(
    index: int, dtype: str
) -> None:
    """cls_pool's one-pass kernel backward (NumpyOps) against the generic Ops' scatter on
    spacy-transformers containers: an empty Doc (no tensor), strided tensors, a tensor
    whose gradient cannot reach the transformer (index 1) beside our TransformerOutput
    (whose can), a non-contiguous dY, grad_factor 0.5."""
    Xs: List[Any] = batch(dtype=dtype)
    wide = numpy.random.RandomState(7).uniform(-1, 1, (2, 6, 2 * WIDTH)).astype(dtype)
    Xs[0].model_output["last_hidden_state"] = wide[:, :, ::2]  # every other column
    for X in Xs:
        if X.model_output:
            output = ModelOutput()
            output["last_hidden_state"] = X.model_output["last_hidden_state"]
            output["other"] = output["last_hidden_state"] * 2  # tensor 1
            X.model_output = output
    Xs.append(TransformerOutput(tensors=[w[:, :, 1::2] for w in (wide, wide)], lengths=numpy.asarray([5, 6])))
    fast = cls_pool(index=index, token_index=-1, grad_factor=0.5)
    generic = set_ops(cls_pool(index=index, token_index=-1, grad_factor=0.5), Ops())
    Y, bp = fast(Xs, is_train=True)
    Y_generic, bp_generic = generic(Xs, is_train=True)
    assert_allclose(Y, Y_generic, rtol=1e-6)
    dY = numpy.random.RandomState(8).uniform(-1, 1, (len(Xs), 2 * WIDTH)).astype(dtype)[:, ::2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TransformerGradientWarning)  # (index 1 cannot reach)
        got = bp(dY)
        want = bp_generic(dY)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is type(w)
        g_arrays = list(g.model_output.values()) if isinstance(g, TransformerData) else g.tensors
        w_arrays = list(w.model_output.values()) if isinstance(w, TransformerData) else w.tensors
        assert len(g_arrays) == len(w_arrays)
        for a, b in zip(g_arrays, w_arrays):
            assert a.dtype == b.dtype == numpy.dtype(dtype)
            assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # our TransformerOutput always reaches: its picks got dY * 0.5 / 2 spans
    last = got[-1].tensors[index]
    assert_allclose(last[0, 4], dY[-1] * 0.25, rtol=1e-6)


def test_spacy_transformers_errors() -> None:
    X = st_data([3], 4)
    with pytest.raises(LayerInputError, match=r"trf2tensor\(1\): expected tensor 1 of the TransformerData \('pooler_output'\) to be a floating-point array of shape \(spans, wordpieces, width\), got an array of shape \(1, 4\)"):
        trf2tensor(1).predict([X])
    with pytest.raises(LayerInputError, match=r"tensor 2 of the TransformerData \('hidden_states'\) is a list of 3 arrays.*use trf2layers\(\)"):
        trf_pool(reduce_mean(), index=2).predict([X])
    with pytest.raises(LayerInputError, match=r"tensor index 3 is out of range for the TransformerData \(tensors: last_hidden_state, pooler_output, hidden_states\)"):
        cls_pool(index=3).predict([X])
    with pytest.raises(LayerInputError, match=r"trf2layers: the TransformerData has no hidden states.*output_hidden_states = true"):
        trf2layers().predict([st_data([3], 4, hidden=False)])
    X.wordpieces.lengths = [5]
    with pytest.raises(LayerInputError, match=r"span lengths are \[5\]; expected 1 lengths, each in \[0, 4\]"):
        trf2tensor().predict([X])


def test_real_model_output_class_is_kept() -> None:
    X = st_data([3], 4, hidden=False)
    X.model_output = BaseModelOutputWithPoolingAndCrossAttentions(
        last_hidden_state=X.model_output["last_hidden_state"]
    )
    _, bp = trf2tensor()([X], is_train=True)
    (dX,) = bp([numpy.ones((1, 4, WIDTH), dtype="f")])
    assert type(dX.model_output) is BaseModelOutputWithPoolingAndCrossAttentions
    assert dX.tensors[0].shape == (1, 4, WIDTH)


# --- spacy-curated-transformers ------------------------------------------------------


def curated(n_tokens: List[int], *, last_layer_only: bool = False, seed: int = 0) -> Any:
    pytest.importorskip("spacy_curated_transformers")
    from spacy_curated_transformers.models.output import DocTransformerOutput

    rng = numpy.random.RandomState(seed)
    lengths = numpy.asarray(n_tokens, dtype="i")  # wordpieces per spaCy token
    n = int(lengths.sum())
    layers = [Ragged(rng.uniform(-1, 1, (n, WIDTH)).astype("f"), lengths) for _ in range(N_LAYERS)]
    return DocTransformerOutput(all_outputs=layers[-1:] if last_layer_only else layers, last_layer_only=last_layer_only)


def test_curated_last_layer_as_one_span() -> None:
    Xs = [curated([1, 2, 0, 1], seed=1), curated([], seed=2), curated([3], last_layer_only=True)]
    Ys, bp = trf2tensor()(Xs, is_train=True)
    assert [Y.shape for Y in Ys] == [(1, 4, WIDTH), (1, 0, WIDTH), (1, 3, WIDTH)]
    assert_allclose(Ys[0][0], Xs[0].all_outputs[-1].dataXd)
    dXs = bp([numpy.ones_like(Y) for Y in Ys])
    assert type(dXs[0]) is type(Xs[0]) and len(dXs[0].all_outputs) == N_LAYERS
    d_last = dXs[0].all_outputs[-1]
    assert_allclose(d_last.dataXd, 1.0)
    assert_allclose(d_last.lengths, Xs[0].all_outputs[-1].lengths)
    for d in dXs[0].all_outputs[:-1]:  # zero views: no memory
        assert not d.dataXd.any() and not d.dataXd.flags.writeable
    Y = trf_pool(reduce_mean()).predict(Xs)
    assert_allclose(Y[0], Xs[0].all_outputs[-1].dataXd.mean(0), rtol=1e-6)
    assert not Y[1].any()


@pytest.mark.parametrize("make", [lambda: trf2tensor(), lambda: trf_pool(reduce_mean()), lambda: trf2layers(), *CORE])
def test_gradients_through_curated(make: Any) -> None:
    Xs = [curated([1, 2, 0, 1], seed=1), curated([2], seed=2), curated([], seed=3)]
    check_gradients(make(), Xs)


def test_curated_bare_ragged_as_its_listeners_hand_it() -> None:
    X = curated([2, 1]).all_outputs[-1]
    Y, bp = trf_pool(reduce_mean())([X], is_train=True)
    assert_allclose(Y[0], X.dataXd.mean(0), rtol=1e-6)
    (dX,) = bp(numpy.ones_like(Y))
    assert isinstance(dX, Ragged) and dX.dataXd.shape == X.dataXd.shape
    assert_allclose(dX.lengths, X.lengths)
    check_gradients(trf_pool(reduce_mean()), [X])


def test_curated_errors() -> None:
    with pytest.raises(LayerInputError, match=r"trf2tensor\(1\): tensor index 1 is out of range for a spacy-curated-transformers DocTransformerOutput.*use trf2layers\(\)"):
        trf2tensor(1).predict([curated([1])])
    with pytest.raises(LayerInputError, match=r"trf2layers: the spacy-curated-transformers DocTransformerOutput holds only its last layer.*all_layer_outputs = true"):
        trf2layers().predict([curated([1], last_layer_only=True)])
    with pytest.raises(LayerInputError, match=r"cls_pool\(0, 0\)[^:]*: item 0 of the batch is a spacy-curated-transformers DocTransformerOutput: .*removes the BOS/\[CLS\] piece"):
        cls_pool().predict([curated([1])])


def test_trf2layers_reads_the_listener_placeholder_with_n_layers() -> None:
    # what spacy-transformers' listener gives for a Doc without trf_data (spaCy's initialize)
    placeholder = TransformerData.zeros(5, WIDTH)
    with pytest.raises(LayerInputError, match=r"no hidden states.*trf2layers\(n_layers=...\)"):
        trf2layers().predict([placeholder])
    (Y,) = trf2layers(n_layers=N_LAYERS).predict([placeholder])
    assert len(Y) == N_LAYERS and all(L.shape == (1, 5, WIDTH) and not L.any() for L in Y)
    # a real TransformerData without hidden states is still an error
    with pytest.raises(LayerInputError, match="no hidden states"):
        trf2layers(n_layers=N_LAYERS).predict([st_data([3], 4, hidden=False)])


def test_left_padded_spacy_transformers_batch_is_refused() -> None:
    X = st_data([2, 4], 4)
    X.wordpieces.attention_mask = X.wordpieces.attention_mask[:, ::-1].copy()  # left padding
    with pytest.raises(LayerInputError, match=r"attention mask of the TransformerData does not mark the first wordpieces.lengths=\[2, 4\].*padding_side"):
        trf_pool(reduce_mean()).predict([X])


def test_initialize_under_data_validation() -> None:
    from thinc.api import data_validation

    with data_validation(True):
        for model in [trf_pool(reduce_mean()), cls_pool(), trf2tensor(), trf2layers()]:
            model.initialize(X=batch())
        for model in [trf_pool(reduce_mean()), trf2tensor(), trf2layers()]:
            model.initialize(X=[curated([1, 2]), curated([])])
