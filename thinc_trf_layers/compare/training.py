"""The heads of a compare run, their training and their evaluation.

Every head is built from the library's public layers over the per-text
``TransformerOutput`` list (``features.py``):

- a pooling of the last layer: ``chain(trf_pool(pooling), Softmax())`` over outputs that
  hold the last layer only (``Features.last``);
- a layer mix: ``chain(trf2layers(), map_list(mix), map_list(array_getitem(0)),
  list2ragged(), reduce_mean())`` then ``Softmax()``: the mix runs over each text's
  layers; each text is one span of real wordpieces (``TransformerOutput.from_hf``), so
  ``[0]`` is all of its wordpieces; the mixed rows are mean-pooled.

Both read the features with ``grad_factor=0.0``: the transformer is frozen, so the heads
hand no gradient back to it.

The poolings and mixes are looked up by registry name (``poolings.POOLINGS``), so a run
always tests the registered layers. The reported time per batch is the whole head's
forward plus backward (pooling and Softmax; not the loss, not the optimizer), timed with
BLAS and OpenMP held to one thread, as the benchmarks time the layers.
"""
import contextlib
import importlib
import statistics
import time
from dataclasses import dataclass, field
from typing import (
    Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, cast
)

import numpy
from thinc.api import Adam, Model, Softmax, chain, fix_random_seed, list2ragged, registry
from thinc.types import Floats2d, Floats3d, Ragged

from thinc_trf_layers import TransformerOutputT, array_getitem, map_list, trf2layers, trf_pool

from .errors import InputError
from .features import Features
from .poolings import LAYER_MIXES, MIX_POOLING, POOLINGS

#: A head's input: one transformer output per text.
DocsT = Sequence[TransformerOutputT]
#: A pooling over the transformer outputs (one row per text), and a whole head.
PoolModelT = Model[DocsT, Floats2d]
HeadModelT = Model[DocsT, Floats2d]


class Split(NamedTuple):
    train: List[int]
    test: List[int]


@dataclass
class PoolingSpec:
    """How ``compare`` builds one pooling."""

    name: str
    registry_name: str
    description: str
    all_layers: bool  # a layer mix (reads every layer), else a pooling of the last layer


def pooling_spec(name: str) -> PoolingSpec:
    registry_name, description = POOLINGS[name]
    return PoolingSpec(name, registry_name, description, all_layers=name in LAYER_MIXES)


def get_layer(name: str) -> Optional[Callable[..., Model[Any, Any]]]:
    """The creation function registered as ``name`` in ``registry.layers``, or None."""
    try:
        return cast(Callable[..., Model[Any, Any]], registry.get("layers", name))
    except ValueError:  # catalogue.RegistryError
        return None


def check_poolings_available(names: Iterable[str]) -> None:
    """Every named pooling must resolve in ``registry.layers`` (``InputError`` if not)."""

    def registered(name: str) -> bool:
        return get_layer(POOLINGS[name][0]) is not None

    missing = [
        f"{name} ({POOLINGS[name][0]})"
        for name in names
        if not registered(name) or (name in LAYER_MIXES and not registered(MIX_POOLING))
    ]
    if missing:
        available = [n for n in POOLINGS if registered(n)]
        raise InputError(
            f"--poolings: not available in this installation: {', '.join(missing)}; "
            f"available: {', '.join(available) or 'none'}."
        )


def _make(registry_name: str, *args: Any) -> Model[Any, Any]:
    make = get_layer(registry_name)
    assert make is not None, registry_name  # checked by check_poolings_available
    return make(*args)


def build_pooling(spec: PoolingSpec, n_layers: int) -> PoolModelT:
    """The pooling part of a head: transformer outputs in, one row per text out."""
    if not spec.all_layers:
        pooling = cast(Model[Ragged, Floats2d], _make(spec.registry_name))
        return trf_pool(pooling, grad_factor=0.0)
    mix = cast(Model[List[Floats3d], Floats3d], _make(spec.registry_name, n_layers))
    mean = cast(Model[Ragged, Floats2d], _make(POOLINGS[MIX_POOLING][0]))
    # each text is one span of real wordpieces (from_hf): [0] is all of them
    first_span = cast(Model[Floats3d, Any], array_getitem(0))
    layers: List[Model[Any, Any]] = [
        trf2layers(n_layers=n_layers, grad_factor=0.0),
        map_list(mix),
        map_list(first_span),
        list2ragged(),
        mean,
    ]
    return cast(PoolModelT, chain(*layers))


def build_head(
    spec: PoolingSpec, n_layers: int
) -> Tuple[HeadModelT, PoolModelT, Model[Floats2d, Floats2d]]:
    """``chain(pooling, Softmax())``, its pooling and its Softmax."""
    pool = build_pooling(spec, n_layers)
    softmax: Model[Floats2d, Floats2d] = Softmax()
    return chain(pool, softmax), pool, softmax


def count_params(model: Model[Any, Any]) -> int:
    total = 0
    for node in model.walk():
        for name in node.param_names:
            if node.has_param(name):
                total += int(node.get_param(name).size)
    return total


@contextlib.contextmanager
def one_thread() -> Iterator[bool]:
    """Hold BLAS and OpenMP to one thread (with threadpoolctl, if installed).

    The heads' work is small matrix products: with the default two or more BLAS threads
    on a machine whose cores are busy (torch's threads, other jobs), each product waits
    for its threads to be scheduled, and ``attention`` measured 10-20x its one-thread time.
    Yields whether the limit is in place.
    """
    try:
        threadpoolctl: Any = importlib.import_module("threadpoolctl")  # untyped
    except ImportError:
        yield False
        return
    with threadpoolctl.threadpool_limits(limits=1):
        yield True


def one_hot(y: Sequence[int], n_classes: int) -> Floats2d:
    out = numpy.zeros((len(y), n_classes), dtype="float32")
    out[numpy.arange(len(y)), numpy.asarray(y, dtype="int64")] = 1.0
    return cast(Floats2d, out)


def macro_f1(gold: Sequence[int], pred: Sequence[int], n_classes: int) -> Tuple[float, List[float]]:
    """Unweighted mean of the per-label F1 (0 for a label never predicted nor present)."""
    g = numpy.asarray(gold)
    p = numpy.asarray(pred)
    scores: List[float] = []
    for c in range(n_classes):
        tp = float(numpy.sum((g == c) & (p == c)))
        fp = float(numpy.sum((g != c) & (p == c)))
        fn = float(numpy.sum((g == c) & (p != c)))
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(numpy.mean(scores)), scores


@dataclass
class RunResult:
    """One pooling trained and evaluated on one split."""

    seed: int
    accuracy: float
    macro_f1: float
    f1_per_label: Dict[str, float]
    params_pooling: int
    params_total: int
    output_width: int
    final_train_loss: float
    #: seconds of the head's forward + backward, one entry per training batch
    batch_seconds: List[float]
    train_seconds: float
    #: the trained head, ``chain(pooling, Softmax())``
    model: Optional[HeadModelT] = field(default=None, repr=False, compare=False)


@dataclass
class PoolingResult:
    """One pooling over every repeat (split and seed): means, spreads and the runs."""

    name: str
    registry_name: str
    runs: List[RunResult]

    @property
    def accuracy(self) -> float:
        return _mean([r.accuracy for r in self.runs])

    @property
    def accuracy_std(self) -> float:
        return _std([r.accuracy for r in self.runs])

    @property
    def macro_f1(self) -> float:
        return _mean([r.macro_f1 for r in self.runs])

    @property
    def macro_f1_std(self) -> float:
        return _std([r.macro_f1 for r in self.runs])

    @property
    def f1_per_label(self) -> Dict[str, float]:
        labels = list(self.runs[0].f1_per_label)
        return {label: _mean([r.f1_per_label[label] for r in self.runs]) for label in labels}

    @property
    def params_pooling(self) -> int:
        return self.runs[0].params_pooling

    @property
    def params_total(self) -> int:
        return self.runs[0].params_total

    @property
    def output_width(self) -> int:
        return self.runs[0].output_width

    @property
    def ms_per_batch(self) -> float:
        """Median forward + backward time of the head per training batch, over all runs, in ms."""
        times = [t for r in self.runs for t in r.batch_seconds]
        return 1000.0 * statistics.median(times) if times else 0.0

    @property
    def train_seconds(self) -> float:
        return sum(r.train_seconds for r in self.runs)


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else 0.0


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation; 0 for fewer than two values."""
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0


def train_and_evaluate(
    spec: PoolingSpec,
    feats: Features,
    y: Sequence[int],
    split: Split,
    label_names: Sequence[str],
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    learn_rate: float,
    progress: Any = None,
) -> RunResult:
    """Train ``chain(pooling, Softmax())`` on ``split.train`` and score it on ``split.test``.

    The seed fixes the initialisation and the batch order. Each training batch's forward
    and backward through the whole head are timed (not the loss, not the optimizer).
    """
    n_classes = len(label_names)
    docs = feats.outputs if spec.all_layers else feats.last
    fix_random_seed(seed)
    model, pool, softmax = build_head(spec, feats.n_layers)
    init_idx = split.train[: max(batch_size, 1)]
    X_init = [docs[i] for i in init_idx]
    # chain's initialize would hand the label sample to the pooling as well
    pool.initialize(X=X_init)
    softmax.initialize(X=pool.predict(X_init), Y=one_hot([y[i] for i in init_idx], n_classes))
    optimizer = Adam(learn_rate)
    rng = numpy.random.RandomState(seed)
    train = numpy.asarray(split.train)
    batch_seconds: List[float] = []
    loss = 0.0
    with one_thread():
        t_start = time.perf_counter()
        for epoch in range(epochs):
            order = train[rng.permutation(len(train))]
            losses: List[float] = []
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size].tolist()
                X = [docs[i] for i in idx]
                truth = one_hot([y[i] for i in idx], n_classes)
                t0 = time.perf_counter()
                probs, backprop = model.begin_update(X)
                t1 = time.perf_counter()
                d_probs = cast(Floats2d, (probs - truth) / len(idx))
                t2 = time.perf_counter()
                backprop(d_probs)
                t3 = time.perf_counter()
                batch_seconds.append((t1 - t0) + (t3 - t2))
                model.finish_update(optimizer)
                log_probs = numpy.log(numpy.maximum(numpy.asarray(probs), 1e-9))
                losses.append(float(-(truth * log_probs).sum() / len(idx)))
            loss = float(numpy.mean(losses)) if losses else 0.0
            if progress is not None:
                progress.update(1)
                progress.set_postfix_str(f"{spec.name} loss {loss:.3f}", refresh=False)
        train_seconds = time.perf_counter() - t_start
        pred: List[int] = []
        for start in range(0, len(split.test), batch_size):
            idx = split.test[start : start + batch_size]
            probs = model.predict([docs[i] for i in idx])
            pred.extend(numpy.asarray(probs).argmax(axis=1).tolist())
    gold = [y[i] for i in split.test]
    accuracy = float(numpy.mean(numpy.asarray(gold) == numpy.asarray(pred)))
    f1, per_label = macro_f1(gold, pred, n_classes)
    return RunResult(
        seed=seed,
        accuracy=accuracy,
        macro_f1=f1,
        f1_per_label={name: score for name, score in zip(label_names, per_label)},
        params_pooling=count_params(pool),
        params_total=count_params(model),
        output_width=int(softmax.get_dim("nI")),
        final_train_loss=loss,
        batch_seconds=batch_seconds,
        train_seconds=train_seconds,
        model=model,
    )


__all__ = [
    "Split",
    "PoolingSpec",
    "pooling_spec",
    "get_layer",
    "check_poolings_available",
    "build_pooling",
    "build_head",
    "count_params",
    "one_thread",
    "one_hot",
    "macro_f1",
    "RunResult",
    "PoolingResult",
    "train_and_evaluate",
]
