"""Our poolings against sentence-transformers' ``Pooling`` module on the same arrays.

sentence-transformers works on a padded batch and an attention mask; we run the same
numbers as a ``Ragged`` (the real positions) and as a padded batch through
``with_padded_mask``.
"""
from typing import Any, Callable, Dict

import numpy
import pytest
from numpy.testing import assert_allclose
from thinc.types import Ragged

from thinc_trf_layers import (
    reduce_first,
    reduce_last,
    reduce_max,
    reduce_mean,
    reduce_mean_sqrt_len,
    reduce_weighted_mean,
    with_padded_mask,
)

torch = pytest.importorskip("torch")
st_models = pytest.importorskip("sentence_transformers.models")

#: sentence-transformers mode -> our layer
MODES: Dict[str, Callable[[], Any]] = {
    "cls": reduce_first,
    "mean": reduce_mean,
    "max": reduce_max,
    "mean_sqrt_len_tokens": reduce_mean_sqrt_len,
    "weightedmean": reduce_weighted_mean,
    "lasttoken": reduce_last,
}


def _batch(seed: int, left: bool = False) -> Any:
    rng = numpy.random.RandomState(seed)
    lengths = numpy.asarray([5, 1, 7, 3, 7], dtype="int64")
    B, L, W = len(lengths), int(lengths.max()), 6
    X = rng.uniform(-2, 2, (B, L, W)).astype("float32")
    mask = (numpy.arange(L)[None, :] < lengths[:, None]).astype("int64")
    if left:
        mask = mask[:, ::-1].copy()
    X[mask == 0] = 3.0  # junk in the padding
    return X, mask, lengths


def _sentence_transformers(mode: str, X: Any, mask: Any) -> Any:
    pooling = st_models.Pooling(X.shape[-1], pooling_mode=mode)
    features = {
        "token_embeddings": torch.from_numpy(X.copy()),  # "max" writes into it
        "attention_mask": torch.from_numpy(mask),
    }
    with torch.no_grad():
        return pooling(features)["sentence_embedding"].numpy()


def _ragged(X: Any, mask: Any) -> Ragged:
    rows = [X[i][mask[i] != 0] for i in range(X.shape[0])]
    return Ragged(numpy.concatenate(rows), mask.sum(axis=1).astype("int32"))


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("seed", [0, 1])
def test_right_padded(mode: str, seed: int) -> None:
    X, mask, lengths = _batch(seed)
    want = _sentence_transformers(mode, X, mask)
    ours_ragged = MODES[mode]().predict(_ragged(X, mask))
    ours_padded_lengths = with_padded_mask(MODES[mode]()).predict((X, lengths))
    ours_padded_mask = with_padded_mask(MODES[mode]()).predict((X, mask))
    for got in (ours_ragged, ours_padded_lengths, ours_padded_mask):
        assert got.shape == want.shape
        assert_allclose(got, want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("mode", ["mean", "max", "mean_sqrt_len_tokens", "lasttoken"])
def test_left_padded(mode: str) -> None:
    # the modes sentence-transformers computes from the mask alone agree on left padding
    X, mask, _ = _batch(2, left=True)
    want = _sentence_transformers(mode, X, mask)
    got = with_padded_mask(MODES[mode]()).predict((X, mask))
    assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_weightedmean_is_independent_of_the_padding_side() -> None:
    # sentence-transformers weights padded slots 1..L, so left padding shifts its
    # weights; ours counts positions within the real wordpieces.
    X_right, mask_right, _ = _batch(3)
    X_left = numpy.full_like(X_right, 3.0)
    mask_left = mask_right[:, ::-1].copy()
    for i, n in enumerate(mask_right.sum(axis=1)):
        X_left[i, X_right.shape[1] - n :] = X_right[i, :n]
    ours_right = with_padded_mask(reduce_weighted_mean()).predict((X_right, mask_right))
    ours_left = with_padded_mask(reduce_weighted_mean()).predict((X_left, mask_left))
    assert_allclose(ours_left, ours_right, rtol=1e-6, atol=1e-6)
    assert_allclose(ours_right, _sentence_transformers("weightedmean", X_right, mask_right), rtol=2e-6, atol=2e-6)
    st_left = _sentence_transformers("weightedmean", X_left, mask_left)
    assert not numpy.allclose(st_left, ours_left, rtol=1e-4, atol=1e-4)


def test_empty_row_mean_matches() -> None:
    X, mask, lengths = _batch(4)
    mask[1] = 0
    lengths[1] = 0
    want = _sentence_transformers("mean", X, mask)
    got = with_padded_mask(reduce_mean()).predict((X, lengths))
    assert_allclose(got, want, rtol=2e-6, atol=2e-6)
    assert (got[1] == 0).all()
