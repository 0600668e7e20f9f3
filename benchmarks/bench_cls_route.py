"""The [CLS] route of spaCy discussion #7178, on spacy-transformers containers with
``output_hidden_states`` on: what backprop allocates, and how long forward + backprop take.

- baseline: the design sketched in the discussion: a ``trf2tensor`` whose backprop
  allocates zeros for every tensor of the output (last_hidden_state, pooler_output and
  each hidden state) and sets the picked one, then Thinc's ``map_list(array_getitem)``,
  ``list2ragged`` and ``reduce_mean``;
- ours: ``trf2tensor(0) >> map_list(select_token(0)) >> list2ragged() >> reduce_mean()``;
- ours: ``cls_pool()``.

Memory is the peak that tracemalloc sees while backprop runs (NumPy reports its
allocations to it), the returned gradients included; the note gives it in MB and as a
multiple of the picked tensor (every Doc's last_hidden_state). Time is the median of
forward + backprop, with its ratio to the baseline.
"""
import tracemalloc
from typing import Any, Callable, List, Tuple

import numpy
from thinc.api import Model, chain, list2ragged
from thinc.api import reduce_mean as thinc_reduce_mean
from thinc.layers.array_getitem import array_getitem as thinc_array_getitem
from thinc.layers.map_list import map_list as thinc_map_list

from .common import Row, timeit


def _containers(n_docs: int, n_pieces: int, width: int, n_layers: int, seed: int = 0) -> List[Any]:
    from spacy_transformers.data_classes import TransformerData, WordpieceBatch
    from thinc.types import Ragged
    from transformers.utils import ModelOutput

    rng = numpy.random.RandomState(seed)
    out = []
    for i in range(n_docs):
        n_spans = 1 + i % 2
        lengths = [int(n) for n in rng.randint(n_pieces // 2, n_pieces + 1, size=n_spans)]
        mask = numpy.zeros((n_spans, n_pieces), dtype="float32")
        for s, n in enumerate(lengths):
            mask[s, :n] = 1
        hidden = [rng.uniform(-1, 1, (n_spans, n_pieces, width)).astype("float32") for _ in range(n_layers)]
        output = ModelOutput()
        output["last_hidden_state"] = hidden[-1]
        output["pooler_output"] = rng.uniform(-1, 1, (n_spans, width)).astype("float32")
        output["hidden_states"] = hidden
        wordpieces = WordpieceBatch(
            strings=[["x"] * n for n in lengths],
            input_ids=numpy.ones((n_spans, n_pieces), dtype="i"),
            attention_mask=mask,
            lengths=lengths,
            token_type_ids=None,
        )
        align = Ragged(numpy.zeros(0, dtype="i"), numpy.zeros(0, dtype="i"))
        out.append(TransformerData(wordpieces=wordpieces, model_output=output, align=align))
    return out


def discussion_trf2tensor(index: int = 0) -> Model[Any, Any]:
    """The layer sketched in discussion #7178: zeros for every tensor in backprop."""

    def forward(
        model: Model[Any, Any], trf_datas: List[Any], is_train: bool
    ) -> Tuple[Any, Callable[..., Any]]:
        from spacy_transformers.data_classes import TransformerData
        from transformers.utils import ModelOutput

        outputs = [trf_data.tensors[index] for trf_data in trf_datas]

        def backprop(d_outputs: List[Any]) -> List[Any]:
            d_trf_datas = []
            for trf_data, d_output in zip(trf_datas, d_outputs):
                d_model_output = ModelOutput()
                for key, value in trf_data.model_output.items():
                    if isinstance(value, list):
                        d_model_output[key] = [model.ops.alloc(v.shape, dtype=v.dtype) for v in value]
                    else:
                        d_model_output[key] = model.ops.alloc(value.shape, dtype=value.dtype)
                d_model_output[list(trf_data.model_output.keys())[index]] = d_output
                d_trf_datas.append(
                    TransformerData(
                        wordpieces=trf_data.wordpieces, model_output=d_model_output, align=trf_data.align
                    )
                )
            return d_trf_datas

        return outputs, backprop

    return Model("discussion_trf2tensor", forward)


def _backprop_peak(model: Model[Any, Any], X: Any) -> int:
    Y, backprop = model(X, is_train=True)
    dY = numpy.ones_like(Y)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        dX = backprop(dY)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    del dX
    return peak


def run(quick: bool = False) -> List[Tuple[str, List[Row]]]:
    import thinc_trf_layers as ttl
    from thinc_trf_layers.layers.reduce_mean import reduce_mean

    settings = [(8, 64, 256, 13)] if quick else [(32, 128, 768, 13)]
    rows: List[Row] = []
    for n_docs, n_pieces, width, n_layers in settings:
        X = _containers(n_docs, n_pieces, width, n_layers)
        picked = sum(int(x.model_output["last_hidden_state"].nbytes) for x in X)
        case = f"{n_docs}x<=2x{n_pieces}x{width}, {n_layers} layers"
        models = [
            (
                "#7178: zeros for all + thinc getitem",
                chain(
                    discussion_trf2tensor(0),
                    thinc_map_list(thinc_array_getitem((slice(None), 0))),
                    list2ragged(),
                    thinc_reduce_mean(),
                ),
            ),
            (
                "ours: trf2tensor >> select_token(0) >> mean",
                chain(ttl.trf2tensor(0), ttl.map_list(ttl.select_token(0)), list2ragged(), reduce_mean()),
            ),
            ("ours: cls_pool()", ttl.cls_pool()),
        ]
        base_seconds = None
        for name, model in models:
            peak = _backprop_peak(model, X)

            def step(model: Model[Any, Any] = model) -> None:
                Y, backprop = model(X, is_train=True)
                backprop(numpy.ones_like(Y))

            seconds = timeit(step, repeat=3 if quick else 7, min_time=0.02 if quick else 0.2)
            base_seconds = base_seconds or seconds
            rows.append(
                Row(
                    case,
                    name,
                    seconds,
                    ratio=seconds / base_seconds,
                    note=f"backprop peak {peak / 2**20:.1f} MB = {peak / picked:.2f}x the picked tensor",
                )
            )
    return [("[CLS] route: backprop memory and time (ratio: vs the #7178 design)", rows)]
