"""``thinc_trf_layers.TransformerModel.v1``: spacy-transformers' ``TransformerModel.v3``
trained through every hidden state (docs/spacy.md, "TransformerModel.v1")."""

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from spacy.tokens import Doc
from spacy.util import SimpleFrozenDict, registry
from spacy_transformers.data_classes import FullTransformerBatch, HFObjects, TransformerData
from spacy_transformers.layers.hf_wrapper import HFWrapper
from spacy_transformers.span_getters import configure_strided_spans as strided_spans

# spacy-transformers' private parts of its TransformerModel (pinned to 1.4.*, checked by
# tests/integration/test_trf_model.py)
from spacy_transformers.layers._util import replace_listener
from spacy_transformers.layers._util import replace_listener_cfg as _upstream_replace_listener_cfg
from spacy_transformers.layers.transformer_model import TransformerModel, init
from spacy_transformers.layers.transformer_model import _convert_transformer_inputs
from spacy_transformers.layers.transformer_model import set_pytorch_transformer
from spacy_transformers.layers.transformer_model import forward as _upstream_forward
from thinc.api import Model, get_array_module, xp2torch
from thinc.types import ArgsKwargs

ARCHITECTURE = "thinc_trf_layers.TransformerModel.v1"
#: the defaults of spacy-transformers' ``transformer`` factory's model block, which spaCy
#: fills in only for its default architecture (the model copies the tokenizer's)
FACTORY_TOKENIZER_CONFIG: Dict[str, Any] = {"use_fast": True}
FACTORY_SPANS = {"window": 128, "stride": 96}


@dataclass
class AllLayersData(TransformerData):
    """One Doc's output of ``TransformerModel.v1`` (the marker our container adapter reads)."""


@dataclass
class AllLayersBatch(FullTransformerBatch):
    """The batch output of ``TransformerModel.v1``: split into ``AllLayersData``, joined back."""

    def split_by_doc(self) -> List[TransformerData]:
        return [
            AllLayersData(d.wordpieces, d.model_output, d.align) for d in super().split_by_doc()
        ]

    def unsplit_by_doc(self, arrays: List[List[Any]]) -> FullTransformerBatch:
        """Each Doc's list of gradients (shorter where a listener sent fewer, e.g.
        spacy-transformers' ``trfs2arrays``): a tensor, tuple or None per output key."""
        keys = next((list(d.model_output) for d in self.doc_data if d.model_output), [])
        grads: Dict[str, Any] = {}
        for j, key in enumerate(keys):
            per_doc = [doc[j] for doc in arrays if len(doc) > j]
            if not per_doc:
                grads[key] = None
            elif len(per_doc) != len(arrays):
                raise ValueError(
                    f"{ARCHITECTURE}: the listeners' gradients hold tensor {key!r} for "
                    f"{len(per_doc)} of {len(arrays)} Docs; expected it for all of them or none."
                )
            elif isinstance(self.model_output[key], (list, tuple)):
                grads[key] = tuple(_joined([d[k] for d in per_doc]) for k in range(len(per_doc[0])))
            else:
                grads[key] = _joined(per_doc)
        return FullTransformerBatch(
            self.spans, self.wordpieces, grads, self.align  # type: ignore[arg-type]
        )


def _joined(per_doc: List[Any]) -> Any:
    """One torch tensor from the Docs' gradients of one tensor (stacked along spans), or
    None when they are all zeros (a tensor no listener used: left out of the backward)."""
    xp = get_array_module(per_doc[0])  # type: ignore[no-untyped-call]
    joined = xp.concatenate([xp.asarray(d) for d in per_doc], axis=0)
    return xp2torch(joined) if bool(xp.any(joined)) else None


@registry.architectures("thinc_trf_layers.TransformerModel.v1")
class AllLayersTransformerModel(TransformerModel):
    """A drop-in for ``spacy-transformers.TransformerModel.v3`` that trains through every
    hidden state: its ``TransformerModel`` (so that code checking the class accepts it) with
    our forward and converters. See docs/spacy.md, "TransformerModel.v1"."""

    def __init__(
        self,
        name: Union[str, Path],
        get_spans: Optional[Callable[..., Any]] = None,
        tokenizer_config: Dict[str, Any] = FACTORY_TOKENIZER_CONFIG,
        transformer_config: Dict[str, Any] = SimpleFrozenDict(),
        mixed_precision: bool = False,
        grad_scaler_config: Dict[str, Any] = SimpleFrozenDict(),
    ) -> None:
        if not isinstance(name, (str, Path)) or not str(name):
            raise ValueError(
                f"{ARCHITECTURE}: expected name to be a Hugging Face model name or folder, got "
                f"{name!r}."
            )
        if get_spans is not None and not callable(get_spans):
            raise ValueError(
                f"{ARCHITECTURE}: expected get_spans to be null or a span getter (a function "
                f'such as @span_getters = "spacy-transformers.strided_spans.v1"), '
                f"got {get_spans!r}."
            )
        for arg, value in (
            ("tokenizer_config", tokenizer_config),
            ("transformer_config", transformer_config),
            ("grad_scaler_config", grad_scaler_config),
        ):
            if not isinstance(value, Mapping):
                raise ValueError(
                    f"{ARCHITECTURE}: expected {arg} to be a dict of settings, got {value!r}."
                )
        # fresh dicts: spacy-transformers writes into both (return_dict, enabled)
        config = {"output_hidden_states": True, **transformer_config}
        wrapper = HFWrapper(
            HFObjects(None, None, None, dict(tokenizer_config), config),
            convert_inputs=_convert_transformer_inputs,
            convert_outputs=_convert_outputs,
            mixed_precision=mixed_precision,
            grad_scaler_config=dict(grad_scaler_config),
        )
        attrs = {
            "get_spans": get_spans if get_spans is not None else strided_spans(**FACTORY_SPANS),
            "name": str(name),
            "set_transformer": set_pytorch_transformer,
            "has_transformer": False,
            "flush_cache_chance": 0.0,
            "replace_listener": replace_listener,
            "replace_listener_cfg": _replace_listener_cfg,
        }
        Model.__init__(
            self,
            "transformer",
            _forward,
            init=init,
            layers=[wrapper],
            dims={"nO": None},
            attrs=attrs,
        )

    def copy(self) -> "AllLayersTransformerModel":
        """A deep copy keeping the Hugging Face name (upstream's names it after the node)."""
        copied = AllLayersTransformerModel(self.attrs["name"], self.attrs["get_spans"])
        if self.has_dim("nO"):
            copied.set_dim("nO", self.get_dim("nO"))
        copied.layers[0] = copy.deepcopy(self.layers[0])
        copied.attrs["has_transformer"] = self.attrs["has_transformer"]
        return copied


def _replace_listener_cfg(
    tok2vec_model_cfg: Dict[str, Any], listener_model_cfg: Dict[str, Any]
) -> Dict[str, Any]:
    """spaCy's ``nlp.replace_listeners`` hook (docs/spacy.md#replace_listeners); refuses our
    textcats before spaCy changes anything."""
    arch = str(listener_model_cfg.get("@architectures", ""))
    if arch == "thinc_trf_layers.MixedLayersListener.v1":
        return {**listener_model_cfg, "transformer": dict(tok2vec_model_cfg)}
    if arch.startswith("thinc_trf_layers."):
        raise ValueError(
            f"{ARCHITECTURE}: nlp.replace_listeners cannot put a copy of the transformer in place "
            f"of the {arch} block: that architecture builds its listener inside, and the config "
            "would lose its pooling (the saved pipeline would not load). Keep the shared "
            "transformer."
        )
    # spacy-transformers' Tok2VecTransformer.v3 needs get_spans: ours, null, is the default
    spans = tok2vec_model_cfg.get("get_spans") or {
        "@span_getters": "spacy-transformers.strided_spans.v1",
        **FACTORY_SPANS,
    }
    return _upstream_replace_listener_cfg(  # type: ignore[no-any-return,no-untyped-call]
        {**tok2vec_model_cfg, "get_spans": spans}, listener_model_cfg
    )


def _forward(
    model: TransformerModel, docs: List[Doc], is_train: bool
) -> Tuple[FullTransformerBatch, Callable[..., Any]]:
    """spacy-transformers' forward, its batch marked as ours (``AllLayersBatch``)."""
    output, backprop = _upstream_forward(model, docs, is_train)
    batch = AllLayersBatch(output.spans, output.wordpieces, output.model_output, output.align)
    return batch, backprop


def _convert_outputs(
    model: Model[Any, Any], inputs_outputs: Tuple[Any, Any], is_train: bool
) -> Tuple[Any, Callable[[Any], ArgsKwargs]]:
    _, model_output = inputs_outputs

    def backprop(d_output: Mapping[str, Any]) -> ArgsKwargs:
        """One backward over every output tensor that got a gradient."""
        tensors, grads = [], []
        for key, d in d_output.items():
            pairs = zip(model_output[key], d) if isinstance(d, tuple) else [(model_output[key], d)]
            for t, g in pairs:
                if g is not None and t.requires_grad:
                    tensors.append(t)
                    grads.append(g)
        last = model_output.get("last_hidden_state")
        if not tensors and last is not None and last.requires_grad:
            # no gradient at all (a head whose weights start at zero): zeros, as v3 sends,
            # so that the optimizer takes the same steps (Adam counts them)
            tensors, grads = [last], [last.new_zeros(last.shape)]
        return ArgsKwargs(args=(tensors,), kwargs={"grad_tensors": grads})

    return model_output, backprop


# the registered architecture is the class itself: the same signature, checks and defaults
transformer_model = AllLayersTransformerModel


__all__ = [
    "transformer_model",
    "AllLayersTransformerModel",
    "AllLayersBatch",
    "AllLayersData",
    "ARCHITECTURE",
    "replace_listener",
]
