"""``embed_texts``: a corpus of texts to an array of Doc vectors, through a spaCy
pipeline with ``trf_vectors`` (see ``docs/scaling.md``)."""

import itertools
from typing import Any, Iterable, Iterator, List, Optional, Sized

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from ..errors import LayerInputError
from .vectors import TrfVectors

#: how many texts are read, sorted by length and held (as texts, then Docs) at a time
WINDOW = 4096


def embed_texts(
    nlp: Language, texts: Iterable[str], *, batch_size: int = 32, progress: bool = True
) -> Any:
    """``[nlp(text).vector for text in texts]`` as one float32 array (len(texts), width),
    computed faster. See docs/scaling.md, "embed_texts"."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LayerInputError(
            f"embed_texts: expected batch_size to be an int >= 1, got {batch_size!r}."
        )
    found = [(i, proc) for i, (_, proc) in enumerate(nlp.pipeline) if isinstance(proc, TrfVectors)]
    if not found:
        raise LayerInputError(
            f"embed_texts: the pipeline {nlp.pipe_names} has no trf_vectors component; expected "
            'one after the transformer (nlp.add_pipe("trf_vectors")).'
        )
    at, vectors = found[-1]
    before = [proc for _, proc in nlp.pipeline[:at]]
    # spacy-transformers' fast tokenizer counts the wordpieces that a batch pads
    tokenizers = [getattr(proc.model, "tokenizer", None) for _, proc in vectors.transformers()]
    tokenizer = tokenizers[0] if tokenizers and getattr(tokenizers[0], "is_fast", False) else None
    from ..compare.features import progress_bar

    total = len(texts) if isinstance(texts, Sized) else None
    out: List[Any] = []
    with progress_bar(total=total, desc="embed_texts", unit="text", enabled=progress) as bar:
        stream = enumerate(texts)
        while window := [_text(text, i) for i, text in itertools.islice(stream, WINDOW)]:
            out.append(_embed(nlp, vectors, before, tokenizer, window, batch_size, bar))
    if not out:
        return numpy.zeros((0, vectors.width or vectors.model_width()), "float32")
    return numpy.concatenate(out)


def _text(text: Any, i: int) -> str:
    if not isinstance(text, str):
        raise LayerInputError(
            f"embed_texts: text {i} is a {type(text).__name__} ({text!r:.60}); expected a str. "
            "Decode bytes first (text.decode('utf8')), and give None or missing values a text "
            'of their own ("").'
        )
    return str(text) if type(text) is not str else text  # spaCy's tokenizer refuses numpy.str_


def _embed(
    nlp: Language,
    vectors: TrfVectors,
    before: List[Any],
    tokenizer: Optional[Any],
    texts: List[str],
    batch_size: int,
    bar: Optional[Any],
) -> Any:
    """One window's vectors, its Docs sorted by length; each Doc let go once read."""
    docs: List[Optional[Doc]] = [nlp.make_doc(text) for text in texts]
    sizes = [len(doc) for doc in docs if doc is not None]
    lengths = sizes
    if tokenizer is not None:
        lengths = [len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]]
    order = sorted((i for i, size in enumerate(sizes) if size), key=lambda i: -lengths[i])
    # a Doc without tokens runs alone: spacy-transformers' alignment fails on one in a batch
    alone = [[i] for i, size in enumerate(sizes) if not size]

    def stream(indices: List[int]) -> Iterator[Doc]:
        for i in indices:
            doc, docs[i] = docs[i], None
            assert doc is not None
            yield doc

    out = numpy.zeros((len(docs), 0), dtype="float32")
    for indices in [order] + alone:
        piped: Iterable[Doc] = stream(indices)
        for proc in before:
            if hasattr(proc, "pipe"):
                piped = proc.pipe(piped, batch_size=batch_size)
            else:
                piped = map(proc, piped)
        done = 0
        for rows, batch in zip(
            minibatch(indices, size=batch_size),  # type: ignore[no-untyped-call]
            minibatch(piped, size=batch_size),  # type: ignore[no-untyped-call]
        ):
            got, done = vectors.doc_vectors(batch), done + len(batch)
            if not out.shape[1]:
                out = numpy.zeros((len(docs), got.shape[1]), dtype="float32")
            out[rows] = got
            if bar is not None:
                bar.update(len(rows))
        if done != len(indices):
            raise LayerInputError(
                f"embed_texts: the pipeline gave back {done} of {len(indices)} Docs; expected all."
            )
    return out
