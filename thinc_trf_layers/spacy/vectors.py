"""The ``trf_vectors`` component: Doc, Span and Token vectors from the pipeline's own
transformer, kept in ``doc.user_data`` and read by hooks (docs/vectors.md)."""

from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy
import srsly
from spacy.attrs import IDX, LENGTH
from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import minibatch
from thinc.api import Config, Model, NumpyOps, registry
from thinc.types import Ragged

from ..containers import adapter_for
from ..containers.base import module_class
from ..errors import LayerInputError
from ..wordpieces import host

#: The key of the component's data in ``doc.user_data``.
KEY = "thinc_trf_layers.trf_vectors"
NAME = "trf_vectors"
FIELDS = ("text", "chars", "rows", "token_rows", "token_offsets", "vector", "pooling", "normalize")
#: the transformer components whose model's ``nO`` is the width of what they put on Docs
TRANSFORMERS = (
    ("spacy_transformers.pipeline_component", "Transformer"),
    ("spacy_curated_transformers.pipeline.transformer", "CuratedTransformer"),
)
_OPS = NumpyOps()


class TrfVectorsDataError(LayerInputError):
    """Stored or read data that does not fit the Doc asked about (changed tokens, crafted data)."""


@Language.factory(
    NAME,
    default_config={
        "pooling": {"@layers": "thinc_trf_layers.reduce_mean.v1"},
        "normalize": False,
        "exclude_special": False,
        "last_layers": 1,
        "vectors_only": False,
    },
)
class TrfVectors:
    """Sets Doc, Span and Token vectors from each Doc's transformer output (docs/vectors.md)."""

    def __init__(
        self,
        nlp: Language,
        name: str = NAME,
        *,
        pooling: Any,
        normalize: bool = False,
        exclude_special: bool = False,
        last_layers: int = 1,
        vectors_only: bool = False,
    ) -> None:
        self.layer = f"{name} (trf_vectors)"
        if isinstance(last_layers, bool) or not isinstance(last_layers, int) or last_layers < 1:
            raise LayerInputError(
                f"{self.layer}: expected last_layers to be an int >= 1, got {last_layers!r}."
            )
        flags = dict(
            normalize=normalize, exclude_special=exclude_special, vectors_only=vectors_only
        )
        for flag, value in flags.items():
            if not isinstance(value, bool):
                raise LayerInputError(
                    f"{self.layer}: expected {flag} to be true or false, got {value!r}."
                )
        self.nlp, self.name = nlp, name
        self.pooling: Model[Ragged, Any] = check_pooling(pooling, self.layer)
        self.normalize = normalize
        self.exclude_special = exclude_special
        self.last_layers = last_layers
        self.vectors_only = vectors_only
        self.width = 0  # the transformer's width, once known
        self._pooling_config: Optional[Dict[str, Any]] = None

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):  # type: ignore[no-untyped-call]
            self.set_annotations(docs)
            yield from docs

    def doc_vectors(self, docs: List[Doc]) -> Any:
        """The Docs' vectors, (len(docs), width) float32, without storing anything on them."""
        return self._compute(docs)[0]

    def set_annotations(self, docs: List[Doc]) -> None:
        """Compute every Doc's vectors and store them on it (docs/vectors.md)."""
        config = self.pooling_config()
        if self.vectors_only:
            self._check_no_listener_after()
        vectors, built = self._compute(docs)
        for doc, vector, (_, rows, token_rows, offsets) in zip(docs, vectors, built):
            # float16 keeps every cosine to float32's above 0.9999; only for values it can hold
            compact = self.vectors_only and bool(numpy.abs(rows).max(initial=0) < 6e4)
            doc.user_data[KEY] = data = {
                "text": doc.text,
                "chars": _chars(doc),
                "rows": rows.astype("float16") if compact else rows,
                "token_rows": token_rows,
                "token_offsets": offsets,
                "vector": vector.copy(),
                "pooling": config,
                "normalize": self.normalize,
            }
            install_hooks(doc, data, self.pooling)
            if self.vectors_only:  # (another component's tensor is not the token vectors)
                doc.tensor = numpy.zeros((0,), dtype="float32")
                doc._.trf_data = None
            else:
                doc.tensor = _token_means(data)

    def pooling_config(self) -> Dict[str, Any]:
        """The config's ``pooling`` block, stored so that hooks can rebuild the pooling."""
        if self._pooling_config is None:
            config = self.nlp.get_pipe_config(self.nlp.components[self._index()][0])["pooling"]
            self._pooling_config = srsly.json_loads(srsly.json_dumps(config))
        return self._pooling_config

    def model_width(self) -> int:
        """The ``nO`` of the nearest transformer component before this one, without running it."""
        for name, proc in self.transformers():
            if proc.model.has_dim("nO"):
                return int(proc.model.get_dim("nO"))
        found = [name for name, _ in self.transformers()]
        raise LayerInputError(
            f"{self.layer}: no Doc had wordpieces, and the width of the transformer before it is "
            f"not known (transformer components before it: {found or 'none'}); expected an "
            "initialized spacy-transformers or spacy-curated-transformers component earlier in "
            "the pipeline (call nlp.initialize())."
        )

    def _index(self) -> int:
        index = [i for i, (_, proc) in enumerate(self.nlp.components) if proc is self]
        if not index:
            raise LayerInputError(
                f'{self.layer}: not in its pipeline; expected nlp.add_pipe("trf_vectors").'
            )
        return index[0]

    def transformers(self) -> List[Tuple[str, Any]]:
        """The transformer components before this one, nearest first."""
        classes = tuple(c for c in (module_class(m, n) for m, n in TRANSFORMERS) if c is not None)
        before = self.nlp.components[: self._index()]
        return [(name, proc) for name, proc in reversed(before) if isinstance(proc, classes)]

    def _check_no_listener_after(self) -> None:
        """vectors_only drops doc._.trf_data: no component after this one may read it."""
        after = {name for name, _ in self.nlp.components[self._index() + 1 :]}
        for name, proc in self.transformers():
            listening = sorted(after & set(getattr(proc, "listener_map", {})))
            if listening:
                raise LayerInputError(
                    f"{self.layer}: vectors_only drops doc._.trf_data, but {listening} after it in "
                    f"the pipeline listen to the transformer {name!r} and would read zeros; "
                    "expected trf_vectors after every component that listens to the transformer "
                    '(nlp.add_pipe("trf_vectors", last=True)).'
                )

    def _compute(self, docs: List[Doc]) -> Tuple[Any, List[Tuple[Any, Any, Any, Any]]]:
        """The Docs' vectors, and each Doc's sequence, token rows and their indices."""
        reads = [self._read(doc, i) for i, doc in enumerate(docs)]
        widths = {int(T.shape[2]) for T, _, _, _ in reads if T is not None}
        widths |= {self.width} if self.width else set()
        if len(widths) > 1:
            raise LayerInputError(
                f"{self.layer}: got transformer outputs of widths {sorted(widths)}; expected one."
            )
        self.width = widths.pop() if widths else self.model_width()
        built = [_sequence(*read, self.width) for read in reads]
        # a Doc without wordpieces for its tokens (empty, whitespace) gets zeros
        pooled = [
            stored if self.exclude_special or not len(stored) else seq
            for seq, stored, _, _ in built
        ]
        vectors = _pool(self.pooling, pooled, self.width)
        return (_unit(vectors) if self.normalize else vectors), built

    def _read(self, doc: Doc, i: int) -> Tuple[Any, Any, Any, Any]:
        """Doc ``i``'s host tensor (None: no output), real span lengths and token positions."""
        X = doc._.trf_data if Doc.has_extension("trf_data") else None
        adapter = adapter_for(X) if X is not None else None
        if adapter is None:
            raise LayerInputError(
                f"{self.layer}: Doc {i} has no transformer output (doc._.trf_data is "
                f"{type(X).__name__}); expected a spacy-transformers or spacy-curated-transformers "
                "transformer component earlier in the pipeline, with trf_vectors after it."
            )
        read = adapter.read_tensor(self.layer, _OPS, X, 0)
        T = None if read.tensor is None else host(read.tensor)
        if self.last_layers > 1 and T is not None:
            layers = adapter.read_layers(self.layer, _OPS, X, False, None).layers
            if len(layers) < self.last_layers:
                raise LayerInputError(
                    f"{self.layer}: last_layers = {self.last_layers}, but the transformer output "
                    f"has {len(layers)} layers (embeddings included)."
                )
            last = layers[-self.last_layers :]
            T = sum(host(L).astype("float32") for L in last) / self.last_layers
        alignment = adapter.token_alignment(X)
        if alignment is None:
            raise LayerInputError(
                f"{self.layer}: Doc {i}'s {adapter.name} holds no alignment to spaCy tokens."
            )
        positions, counts = (host(a).astype("int64").reshape(-1) for a in alignment)
        lengths = numpy.asarray(read.lengths, dtype="int64")
        if len(counts) != len(doc):
            raise TrfVectorsDataError(
                f"{self.layer}: Doc {i} has {len(doc)} tokens, but its transformer output aligns "
                f"wordpieces to {len(counts)} tokens: the Doc's tokens changed after the "
                "transformer ran (a retokenizer or merge_entities between them). Put trf_vectors "
                "right after the transformer, before any component that changes tokens: its "
                "vectors follow merges made later."
            )
        n_pieces = 1 if T is None else int(T.shape[1])
        inside = (positions >= 0) & (positions < len(lengths) * n_pieces)
        real = (
            positions % n_pieces
            < numpy.append(lengths, 0)[numpy.where(inside, positions // n_pieces, len(lengths))]
        )
        if (counts < 0).any() or counts.sum() != len(positions) or not real.all():
            raise TrfVectorsDataError(
                f"{self.layer}: Doc {i}'s token alignment ({len(positions)} positions, "
                f"{len(counts)} counts) does not fit its transformer output (real lengths "
                f"{lengths.tolist()}); expected real wordpieces."
            )
        return T, lengths, positions, counts


make_trf_vectors = TrfVectors  # the name the spacy_factories entry point (pyproject.toml) loads


def _sequence(
    T: Any, lengths: Any, positions: Any, counts: Any, width: int
) -> Tuple[Any, Any, Any, Any]:
    """One Doc as one sequence (docs/vectors.md#long-docs): its rows, those aligned to tokens,
    each token's indices into the latter, token after token, and their offsets."""
    n_tokens = len(counts)
    if T is None or not int(lengths.sum()):
        empty = numpy.zeros((0, width), dtype="float32")
        return empty, empty, numpy.zeros(0, dtype="int32"), numpy.zeros(n_tokens + 1, dtype="int64")
    n_spans, n_pieces = int(T.shape[0]), int(T.shape[1])
    n = n_spans * n_pieces
    if n_spans == 1:  # one span: its real rows in order, each token's own positions
        sequence = T[0, : int(lengths[0])].astype("float32")
        used, token_rows = numpy.unique(positions, return_inverse=True)
        offsets = numpy.r_[0, numpy.cumsum(counts)].astype("int64")
        return sequence, sequence[used], token_rows.reshape(-1).astype("int32"), offsets
    # each token's positions, one run per span that holds the token (spacy-transformers'
    # strided spans repeat the tokens of an overlap)
    token = numpy.repeat(numpy.arange(n_tokens), counts)
    order = numpy.lexsort((positions, token))
    p, t = positions[order], token[order]
    new_run = numpy.ones(len(p), dtype=bool)
    new_run[1:] = (t[1:] != t[:-1]) | (p[1:] // n_pieces != p[:-1] // n_pieces)
    starts = numpy.flatnonzero(new_run)
    run = numpy.cumsum(new_run) - 1
    size = numpy.diff(numpy.r_[starts, len(p)])
    first = numpy.searchsorted(t[starts], t[starts])  # each run's token's first run
    # a token split into the same number of wordpieces in every span: its k-th wordpiece
    # is one position of the Doc; otherwise only its first span's wordpieces count
    uneven = numpy.bincount(t[starts][size != size[first]], minlength=n_tokens) > 0
    keep = (run == first[run]) | ~uneven[t]
    same = p[
        starts[first[run]] + numpy.minimum(numpy.arange(len(p)) - starts[run], size[first[run]] - 1)
    ]
    rep = numpy.arange(n)
    numpy.minimum.at(rep, p[keep], same[keep])
    aligned = numpy.bincount(p, minlength=n) > 0
    dropped = aligned & (numpy.bincount(p[keep], minlength=n) == 0)  # aligned, never kept
    # the order of every real position in the Doc: leading unaligned ones ([CLS]) by their
    # place in the span, aligned ones by their first occurrence, trailing ones ([SEP]) last
    span, piece = numpy.divmod(numpy.arange(n), n_pieces)
    lo, hi = numpy.full(n_spans, n_pieces), numpy.full(n_spans, -1)
    numpy.minimum.at(lo, p // n_pieces, p % n_pieces)
    numpy.maximum.at(hi, p // n_pieces, p % n_pieces)
    key = numpy.select(
        [aligned, piece < lo[span], piece > hi[span]],
        [n_pieces + rep, piece, n_pieces + n + n_pieces - lengths[span] + piece],
        n_pieces + numpy.arange(n),
    )
    real = numpy.flatnonzero((piece < lengths[span]) & ~dropped)
    _, group = numpy.unique(key[real], return_inverse=True)
    members = numpy.bincount(group)
    by_group = numpy.argsort(group, kind="stable")
    sequence = T.reshape(n, -1)[real[by_group]].astype("float32")
    if len(members) < len(sequence):  # overlaps to average
        starts_of = numpy.r_[0, numpy.cumsum(members)[:-1]]
        sequence = numpy.add.reduceat(sequence, starts_of) / members[:, None].astype("float32")
    group_of = numpy.full(n, -1)
    group_of[real] = group
    pairs = numpy.unique(t[keep] * len(members) + group_of[p[keep]])  # each token's groups once
    used, token_rows = numpy.unique(pairs % len(members), return_inverse=True)
    offsets = numpy.r_[0, numpy.cumsum(numpy.bincount(pairs // len(members), minlength=n_tokens))]
    return sequence, sequence[used], token_rows.reshape(-1).astype("int32"), offsets.astype("int64")


def _pool(pooling: Model[Ragged, Any], rows: List[Any], width: int) -> Any:
    """The pooling of each array of rows (zeros for one without rows), in one call."""
    out = numpy.zeros((len(rows), width), dtype="float32")
    full = [i for i, r in enumerate(rows) if len(r)]
    if full:
        data: Any = numpy.concatenate([rows[i] for i in full]).astype("float32", copy=False)
        out[full] = _OPS.to_numpy(
            pooling.predict(Ragged(data, _OPS.asarray1i([len(rows[i]) for i in full])))
        )
    return out


def _token_means(data: Dict[str, Any]) -> Any:
    """The mean of each token's rows (zeros for a token with none), (tokens, width)."""
    rows, token_rows, offsets = data["rows"], data["token_rows"], data["token_offsets"]
    counts = numpy.diff(offsets)
    out = numpy.zeros((len(counts), int(rows.shape[1])), dtype="float32")
    for k in range(int(counts.max(initial=0))):  # the k-th row of every token that has one
        out[counts > k] += rows[token_rows[offsets[:-1][counts > k] + k]]
    numpy.divide(out, counts[:, None], out=out, where=counts[:, None] > 0)
    return _unit(out) if data["normalize"] else out


def _chars(doc: Doc) -> Any:
    """The start and end character of every token, (tokens, 2) int64."""
    chars = doc.to_array([IDX, LENGTH]).astype("int64").reshape(-1, 2)
    chars[:, 1] += chars[:, 0]
    return chars


def _unit(v: Any) -> Any:
    """``v``'s vectors (its last axis) divided by their L2 norm; zeros and NaN kept."""
    norm = numpy.linalg.norm(v, axis=-1, keepdims=True)
    return numpy.where(norm > 0, v / numpy.where(norm > 0, norm, 1), v).astype("float32")


def check_pooling(pooling: Any, layer: str = NAME) -> Model[Ragged, Any]:
    """``pooling``, moved to the host, if it pools rows to one vector of their width and has no
    parameters; else a ``LayerInputError``."""
    what = f"{layer}: pooling"
    if isinstance(pooling, str):
        raise LayerInputError(
            f"{what} is a config block, got the string {pooling!r}: write "
            f'[components.trf_vectors.pooling] with @layers = "{pooling}" in config.cfg, or '
            f'config={{"pooling": {{"@layers": "{pooling}"}}}} in nlp.add_pipe.'
        )
    if not isinstance(pooling, Model):
        raise LayerInputError(
            f"{what}: expected a Thinc Model[Ragged, Floats2d], got {type(pooling).__name__}."
        )
    params = [f"{node.name}.{name}" for node in pooling.walk() for name in node.param_names]
    if params:
        raise LayerInputError(
            f"{what}: {pooling.name} has parameters ({', '.join(params)}) and needs training, "
            "which trf_vectors does not do; expected a pooling without parameters (reduce_mean, "
            "reduce_first, reduce_max, reduce_gem...)."
        )
    for node in pooling.walk():
        node.ops = _OPS
    rows: Any = numpy.linspace(-1.0, 1.0, 40, dtype="float32").reshape(5, 8)
    try:
        Y = pooling.predict(Ragged(rows, _OPS.asarray1i([2, 3])))
    except Exception as err:
        raise LayerInputError(
            f"{what}: {pooling.name} fails on a Ragged of 2 rows of width 8 ({type(err).__name__}: "
            f"{err}); expected a Model[Ragged, Floats2d] that pools each row to one vector."
        ) from None
    if getattr(Y, "shape", None) != (2, 8) or getattr(getattr(Y, "dtype", None), "kind", "") != "f":
        raise LayerInputError(
            f"{what}: {pooling.name} maps 2 rows of wordpieces of width 8 to "
            f"{getattr(Y, 'shape', type(Y))}; expected one float vector of the same width per row "
            "(2, 8), so that every similarity of Doc, Span and Token works."
        )
    return pooling


def _pooling(config: Any, where: str = NAME) -> Model[Ragged, Any]:
    """The pooling of a stored ``pooling`` block: only ``@layers``, checked as the component's."""

    def layers_only(block: Any) -> bool:
        if not isinstance(block, dict):
            return True
        promises = [k for k in block if str(k).startswith("@")]
        return promises in ([], ["@layers"]) and all(map(layers_only, block.values()))

    if not isinstance(config, dict) or "@layers" not in config or not layers_only(config):
        raise TrfVectorsDataError(
            f"{where}: pooling is {config!r}; expected a config block of @layers."
        )
    try:
        return check_pooling(registry.resolve(Config({"pooling": config}))["pooling"], where)
    except Exception as err:
        raise TrfVectorsDataError(f"{where}: cannot build the pooling {config!r}: {err}") from None


def install_hooks(
    doc: Doc, data: Dict[str, Any], pooling: Optional[Model[Ragged, Any]] = None
) -> None:
    """Point the Doc's vector hooks at ``data`` (in new dicts: ``Span.as_doc`` shares them)."""
    hooks = Hooks(data, pooling)
    shared: Dict[str, Any] = {"has_vector": has_vector, "similarity": similarity}
    doc.user_hooks = {**doc.user_hooks, "vector": hooks.doc, **shared}
    doc.user_span_hooks = {**doc.user_span_hooks, "vector": hooks.span, **shared}
    doc.user_token_hooks = {**doc.user_token_hooks, "vector": hooks.token, **shared}
    hooks.installed = doc.user_hooks


class Hooks:
    """A Doc's hooks on ``data``; without the component's pooling, built from the config."""

    def __init__(self, data: Dict[str, Any], pooling: Optional[Model[Ragged, Any]]) -> None:
        self.data, self.pooling = data, pooling
        self.installed: Optional[Dict[str, Any]] = None

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "pooling": None}  # rebuilt from the config, not pickled

    def doc(self, doc: Doc) -> Any:
        """The stored vector for the Doc the component ran on or a copy; else its span's."""
        # Span.as_doc() gives the new Doc the very hook dicts of its Doc; Doc.copy() and
        # pickling make new ones (tests/integration/test_trf_vectors_changes.py checks both)
        if doc.user_data.get(KEY) is self.data or (
            doc.user_hooks is not self.installed and doc.text == self.data["text"]
        ):
            return self.data["vector"]
        return self.span(doc[:])

    def span(self, span: Span) -> Any:
        """The pooling over the rows of the span's tokens, each once."""
        base = _base(span.doc, self.data) if len(span) else 0
        index = _rows(self.data, base + span.start_char, base + span.end_char, span.text)
        if self.pooling is None:
            self.pooling = _pooling(self.data["pooling"])
        return _vector(self.data, index, self.pooling)

    def token(self, token: Token) -> Any:
        """The mean of the token's rows: ``doc.tensor``'s row for a token the component saw."""
        doc, i, chars = token.doc, token.i, self.data["chars"]
        start, end = token.idx, token.idx + len(token)
        same = doc.user_data.get(KEY) is self.data and chars[i : i + 1].tolist() == [[start, end]]
        if same and tuple(doc.tensor.shape) == (len(doc), self.data["rows"].shape[1]):
            return doc.tensor[i]
        base = _base(doc, self.data)
        return _vector(self.data, _rows(self.data, base + start, base + end, token.text))


def _base(doc: Doc, data: Dict[str, Any]) -> int:
    """Where the Doc's text starts in the text trf_vectors ran on (not 0 after as_doc)."""
    if doc.user_data.get(KEY) is data:
        return 0
    text, stored, starts = doc.text, data["text"], data["chars"][:, 0]
    found: List[int] = []
    at = stored.find(text)
    while at >= 0 and len(found) < 100:
        k = int(numpy.searchsorted(starts, at))
        found += [at] if k < len(starts) and starts[k] == at else []
        at = stored.find(text, at + 1)
    if len(found) > 1 and tuple(doc.tensor.shape) == (len(doc), data["rows"].shape[1]):
        # the same text twice: the place whose token vectors are the Doc's (as_doc copies
        # them into doc.tensor); equal vectors give equal results, so the first
        def fits(base: int) -> bool:
            try:
                want = [
                    _vector(data, _rows(data, base + t.idx, base + t.idx + len(t), t.text))
                    for t in doc
                ]
            except TrfVectorsDataError:
                return False
            return bool(numpy.allclose(doc.tensor, numpy.stack(want), atol=1e-5))

        found = [base for base in found if fits(base)][:1] or found
    if len(found) != 1:
        raise TrfVectorsDataError(
            f"{NAME}: this Doc's text ({_short(text)}) is "
            f"{'not' if not found else f'{len(found)} times'} in the text trf_vectors ran on "
            f"({_short(stored)}), so its vectors cannot be told; its hooks or user data come from "
            "another Doc. Run the pipeline on this Doc's text (nlp(doc.text))."
        )
    return found[0]


def _short(text: str) -> str:
    cut = f"{text[:28]!r}...{text[-28:]!r} ({len(text)} characters)"
    return repr(text) if len(text) <= 60 else cut


def _rows(data: Dict[str, Any], start: int, end: int, text: str) -> Any:
    """The indices of the rows of the stored tokens that make up ``text[start:end]``, once."""
    chars = data["chars"]
    a = int(numpy.searchsorted(chars[:, 0], start))
    b = int(numpy.searchsorted(chars[:, 1], end, side="right"))
    if end > start and not (a < b and chars[a, 0] == start and chars[b - 1, 1] == end):
        raise TrfVectorsDataError(
            f"{NAME}: {_short(text)} (characters {start}-{end} of the text trf_vectors ran on) "
            "cuts a token that the transformer saw whole: tokens split after trf_vectors ran have "
            "no vectors of their own. Split tokens before the transformer, or ask for the vector "
            "of a span that holds the whole token."
        )
    return numpy.unique(
        data["token_rows"][data["token_offsets"][a] : data["token_offsets"][max(a, b)]]
    )


def _vector(data: Dict[str, Any], index: Any, pooling: Optional[Model[Ragged, Any]] = None) -> Any:
    """The pooling (without one: the mean) of stored rows, in float32; zeros for none."""
    rows, width = data["rows"][index].astype("float32"), data["rows"].shape[1]
    if pooling is not None:
        vector = _pool(pooling, [rows], width)[0]
    else:
        vector = rows.mean(0) if len(rows) else numpy.zeros((width,), dtype="float32")
    return _unit(vector) if data["normalize"] else vector


def has_vector(obj: Union[Doc, Span, Token]) -> bool:
    return True


def similarity(obj: Union[Doc, Span, Token], other: Any) -> float:
    """The cosine of the two vectors: 0 where either is zero, NaN where either has NaN."""
    a: Any = obj.vector
    b: Any = other.vector
    if a.shape != b.shape:
        raise LayerInputError(
            f"{NAME}: similarity of a vector of shape {a.shape} with one of shape "
            f"{getattr(b, 'shape', b)}; expected two objects with vectors from the same "
            "transformer."
        )
    norm = float(numpy.linalg.norm(a)) * float(numpy.linalg.norm(b))
    return float(numpy.dot(a, b) / norm) if norm != 0 else 0.0


def restore_vectors(docs: Union[Doc, Iterable[Doc]]) -> None:
    """Give Docs back the vectors ``trf_vectors`` stored in their user data, all checked before
    any Doc changes. See docs/vectors.md#keeping-the-vectors-restore_vectors."""
    docs = [docs] if isinstance(docs, Doc) else list(docs)
    poolings: Dict[str, Model[Ragged, Any]] = {}  # each pooling block built once
    checked = [
        (doc, checked_data(doc.user_data[KEY], doc, poolings))
        for doc in docs
        if doc.user_data.get(KEY) is not None
    ]
    for doc, data in checked:
        doc.user_data[KEY] = data
        rows = data["rows"]
        same = doc.text == data["text"] and numpy.array_equal(_chars(doc), data["chars"])
        if same and rows.dtype == numpy.float32 and len(doc) <= 2 * len(rows) + 2:
            if tuple(doc.tensor.shape) != (len(doc), rows.shape[1]):
                doc.tensor = _token_means(data)
        install_hooks(doc, data, poolings[_key(data["pooling"])])


def checked_data(raw: Any, doc: Doc, poolings: Dict[str, Model[Ragged, Any]]) -> Dict[str, Any]:
    """The stored data, checked against itself and the Doc; its pooling built into ``poolings``."""

    def bad(problem: str) -> TrfVectorsDataError:
        return TrfVectorsDataError(
            f"{NAME}: doc.user_data[{KEY!r}] {problem}; expected the data trf_vectors stores for "
            "this Doc (restore_vectors reads nothing else). Run the pipeline on the Doc's text "
            "again to get its vectors."
        )

    if not isinstance(raw, dict) or set(raw) != set(FIELDS):
        raise bad(
            f"has the keys {sorted(map(str, raw))}"
            if isinstance(raw, dict)
            else f"is a {type(raw).__name__}"
        )

    def array(name: str, kinds: str, ndim: int) -> Any:
        a = raw[name]
        if not isinstance(a, numpy.ndarray) or a.dtype.kind not in kinds or a.ndim != ndim:
            got = type(a).__name__
            if isinstance(a, numpy.ndarray):
                got = f"{a.dtype} array of shape {a.shape}"
            raise bad(
                f"holds {name} as a {got}; expected a {ndim}d {'float' if kinds == 'f' else 'int'} "
                "array"
            )
        return a

    text, vector, rows = raw["text"], array("vector", "f", 1), array("rows", "f", 2)
    chars, token_rows = array("chars", "iu", 2), array("token_rows", "iu", 1)
    offsets = array("token_offsets", "iu", 1)
    if not isinstance(text, str) or not isinstance(raw["normalize"], bool):
        raise bad(f"holds text as {type(text).__name__} and normalize as {raw['normalize']!r}")
    if not len(vector) or rows.shape[1] != len(vector):
        raise bad(
            f"holds a vector of shape {vector.shape} and rows of shape {rows.shape}; expected one "
            "width >= 1"
        )
    n = len(chars)
    if (
        chars.shape[1] != 2
        or n
        and (
            chars.min() < 0
            or (chars[:, 1] <= chars[:, 0]).any()
            or (chars[1:, 0] < chars[:-1, 1]).any()
            or chars[-1, 1] > len(text)
        )
    ):
        raise bad(
            f"holds token characters of shape {chars.shape} not in order within its "
            f"{len(text)}-char text"
        )
    if (
        len(offsets) != n + 1
        or offsets[0] != 0
        or (numpy.diff(offsets.astype("int64")) < 0).any()
        or (offsets[-1] != len(token_rows))
    ):
        raise bad(
            f"holds {len(offsets)} token offsets for {n} tokens and {len(token_rows)} token rows"
        )
    if len(token_rows) and (token_rows.min() < 0 or token_rows.max() >= len(rows)):
        raise bad(f"points at rows {token_rows.min()}..{token_rows.max()} of {len(rows)}")
    if len(token_rows) > len(rows) + n:
        raise bad(
            f"holds {len(token_rows)} token rows for {len(rows)} rows and {n} tokens; expected at "
            "most their sum"
        )
    data = {
        **raw,
        "chars": chars.astype("int64"),
        "token_rows": token_rows.astype("int64"),
        # float16: vectors_only
        "rows": rows if rows.dtype == numpy.float16 else rows.astype("float32", copy=False),
        "token_offsets": offsets.astype("int64"),
        "vector": vector.astype("float32", copy=False),
    }
    key = _key(raw["pooling"])
    if key not in poolings:
        poolings[key] = _pooling(raw["pooling"], f"{NAME}: doc.user_data[{KEY!r}]")
    if len(doc):
        _base(doc, data)
    return data


def _key(config: Any) -> str:
    return (
        str(srsly.json_dumps(config, sort_keys=True)) if isinstance(config, dict) else repr(config)
    )


__all__ = [
    "TrfVectors",
    "TrfVectorsDataError",
    "make_trf_vectors",
    "restore_vectors",
    "check_pooling",
    "install_hooks",
    "KEY",
]
