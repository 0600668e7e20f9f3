"""Listeners that hand a model each Doc's raw transformer output, and the checks and
initialization the architectures share (docs/spacy.md, "Listeners in Python")."""

from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Ragged

from ..containers.curated import PLACEHOLDER
from ..errors import LayerGradientError, describe
from ..layers._pooling import sample_rows

#: The transformer packages whose pipes these architectures can listen to.
FLAVOURS = ("spacy-transformers", "spacy-curated-transformers")


def check_flavour(layer: str, flavour: str) -> None:
    if flavour not in FLAVOURS:
        raise ValueError(
            f"{layer}: unknown flavour {flavour!r}; expected one of "
            f"{', '.join(map(repr, FLAVOURS))}: the package whose transformer component is "
            "upstream in the pipeline."
        )


def check_width(layer: str, width: Optional[int]) -> None:
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ValueError(
            f"{layer}: expected width to be null or an int >= 1 (the transformer's width), got "
            f"{width!r}."
        )


def upstream_name(listener: Model[Any, Any]) -> str:
    """The name of the transformer component a listener listens to ("*": any)."""
    return str(getattr(listener, "upstream_name", listener.attrs.get("_upstream_name", "*")))


def listener_width(layer: str, listener: Model[Any, Any]) -> int:
    """The transformer's width: the first ``nO`` under ``listener`` (set by a
    spacy-transformers component or the config's width; an inline transformer's, once loaded)."""
    width = next((node.get_dim("nO") for node in listener.walk() if node.has_dim("nO")), None)
    if width is None:
        raise ValueError(
            f"{layer}: the transformer's width is unknown at initialize. A spacy-transformers "
            "transformer component tells its listeners; check that one runs before this component "
            f"(upstream name {upstream_name(listener)!r}). A spacy-curated-transformers one does "
            "not: set width in the config, e.g. width = "
            f"${{components.transformer.model.hidden_width}}."
        )
    return int(width)


def init_reading(
    layer: str, features: Model[Any, Any], pooling: Optional[Model[Any, Any]], width: int
) -> int:
    """Initialize ``features`` (a reader, then ``pooling``) for ``width`` without running the
    transformer (spaCy initializes on Docs no transformer has processed); returns its nO."""
    reader, n_out = features.layers[0], width
    if reader.layers:
        mix = reader.layers[0]
        expected = "a Model[List[Floats3d], Floats3d]"
        if mix.has_dim("nI") is False:
            raise ValueError(
                f"{layer}: the mix {mix.name!r} has no nI dim (the width of a layer it mixes), so "
                "it cannot be set up for the transformer's width without running it. Expected "
                f"{expected} with dims nI and nO, such as thinc_trf_layers.scalar_mix.v1 (is a "
                "pooling in its place?)."
            )
        try:
            if mix.has_dim("nI") is None:
                mix.set_dim("nI", width)
            mix.initialize()
        except Exception as err:
            raise ValueError(
                f"{layer}: the mix {mix.name!r} could not be initialized for layers of width "
                f"{width}: {err}. Expected {expected} such as thinc_trf_layers.scalar_mix.v1 (is a "
                "pooling in its place?)."
            ) from err
        n_out = int(mix.maybe_get_dim("nO") or width)
    if reader.has_dim("nO") is None:
        reader.set_dim("nO", n_out)
    if pooling is not None:
        rows = sample_rows(pooling.ops, n_out)
        try:
            pooling.initialize(X=rows)
            pooled = pooling.predict(rows)
        except Exception as err:
            raise ValueError(
                f"{layer}: the pooling layer {pooling.name!r} could not pool a Ragged of wordpiece "
                f"vectors (width {n_out}) to one row per group: {err}. Expected a Model[Ragged, "
                "Floats2d] such as thinc_trf_layers.reduce_mean.v1 (is a mix in its place?)."
            ) from err
        shape = getattr(pooled, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] != 2:
            raise ValueError(
                f"{layer}: the pooling {pooling.name!r} should return one row per group (a "
                f"Floats2d of shape (2, n) for 2 groups), got {pooled!r:.80}."
            )
        n_out = int(shape[1])
    if features.has_dim("nO") is None:
        features.set_dim("nO", n_out)
    return n_out


def make_listener(
    flavour: str, upstream: str, *, width: Optional[int] = None
) -> Model[List[Doc], List[Any]]:
    """The listener for ``flavour``'s transformer component named ``upstream`` (``"*"``: any)."""
    if flavour == "spacy-transformers":
        from spacy_transformers.layers import TransformerListener

        listener: Model[List[Doc], List[Any]] = TransformerListener(upstream_name=upstream)
        if width is not None:
            listener.set_dim("nO", width)
        return listener
    check_flavour("make_listener", flavour)
    return curated_raw_listener(upstream=upstream, width=width)


CURATED_LISTENER_NAME = "thinc_trf_layers_raw_listener"


def curated_raw_listener(
    *, upstream: str = "*", width: Optional[int] = None, state: bool = True
) -> Model[List[Doc], List[Any]]:
    """A spacy-curated-transformers listener giving each Doc's ``DocTransformerOutput``. See
    docs/spacy.md, "Listeners in Python"."""
    model: Model[List[Doc], List[Any]] = Model(
        CURATED_LISTENER_NAME, _curated_forward, dims={"nO": width}
    )
    if state:
        init_curated_state(model, upstream, all_layers=False)
    return model


def init_curated_state(model: Model[Any, Any], upstream: str, *, all_layers: bool) -> None:
    """Make ``model`` a listener that a curated pipe feeds (if that package is installed)."""
    try:
        from spacy_curated_transformers.models.listeners import ListenerStateUtils
    except ImportError:
        return
    ListenerStateUtils.init_state(
        model, upstream_name=upstream, requires_all_layer_outputs=all_layers
    )


def curated_batch(
    model: Model[Any, Any], docs: List[Doc], is_train: bool
) -> Optional[Tuple[List[Any], Callable[[List[Any]], Any]]]:
    """What a curated pipe handed ``model`` for ``docs`` and the backprop into it; None when
    nothing (then the Docs carry the output: prediction, or a frozen annotating transformer)."""
    try:
        from spacy_curated_transformers.models.listeners import ListenerStateUtils
        from spacy_curated_transformers.models.output import DocTransformerOutput
    except ImportError:
        return None
    # (spacy-curated-transformers' WrappedTransformerAndListener unmarks a listener it
    # wraps: not is_listener)
    try:
        batch = ListenerStateUtils.get_output(model)
    except KeyError:
        return None  # not a curated listener
    if batch is None or (
        not is_train and ListenerStateUtils.use_doc_annotations_for_prediction(model)
    ):
        return None
    callback = ListenerStateUtils.get_backprop(model)
    ListenerStateUtils.verify_inputs(model, docs)
    Y = [
        DocTransformerOutput(all_outputs=list(layers), last_layer_only=batch.last_layer_only)
        for layers in batch.all_outputs
    ]
    n_outputs = batch.num_outputs if batch.all_outputs else 0
    shapes = [[tuple(r.dataXd.shape) for r in layers] for layers in batch.all_outputs]
    if not is_train:
        ListenerStateUtils.clear_state(model)
        return Y, _no_backprop

    def backprop(dY: List[Any]) -> Any:
        if not isinstance(dY, (list, tuple)) or len(dY) != len(shapes):
            raise LayerGradientError(
                f"{model.name}: backprop expected a list of {len(shapes)} DocTransformerOutput "
                f"gradients, one per Doc, got {describe(dY)}."
            )
        for i, (d, doc_shapes) in enumerate(zip(dY, shapes)):
            layers = getattr(d, "all_outputs", None)
            got = None if layers is None else [tuple(r.dataXd.shape) for r in layers]
            if got != doc_shapes:
                raise LayerGradientError(
                    f"{model.name}: the gradient for Doc {i} should hold one Ragged per layer with "
                    f"shapes {doc_shapes}, got {describe(d) if got is None else got}."
                )
        grads = [list(d.all_outputs) for d in dY]
        result = callback(grads, outputs_to_backprop=tuple(range(n_outputs))) if callback else []
        ListenerStateUtils.clear_state(model)
        return result

    return Y, backprop


def _curated_forward(
    model: Model[List[Doc], List[Any]], docs: List[Doc], is_train: bool
) -> Tuple[List[Any], Callable[[List[Any]], Any]]:
    from spacy_curated_transformers.models.output import DocTransformerOutput

    if (handed := curated_batch(model, docs, is_train)) is not None:
        return handed
    if is_train and not all(doc._.trf_data is not None for doc in docs):
        raise ValueError(
            f"{model.name}: no transformer output was handed to this listener. Check that a "
            "spacy-curated-transformers Transformer component runs before this component "
            f"(upstream name {upstream_name(model)!r}) and, if it is frozen, that it is also in "
            "[training] annotating_components."
        )
    outputs: List[Any] = []
    for doc in docs:
        data = doc._.trf_data
        if data is None:
            # The transformer did not run (disabled, or initialization on
            # unprocessed Docs): zeros of the transformer's width, no [CLS].
            rows = model.ops.alloc2f(len(doc), model.get_dim("nO"))
            data = DocTransformerOutput(
                all_outputs=[Ragged(rows, model.ops.asarray1i([1] * len(doc)))],
                last_layer_only=True,
            )
            setattr(data, PLACEHOLDER, True)
        outputs.append(data)
    return outputs, _no_backprop


def _no_backprop(dY: Any) -> List[Any]:
    return []
