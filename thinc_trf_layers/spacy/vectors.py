"""The ``trf_vectors`` component: Doc, Span and Token vectors from the pipeline's own
transformer (see ``docs/vectors.md``).

It reads what the transformer component left on every Doc (``doc._.trf_data``: a
spacy-transformers ``TransformerData`` or a spacy-curated-transformers
``DocTransformerOutput``), through the container adapters, and runs no model of its own:

- ``doc.vector``: the configured pooling over the Doc's real wordpieces (with the
  default mean and a Doc that fits in one span: sentence-transformers' embedding);
- ``span.vector`` (sentences too): the pooling over the wordpieces aligned to the span's
  tokens, each wordpiece once;
- ``token.vector``: the mean of the token's wordpieces (zeros for a token with none),
  kept in ``doc.tensor`` as spaCy's tok2vec does;
- ``similarity`` of Docs, Spans and Tokens: the cosine of those vectors.

What a span's vector needs (the Doc's aligned wordpiece rows, each token's rows, the
pooling's registry name) is kept in ``doc.user_data``; the hooks are module-level
functions that read it. So the vectors survive pickling (``nlp.pipe(n_process=...)``)
as they are, and ``Doc.to_bytes`` / ``DocBin(store_user_data=True)``, which keep user
data but not hooks, after one call of ``restore_vectors(docs)``.
"""
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union, cast

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import minibatch
from thinc.api import Model, NumpyOps, registry
from thinc.types import Ragged

from ..containers import DocTensor, adapter_for, read_all_layers, read_tensors
from ..errors import LayerInputError

#: The key of the component's data in ``doc.user_data``.
KEY = "thinc_trf_layers.trf_vectors"
NAME = "trf_vectors"
_OPS = NumpyOps()


@Language.factory(
    NAME,
    default_config={
        "pooling": "thinc_trf_layers.reduce_mean.v1",
        "normalize": False,
        "exclude_special": False,
        "last_layers": 1,
    },
)
def make_trf_vectors(
    nlp: Language, name: str, pooling: str, normalize: bool, exclude_special: bool, last_layers: int
) -> "TrfVectors":
    """The ``trf_vectors`` component (see ``TrfVectors``)."""
    return TrfVectors(
        name=name, pooling=pooling, normalize=normalize, exclude_special=exclude_special, last_layers=last_layers
    )


class TrfVectors:
    """Sets Doc, Span and Token vectors from each Doc's transformer output.

    pooling: the registry name of a ``Model[Ragged, Floats2d]`` built with its defaults
        (``thinc_trf_layers.reduce_mean.v1``, ``thinc_trf_layers.reduce_first.v1`` for
        [CLS], ``thinc_trf_layers.reduce_max.v1``...): the Doc's and the spans' vectors.
    normalize: divide every vector (Doc, Span, Token) by its L2 norm.
    exclude_special: pool a Doc over the wordpieces aligned to its tokens only, leaving
        out [CLS], [SEP], BOS/EOS (spacy-curated-transformers leaves them out anyway).
    last_layers: read the mean of the last k hidden layers instead of the last one
        (needs the transformer's hidden layers: ``output_hidden_states = true`` for
        spacy-transformers, ``all_layer_outputs = true`` for curated).
    """

    def __init__(
        self, *, name: str = NAME, pooling: str = "thinc_trf_layers.reduce_mean.v1", normalize: bool = False,
        exclude_special: bool = False, last_layers: int = 1,
    ) -> None:
        layer = f"{name} (trf_vectors)"
        if not isinstance(pooling, str):
            raise LayerInputError(
                f"{layer}: expected pooling as the registry name of a pooling layer (e.g. "
                f'"thinc_trf_layers.reduce_mean.v1"), got {pooling!r}.'
            )
        get_pooling(pooling, layer)  # an unknown name fails here, not on the first Doc
        if isinstance(last_layers, bool) or not isinstance(last_layers, int) or last_layers < 1:
            raise LayerInputError(f"{layer}: expected last_layers to be an int >= 1, got {last_layers!r}.")
        for flag, value in (("normalize", normalize), ("exclude_special", exclude_special)):
            if not isinstance(value, bool):
                raise LayerInputError(f"{layer}: expected {flag} to be true or false, got {value!r}.")
        self.name = name
        self.layer = layer
        self.pooling = pooling
        self.normalize = normalize
        self.exclude_special = exclude_special
        self.last_layers = last_layers
        self.width = 0  # the transformer's width, once a batch has shown it

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):  # type: ignore[no-untyped-call]
            self.set_annotations(docs)
            yield from docs

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Any]]] = None, **kwargs: Any) -> None:
        return None

    def set_annotations(self, docs: List[Doc]) -> None:
        """Compute every Doc's vectors and store them on it (see the module docstring)."""
        containers = [_trf_data(self.layer, doc, i) for i, doc in enumerate(docs)]
        tensors = self._tensors(containers)
        width = next((int(t.tensor.shape[2]) for t in tensors if t.tensor is not None), 0)
        self.width = width or self.width
        pooling = get_pooling(self.pooling, self.layer)
        doc_vectors: Any = None
        if not self.exclude_special:
            real: List[Any] = [t.tensor[s, :n] for t in tensors if t.tensor is not None for s, n in enumerate(t.lengths)]
            stacked: Any = numpy.concatenate(real) if real else numpy.zeros((0, self.width), dtype="float32")
            counts = [sum(t.lengths) if t.tensor is not None else 0 for t in tensors]
            doc_vectors = _predict(pooling, Ragged(stacked, _OPS.asarray1i(counts)), self.width)
        for i, (doc, X, T) in enumerate(zip(docs, containers, tensors)):
            rows, token_rows, token_lengths = _aligned_rows(self.layer, X, T, self.width, i)
            if not len(token_rows):  # no token has a wordpiece: zero vectors
                vector = numpy.zeros((self.width,), dtype="float32")
            elif doc_vectors is not None:
                vector = doc_vectors[i]
            else:
                vector = _predict(pooling, Ragged(rows, _OPS.asarray1i([len(rows)])), self.width)[0]
            data = {
                "vector": _unit(vector) if self.normalize else vector,
                "rows": rows,
                "token_rows": token_rows,
                "token_lengths": token_lengths,
                "pooling": self.pooling,
                "normalize": self.normalize,
            }
            doc.user_data[KEY] = data
            doc.tensor = _token_vectors(data)
            install_hooks(doc)

    def _tensors(self, containers: List[Any]) -> List[DocTensor]:
        """Each Doc's tensor, on the host: the last hidden state, or the mean of the last
        k layers. (The vectors end up in the Doc, on the host, whatever the device.)"""
        docs = read_tensors(self.layer, _OPS, containers, 0)
        for doc in docs:
            doc.tensor = _host(doc.tensor) if doc.tensor is not None else None
        if self.last_layers == 1:
            return docs
        layered = read_all_layers(self.layer, _OPS, containers, False, None)
        for doc, layers in zip(docs, layered):
            if not layers.layers:
                continue
            if len(layers.layers) < self.last_layers:
                raise LayerInputError(
                    f"{self.layer}: last_layers = {self.last_layers}, but the transformer output has "
                    f"{len(layers.layers)} layers (embeddings included)."
                )
            top = [_host(layer) for layer in layers.layers[-self.last_layers :]]
            doc.tensor = sum(top[1:], top[0].astype("float32")) / self.last_layers
        return docs


def _trf_data(layer: str, doc: Doc, i: int) -> Any:
    X = doc._.trf_data if Doc.has_extension("trf_data") else None
    if X is None or adapter_for(X) is None:
        raise LayerInputError(
            f"{layer}: Doc {i} has no transformer output (doc._.trf_data is {type(X).__name__}); "
            "expected a spacy-transformers or spacy-curated-transformers transformer component "
            "earlier in the pipeline, with trf_vectors after it."
        )
    return X


def _aligned_rows(layer: str, X: Any, doc: DocTensor, width: int, i: int) -> Tuple[Any, Any, Any]:
    """The Doc's wordpiece rows aligned to its tokens, each once (n, width) float32; for
    every token the indices of its rows (token after token) and their count."""
    T: Any = doc.tensor
    alignment = doc.adapter.token_alignment(X)
    if alignment is None:
        raise LayerInputError(f"{layer}: Doc {i} holds no alignment between wordpieces and tokens.")
    positions, lengths = (numpy.asarray(_host(a)).astype("int64").reshape(-1) for a in alignment)
    if T is None or not len(positions):
        empty = numpy.zeros((0,), dtype="int32")
        return numpy.zeros((0, width), dtype="float32"), empty, lengths.astype("int32")
    flat = T.reshape(-1, int(T.shape[2]))
    unique, token_rows = numpy.unique(positions, return_inverse=True)
    rows = numpy.ascontiguousarray(flat[unique], dtype="float32")
    return rows, token_rows.astype("int32").reshape(-1), lengths.astype("int32")


def _host(array: Any) -> Any:
    """A NumPy array of ``array`` (copied from the GPU for a CuPy one)."""
    if hasattr(array, "get") and not isinstance(array, numpy.ndarray):
        return array.get()
    return numpy.asarray(array)


def _predict(pooling: Model[Ragged, Any], R: Ragged, width: int) -> Any:
    if int(R.dataXd.shape[0]) == 0:
        return numpy.zeros((len(R.lengths), width), dtype="float32")
    return numpy.asarray(_OPS.to_numpy(pooling.predict(R)), dtype="float32")


def _unit(v: Any) -> Any:
    norm = float(numpy.linalg.norm(v))
    return v / norm if norm > 0 else v


_POOLINGS: Dict[str, Model[Ragged, Any]] = {}


def get_pooling(name: str, layer: str = NAME) -> Model[Ragged, Any]:
    """The pooling registered as ``name``, built with its defaults (one per process)."""
    model = _POOLINGS.get(name)
    if model is None:
        try:
            make = cast(Any, registry.layers).get(name)
        except Exception:  # catalogue.RegistryError
            raise LayerInputError(
                f"{layer}: pooling {name!r} is not a registered layer; expected the registry name "
                'of a pooling, e.g. "thinc_trf_layers.reduce_mean.v1" or "thinc_trf_layers.reduce_first.v1".'
            ) from None
        model = make()
        if not isinstance(model, Model):
            raise LayerInputError(f"{layer}: pooling {name!r} does not build a Thinc Model.")
        _POOLINGS[name] = model
    return model


# --- the hooks and what they read -------------------------------------------------------------


def _data(doc: Doc) -> Dict[str, Any]:
    return doc.user_data[KEY]  # type: ignore[no-any-return]


def _token_vectors(data: Dict[str, Any]) -> Any:
    """The mean of each token's rows (zeros for a token with none), (tokens, width)."""
    rows, lengths = data["rows"], data["token_lengths"]
    R = Ragged(rows[data["token_rows"]], _OPS.asarray1i(lengths))
    out = numpy.zeros((len(lengths), int(rows.shape[1])), dtype="float32")
    if len(data["token_rows"]):
        out = numpy.asarray(get_pooling("thinc_trf_layers.reduce_mean.v1").predict(R), dtype="float32")
    if data["normalize"]:
        norms = numpy.linalg.norm(out, axis=1, keepdims=True)
        out = numpy.divide(out, norms, out=numpy.zeros_like(out), where=norms > 0)
    return out


def doc_vector(doc: Doc) -> Any:
    return _data(doc)["vector"]


def span_vector(span: Span) -> Any:
    """The pooling over the wordpieces aligned to the span's tokens, each once."""
    data = _data(span.doc)
    lengths = data["token_lengths"]
    start = int(lengths[: span.start].sum())
    end = start + int(lengths[span.start : span.end].sum())
    rows = data["rows"][numpy.unique(data["token_rows"][start:end])]
    pooling = get_pooling(data["pooling"])
    vector = _predict(pooling, Ragged(rows, _OPS.asarray1i([len(rows)])), int(data["rows"].shape[1]))[0]
    return _unit(vector) if data["normalize"] else vector


def token_vector(token: Token) -> Any:
    tensor = token.doc.tensor
    return tensor[token.i]


def has_vector(obj: Union[Doc, Span, Token]) -> bool:
    return True


def similarity(obj: Union[Doc, Span, Token], other: Any) -> float:
    """The cosine of the two vectors (0 where either is zero)."""
    a: Any = obj.vector
    b: Any = other.vector
    norm = float(numpy.linalg.norm(a)) * float(numpy.linalg.norm(b))
    return float(numpy.dot(a, b) / norm) if norm > 0 else 0.0


def install_hooks(doc: Doc) -> None:
    doc.user_hooks.update({"vector": doc_vector, "has_vector": has_vector, "similarity": similarity})
    doc.user_span_hooks.update({"vector": span_vector, "has_vector": has_vector, "similarity": similarity})
    doc.user_token_hooks.update({"vector": token_vector, "has_vector": has_vector, "similarity": similarity})


def restore_vectors(docs: Union[Doc, Iterable[Doc]]) -> None:
    """Give Docs back the vectors ``trf_vectors`` set, after ``Doc.from_bytes`` or a
    ``DocBin(store_user_data=True)`` round trip (which keep ``doc.user_data`` but not the
    hooks, and, for a DocBin, not ``doc.tensor``). Docs the component did not see are
    left as they are."""
    for doc in [docs] if isinstance(docs, Doc) else docs:
        data = doc.user_data.get(KEY)
        if data is None:
            continue
        for name in ("rows", "token_rows", "token_lengths", "vector"):
            data[name] = numpy.asarray(data[name])
        if tuple(doc.tensor.shape) != (len(doc), int(data["rows"].shape[1])):
            doc.tensor = _token_vectors(data)
        install_hooks(doc)


__all__ = ["TrfVectors", "make_trf_vectors", "restore_vectors", "KEY"]
