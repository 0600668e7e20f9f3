"""bfloat16 transformer outputs (what most GPU inference runs in) through
``TransformerOutput.from_hf`` and the layers, on the offline all-MiniLM-L6-v2 run in
bfloat16 on the CPU: NumPy has no bfloat16, so from_hf hands the layers float32, and
every result equals the one computed from the same values given as float32."""
from typing import Any, List

import numpy
import pytest
import torch
from numpy.testing import assert_array_equal
from transformers import AutoModel, AutoTokenizer

from pipelines import MODEL_PATH  # noqa: E402
from thinc.api import chain

from thinc_trf_layers import TransformerOutput, cls_pool, map_list, reduce_mean, scalar_mix, trf2layers, trf_pool

TEXTS = ["A man is eating food.", "The girl is carrying a baby. It is late at night.", "Hi"]


@pytest.fixture(scope="module")
def outputs() -> Any:
    tokenizer = AutoTokenizer.from_pretrained(MODEL_PATH)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    model = AutoModel.from_pretrained(MODEL_PATH)
    with torch.no_grad():
        full = model(**batch, output_hidden_states=True)
        half = model.to(torch.bfloat16)(**batch, output_hidden_states=True)
    assert half.last_hidden_state.dtype == torch.bfloat16
    return batch["attention_mask"], full, half


def layers_of(out: List[TransformerOutput]) -> Any:
    mix = chain(trf2layers(), map_list(scalar_mix(n_layers=7)))
    mix.initialize(X=out)
    return numpy.concatenate([y.reshape(-1) for y in mix.predict(out)])


def test_bfloat16_outputs_compute_in_float32(outputs: Any) -> None:
    mask, full, half = outputs
    bf16 = TransformerOutput.from_hf(mask, last_hidden_state=half.last_hidden_state, hidden_states=half.hidden_states)
    # the same values as float32 tensors: what every result must equal
    as_f32 = TransformerOutput.from_hf(
        mask, last_hidden_state=half.last_hidden_state.float(), hidden_states=[h.float() for h in half.hidden_states]
    )
    f32 = TransformerOutput.from_hf(mask, last_hidden_state=full.last_hidden_state, hidden_states=full.hidden_states)
    assert all(o.tensors[0].dtype == numpy.float32 for o in bf16)
    assert all(h.dtype == numpy.float32 for o in bf16 for h in o.hidden_states or [])
    for layer in (trf_pool(reduce_mean()), cls_pool()):
        got, same, reference = layer.predict(bf16), layer.predict(as_f32), layer.predict(f32)
        assert got.dtype == numpy.float32
        assert_array_equal(got, same)
        cosine = (got * reference).sum(1) / numpy.linalg.norm(got, axis=1) / numpy.linalg.norm(reference, axis=1)
        assert cosine.min() > 0.99, cosine  # bfloat16 keeps 8 bits of mantissa
    assert_array_equal(layers_of(bf16), layers_of(as_f32))
