"""spaCy textcat architectures on a shared transformer's raw output (docs/spacy.md):
``cls_pool`` or ``trf_pool`` features, then Softmax or Linear + Logistic."""

from functools import partial
from typing import Any, List, Optional, Sequence, cast

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Linear, Logistic, Model, Softmax, chain, resizable
from thinc.layers.resizable import resize_linear_weighted, resize_model
from thinc.types import Floats2d

from ..errors import check_grad_factor
from ..layers.cls_pool import cls_pool
from ..layers.trf_pool import trf_pool
from ..types import MixModelT, PoolingModelT
from .listeners import check_flavour, check_width, init_reading, listener_width, make_listener

#: The bias given to a new label's output unit (as spaCy's own textcat models do), so
#: that a label added after training starts out improbable.
NEG_VALUE = -5000.0


@registry.architectures("thinc_trf_layers.ClassTokenTextcat.v1")  # type: ignore[untyped-decorator]
def class_token_textcat(
    exclusive_classes: bool,
    nO: Optional[int] = None,
    *,
    tensor_index: int = 0,
    token_index: int = 0,
    grad_factor: float = 1.0,
    dropout: float = 0.0,
    upstream: str = "*",
    flavour: str = "spacy-transformers",
    width: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """Classify Docs by the transformer's [CLS] vector, averaged over a Doc's spans. See
    docs/spacy.md, "ClassTokenTextcat.v1"."""
    name = "ClassTokenTextcat.v1"
    _check_args(name, flavour, tensor_index, grad_factor, dropout, width)
    _check_index(name, "token_index", token_index)
    if flavour == "spacy-curated-transformers":
        raise ValueError(
            f"{name}: flavour 'spacy-curated-transformers' has no [CLS] vector to use: its "
            "transformer models strip the [CLS] and [SEP] pieces from their output "
            "(remove_bos_eos). Use thinc_trf_layers.PooledTextcat.v1 (for example with "
            "reduce_mean) with that package, or a spacy-transformers Transformer component."
        )
    features = cls_pool(
        index=tensor_index, token_index=token_index, grad_factor=grad_factor, on_unreached="raise"
    )
    listener = make_listener(flavour, upstream, width=width)
    return _build(name, listener, features, exclusive_classes, nO, dropout)


@registry.architectures("thinc_trf_layers.PooledTextcat.v1")  # type: ignore[untyped-decorator]
def pooled_textcat(
    exclusive_classes: bool,
    pooling: PoolingModelT,
    nO: Optional[int] = None,
    *,
    mix: Optional[MixModelT] = None,
    tensor_index: int = 0,
    grad_factor: float = 1.0,
    dropout: float = 0.0,
    upstream: str = "*",
    flavour: str = "spacy-transformers",
    width: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """Classify Docs by a ``pooling`` of their real wordpieces, of one tensor or of a ``mix``
    of all hidden layers. See docs/spacy.md, "PooledTextcat.v1"."""
    name = "PooledTextcat.v1"
    _check_args(name, flavour, tensor_index, grad_factor, dropout, width)
    if not isinstance(pooling, Model):
        raise ValueError(
            f"{name}: expected pooling to be a Thinc Model[Ragged, Floats2d] (a config block such "
            "as [components.textcat.model.pooling] with @layers = "
            f'"thinc_trf_layers.reduce_mean.v1"), got {pooling!r}.'
        )
    if mix is not None and not isinstance(mix, Model):
        raise ValueError(
            f"{name}: expected mix to be None or a Thinc Model[List[Floats3d], Floats3d] "
            f'(such as @layers = "thinc_trf_layers.scalar_mix.v1"), got {mix!r}.'
        )
    if flavour == "spacy-curated-transformers" and width is None:
        raise ValueError(
            f"{name}: flavour 'spacy-curated-transformers' needs the transformer's width (its pipe "
            "does not tell listeners), e.g. width = ${components.transformer.model.hidden_width}."
        )
    features = trf_pool(
        pooling, index=tensor_index, mix=mix, grad_factor=grad_factor, on_unreached="raise"
    )
    listener = make_listener(flavour, upstream, width=width)
    model = _build(name, listener, features, exclusive_classes, nO, dropout)
    model.set_ref("pooling", pooling)
    if mix is not None:
        model.set_ref("mix", mix)
    return model


def _check_args(
    name: str,
    flavour: str,
    tensor_index: int,
    grad_factor: float,
    dropout: float,
    width: Optional[int],
) -> None:
    """The arguments, checked before any layer is built: the errors name the architecture."""
    check_flavour(name, flavour)
    check_width(name, width)
    _check_index(name, "tensor_index", tensor_index)
    check_grad_factor(name, grad_factor)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: expected dropout in [0, 1), got {dropout!r}.")


def _check_index(name: str, arg: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected {arg} to be an int, got {value!r}.")


def _build(
    name: str,
    listener: Model[List[Doc], List[Any]],
    features: Model[Sequence[Any], Floats2d],
    exclusive_classes: bool,
    nO: Optional[int],
    dropout: float,
) -> Model[List[Doc], Floats2d]:
    output_layer: Model[Floats2d, Floats2d] = Softmax(nO=nO) if exclusive_classes else Linear(nO=nO)
    fill = {"b": NEG_VALUE if exclusive_classes else 0.0, "W": 0.0}
    resizable_layer: Model[Floats2d, Floats2d] = resizable(
        output_layer, resize_layer=partial(resize_linear_weighted, fill_defaults=fill)
    )
    head: Model[Floats2d, Floats2d] = chain(Dropout(dropout), resizable_layer)
    if not exclusive_classes:
        head = chain(head, Logistic())
    # The features take any Sequence of outputs, so the listener's list too; Thinc's
    # Model type is invariant in its input, hence the cast.
    model: Model[List[Doc], Floats2d] = chain(
        listener, cast(Model[List[Any], Floats2d], features), head
    )
    model.name = f"{name.split('.')[0]}({model.name})"
    model.init = _init
    model.set_ref("listener", listener)
    model.set_ref("features", features)
    reader = features.layers[0]
    reader.name = f"{name} ({reader.name})"  # what it refuses, it refuses for this architecture
    model.set_ref("reader", reader)
    model.set_ref("output_layer", output_layer)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["architecture"] = name
    model.attrs["resize_output"] = partial(_resize_output, resizable_layer=resizable_layer)
    if nO is not None:
        model.set_dim("nO", nO)
    return model


def _resize_output(
    model: Model[Any, Any], new_nO: int, *, resizable_layer: Model[Any, Any]
) -> Model[Any, Any]:
    resize_model(resizable_layer, new_nO)
    model.set_ref("output_layer", resizable_layer.layers[0])
    model.set_dim("nO", new_nO, force=True)
    return model


def _init(
    model: Model[List[Doc], Floats2d], X: Optional[List[Doc]] = None, Y: Optional[Floats2d] = None
) -> None:
    """Initialize for the transformer's width (``init_reading``), not from ``X``: spaCy passes
    Docs no transformer has processed."""
    arch = model.attrs["architecture"]
    width = listener_width(arch, model.get_ref("listener"))
    pooling = model.maybe_get_ref("pooling")
    n_features = init_reading(arch, model.get_ref("features"), pooling, width)
    head = model.layers[2]
    n = min(len(Y), 8) if Y is not None else 0
    H = model.ops.alloc2f(max(n, 2), n_features)
    H[:, 0] = 1.0
    head.initialize(X=H[:n] if n else H, Y=Y[:n] if Y is not None and n else None)
    if model.has_dim("nO") is None and head.has_dim("nO"):
        model.set_dim("nO", head.get_dim("nO"))
