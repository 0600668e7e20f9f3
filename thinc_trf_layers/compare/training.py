"""The heads of a compare run (``build_pooling``, then ``Softmax()``), their training and scores;
the time per batch: the head's forward + backward on one BLAS/OpenMP thread (docs/cli.md)."""

import contextlib
import importlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

import numpy
from thinc.api import Adam, Model, Softmax, chain, fix_random_seed, list2ragged, registry
from thinc.types import Floats2d

from thinc_trf_layers import TransformerOutputT, array_getitem, map_list, trf2layers, trf_pool

from .features import Features
from .inputs import LAYER_MIXES, POOLINGS

#: A head, or its pooling part: one transformer output per text in, one row per text out.
HeadT = Model[Sequence[TransformerOutputT], Floats2d]


def build_pooling(name: str, n_layers: int) -> HeadT:
    """The registered layer of ``POOLINGS`` with ``grad_factor=0.0``; a layer mix then
    mean-pools its output (a text is one span: ``array_getitem(0)`` is all of it)."""
    make = registry.get("layers", POOLINGS[name][0])
    if name not in LAYER_MIXES:
        return trf_pool(make(), grad_factor=0.0)
    return chain(
        trf2layers(n_layers=n_layers, grad_factor=0.0),
        map_list(make(n_layers)),
        map_list(array_getitem(0)),
        list2ragged(),
        registry.get("layers", POOLINGS["mean"][0])(),
    )


def count_params(model: Model[Any, Any]) -> int:
    params = ((node, name) for node in model.walk() for name in node.param_names)
    return sum(int(node.get_param(name).size) for node, name in params if node.has_param(name))


def one_hot(y: Sequence[int], n_classes: int) -> Floats2d:
    return cast(Floats2d, numpy.eye(n_classes, dtype="float32")[numpy.asarray(y, dtype="int64")])


@dataclass
class RunResult:
    """One pooling trained and scored on one split."""

    seed: int
    accuracy: float
    macro_f1: float
    f1_per_label: Dict[str, float]
    params_pooling: int
    params_total: int
    output_width: int
    final_train_loss: float
    batch_seconds: List[float]  # the head's forward + backward, one per training batch
    train_seconds: float
    model: Optional[HeadT] = field(default=None, repr=False)  # the trained head


def train_and_evaluate(
    name: str,
    feats: Features,
    y: Sequence[int],
    split: Tuple[List[int], List[int]],
    label_names: Sequence[str],
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    learn_rate: float,
    progress: Any = None,
) -> RunResult:
    """Train ``chain(pooling, Softmax())`` on the split's training part (the seed fixes the
    initialisation and the batch order) and score it on its test part."""
    train, test = split
    n_classes = len(label_names)
    docs = feats.outputs if name in LAYER_MIXES else feats.last
    fix_random_seed(seed)
    pool = build_pooling(name, feats.n_layers)
    softmax: Model[Floats2d, Floats2d] = Softmax()
    model = chain(pool, softmax)
    X_init = [docs[i] for i in train[:batch_size]]
    # chain's initialize would hand the label sample to the pooling as well
    pool.initialize(X=X_init)
    softmax.initialize(
        X=pool.predict(X_init), Y=one_hot([y[i] for i in train[:batch_size]], n_classes)
    )
    optimizer = Adam(learn_rate)
    rng = numpy.random.RandomState(seed)
    batch_seconds: List[float] = []
    loss = 0.0
    try:  # BLAS and OpenMP on one thread (threadpoolctl is untyped)
        one_thread: Any = importlib.import_module("threadpoolctl").threadpool_limits(limits=1)
    except ImportError:
        one_thread = contextlib.nullcontext()
    with one_thread:
        t_start = time.perf_counter()
        for _ in range(epochs):
            order = numpy.asarray(train)[rng.permutation(len(train))]
            losses: List[float] = []
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size].tolist()
                truth = one_hot([y[i] for i in idx], n_classes)
                t0 = time.perf_counter()
                probs, backprop = model.begin_update([docs[i] for i in idx])
                t1 = time.perf_counter()
                d_probs = cast(Floats2d, (probs - truth) / len(idx))
                t2 = time.perf_counter()
                backprop(d_probs)
                batch_seconds.append((t1 - t0) + (time.perf_counter() - t2))
                model.finish_update(optimizer)
                log_probs = numpy.log(numpy.maximum(numpy.asarray(probs), 1e-9))
                losses.append(float(-(truth * log_probs).sum() / len(idx)))
            loss = float(numpy.mean(losses)) if losses else 0.0
            if progress is not None:
                progress.update(1)
                progress.set_postfix_str(f"{name} loss {loss:.3f}", refresh=False)
        train_seconds = time.perf_counter() - t_start
        pred: List[int] = []
        for start in range(0, len(test), batch_size):
            probs = model.predict([docs[i] for i in test[start : start + batch_size]])
            pred.extend(numpy.asarray(probs).argmax(axis=1).tolist())
    gold, guess = numpy.asarray([y[i] for i in test]), numpy.asarray(pred)
    is_c, says_c = (numpy.equal.outer(a, numpy.arange(n_classes)) for a in (gold, guess))
    tp, wrong = (is_c & says_c).sum(axis=0), (is_c != says_c).sum(axis=0)  # wrong: fp + fn
    f1 = (2 * tp / numpy.maximum(2 * tp + wrong, 1)).tolist()  # 0: label in neither gold nor guess
    return RunResult(
        seed,
        float(numpy.mean(gold == guess)),
        float(numpy.mean(f1)),
        dict(zip(label_names, f1)),
        count_params(pool),
        count_params(model),
        int(softmax.get_dim("nI")),
        loss,
        batch_seconds,
        train_seconds,
        model,
    )


def ms_per_batch(runs: Sequence[RunResult]) -> float:
    """Median forward + backward time of the head per training batch, over all runs, in ms."""
    times = [t for r in runs for t in r.batch_seconds]
    return 1000.0 * statistics.median(times) if times else 0.0


def summary(name: str, runs: Sequence[RunResult]) -> Dict[str, Any]:
    """The ``results.json`` entry of one pooling over every split: means, sample standard
    deviations (0 for one split), and the runs."""
    mean = statistics.fmean
    acc, f1 = [r.accuracy for r in runs], [r.macro_f1 for r in runs]
    return {
        "pooling": name,
        "layer": POOLINGS[name][0],
        "accuracy": mean(acc),
        "accuracy_std": statistics.stdev(acc) if len(runs) > 1 else 0.0,
        "macro_f1": mean(f1),
        "macro_f1_std": statistics.stdev(f1) if len(runs) > 1 else 0.0,
        "f1_per_label": {k: mean([r.f1_per_label[k] for r in runs]) for k in runs[0].f1_per_label},
        "params_pooling": runs[0].params_pooling,
        "params_total": runs[0].params_total,
        "output_width": runs[0].output_width,
        "runs": [
            {key: getattr(r, key) for key in ("seed", "accuracy", "macro_f1", "final_train_loss")}
            for r in runs
        ],
    }
