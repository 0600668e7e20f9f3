"""The work behind ``python -m thinc_trf_layers compare`` (see ``cli.py``).

Steps: load the transformer (bad folder -> ``InputError``), run it once over every text
(frozen features, every hidden layer kept), then for each pooling train
``chain(pooling, Softmax())`` on the same seeded split and evaluate it on the held-out
texts. Results are written at the very end, into a temporary folder that is then moved
into place, so a failed run leaves ``--out`` untouched.

torch, transformers, matplotlib and tqdm are imported inside the functions that use them.
"""
import json
import math
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, cast

import numpy
from thinc.api import Adam, Model, NumpyOps, Softmax, chain, fix_random_seed, registry
from thinc.types import Floats2d, Floats3d, Ints1d, Ragged

from .cli import LAYER_MIXES, POOLINGS, CompareOptions, InputError, stratified_split
from .trf_data import TransformerOutput
from .util import check_array

#: Threads torch may use for the transformer pass.
TORCH_THREADS = 2
#: Name of the files written to ``--out``.
RESULTS_JSON = "results.json"
RESULTS_PNG = "results.png"
RESULTS_TXT = "results.txt"


# --------------------------------------------------------------------------- features


class Features(NamedTuple):
    """Frozen transformer features: one ``TransformerOutput`` per text.

    Each holds the real wordpieces of its text as one span ([CLS] first, [SEP] last; no
    padding): ``tensors[0]`` the last hidden layer, ``hidden_states`` every layer,
    embeddings first as in Hugging Face's ``hidden_states``, each (1, wordpieces, width).
    """

    outputs: List[TransformerOutput]
    n_layers: int
    width: int
    n_truncated: int


class Transformer(NamedTuple):
    tokenizer: Any
    model: Any
    n_layers: int
    width: int
    name: str
    #: the longest input the model takes (its position embeddings)
    max_length: int
    path: pathlib.Path


def _first_line(err: BaseException, limit: int = 160) -> str:
    """The error's type and the start of its first line (transformers' can be very long)."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_transformer(path: pathlib.Path, name: Optional[str] = None) -> Transformer:
    """Load tokenizer and model from a local folder; anything unusable is an ``InputError``."""
    try:
        import torch
        import transformers as _transformers
    except ImportError as err:
        raise InputError(
            f"compare needs torch and transformers ({_first_line(err)}); install the "
            f"'torch' and 'demo' extras: pip install 'thinc-trf-layers[torch,demo]'."
        ) from None
    transformers: Any = _transformers  # loosely typed: from_pretrained is untyped
    torch.set_num_threads(TORCH_THREADS)
    transformers.logging.set_verbosity_error()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # transformers raises many kinds here
        raise InputError(
            f"--model {path}: no usable tokenizer in this folder ({_first_line(err)}); expected "
            f"a Hugging Face model folder with its tokenizer files."
        ) from None
    try:
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    except Exception as err:
        raise InputError(
            f"--model {path}: not a loadable Hugging Face model ({_first_line(err)})."
        ) from None
    if tokenizer.pad_token is None:
        # decoder-style tokenizers (GPT-2, ...) have no padding token; the attention mask
        # keeps padding out of every pooling, so any token will do
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise InputError(
                f"--model {path}: the tokenizer has no padding, end or unknown token to pad "
                f"batches with."
            )
        tokenizer.pad_token = fallback
    model.eval()
    config = model.config
    n_hidden = getattr(config, "num_hidden_layers", None)
    width = getattr(config, "hidden_size", None)
    if not isinstance(n_hidden, int) or not isinstance(width, int):
        raise InputError(
            f"--model {path}: the config names no num_hidden_layers/hidden_size; expected an "
            f"encoder model (BERT, RoBERTa, MiniLM, ...)."
        )
    max_positions = getattr(config, "max_position_embeddings", None)
    max_length = max_positions if isinstance(max_positions, int) and max_positions > 0 else 512
    return Transformer(
        tokenizer, model, n_hidden + 1, width, name or path.name, max_length, path
    )


def extract_features(
    trf: Transformer,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int,
    progress: bool,
) -> Features:
    """Run the transformer once over ``texts`` (no gradients) and keep every hidden layer."""
    import torch

    ops = NumpyOps()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: List[Optional[TransformerOutput]] = [None] * len(texts)
    n_truncated = 0
    bar = _progress(total=len(texts), desc="transformer", unit="text", enabled=progress)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = [texts[i] for i in idx]
            full = trf.tokenizer(batch, add_special_tokens=True, truncation=False)["input_ids"]
            n_truncated += sum(len(ids) > max_length for ids in full)
            enc = trf.tokenizer(
                batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            try:
                with torch.no_grad():
                    out = trf.model(**enc, output_hidden_states=True, return_dict=True)
            except Exception as err:  # a model that does not take a plain text batch
                raise InputError(
                    f"--model {trf.path}: running the model on a batch of texts failed "
                    f"({_first_line(err)}); expected an encoder that takes input_ids and "
                    f"attention_mask."
                ) from None
            if not getattr(out, "hidden_states", None):
                raise InputError(
                    f"--model {trf.path}: the model returned no hidden_states; expected a "
                    f"transformers model that supports output_hidden_states=True."
                )
            hidden = [h.to(torch.float32) for h in out.hidden_states]
            mask = enc["attention_mask"]
            per_text = TransformerOutput.from_hf(mask, hidden_states=hidden, ops=ops)
            for i, output in zip(idx, per_text):
                outputs[i] = output
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
    done = [o for o in outputs if o is not None]
    assert len(done) == len(texts) and done[0].hidden_states is not None
    n_layers = len(done[0].hidden_states)
    width = int(done[0].tensors[0].shape[2])
    return Features(done, n_layers, width, n_truncated)


# --------------------------------------------------------------------------- heads


class LayeredRagged(NamedTuple):
    """Every hidden layer of a batch: one (wordpieces, width) array per layer; the rows
    (texts) of the wordpiece axis are given by ``lengths``."""

    layers: List[Floats2d]
    lengths: Ints1d


def mix_then_ragged(mix: Model[List[Floats3d], Floats3d]) -> Model[LayeredRagged, Ragged]:
    """Apply a layer mix to a batch's layers and hand the mixed rows on as a ``Ragged``.

    Each layer's rows are viewed as one span of shape (1, wordpieces, width), the form
    ``scalar_mix`` takes; the mixed span becomes the data of a ``Ragged`` with the batch's
    lengths, ready for a pooling.
    """
    return Model(f"mix_then_ragged({mix.name})", _mix_forward, init=_mix_init, layers=[mix])


def _mix_forward(
    model: Model[LayeredRagged, Ragged], X: LayeredRagged, is_train: bool
) -> Tuple[Ragged, Callable[[Ragged], LayeredRagged]]:
    mix = model.layers[0]
    spans = [cast(Floats3d, layer.reshape((1,) + layer.shape)) for layer in X.layers]
    Y3d, get_dXs = mix(spans, is_train)
    check_array(model.name, Y3d, 3, "the mix to return a Floats3d")
    lengths = X.lengths

    def backprop(dY: Ragged) -> LayeredRagged:
        d3d = cast(Floats3d, dY.dataXd.reshape((1,) + dY.dataXd.shape))
        dXs = get_dXs(d3d)
        return LayeredRagged([cast(Floats2d, d[0]) for d in dXs], lengths)

    return Ragged(Y3d[0], lengths), backprop


def _mix_init(
    model: Model[LayeredRagged, Ragged],
    X: Optional[LayeredRagged] = None,
    Y: Optional[Ragged] = None,
) -> None:
    spans = None
    if X is not None:
        spans = [cast(Floats3d, layer.reshape((1,) + layer.shape)) for layer in X.layers]
    model.layers[0].initialize(X=spans)


@dataclass
class PoolingSpec:
    """How ``compare`` builds and feeds one pooling."""

    name: str
    registry_name: str
    description: str
    all_layers: bool  # input is LayeredRagged (every layer), else a Ragged of the last layer


def get_layer(name: str) -> Optional[Callable[..., Model[Any, Any]]]:
    """The creation function registered as ``name`` in ``registry.layers``, or None."""
    try:
        return cast(Callable[..., Model[Any, Any]], registry.get("layers", name))
    except ValueError:  # catalogue.RegistryError
        return None


def _registered(name: str) -> bool:
    return get_layer(name) is not None


def pooling_spec(name: str) -> PoolingSpec:
    registry_name, description = POOLINGS[name]
    return PoolingSpec(name, registry_name, description, all_layers=name in LAYER_MIXES)


def check_poolings_available(names: Iterable[str]) -> None:
    """Every named pooling must resolve in ``registry.layers`` (``InputError`` if not)."""
    missing = [
        f"{name} ({POOLINGS[name][0]})"
        for name in names
        if not _registered(POOLINGS[name][0])
        or (name in LAYER_MIXES and not _registered(POOLINGS["mean"][0]))
    ]
    if missing:
        available = [n for n in POOLINGS if _registered(POOLINGS[n][0])]
        raise InputError(
            f"--poolings: not available in this installation: {', '.join(missing)}; "
            f"available: {', '.join(available) or 'none'}."
        )


def build_pooling(spec: PoolingSpec, n_layers: int) -> Model[Any, Floats2d]:
    """The pooling part of a head, built through the registry by name."""
    make = get_layer(spec.registry_name)
    assert make is not None, spec.registry_name  # checked by check_poolings_available
    if spec.all_layers:
        mean = get_layer(POOLINGS["mean"][0])
        assert mean is not None
        return chain(mix_then_ragged(make(n_layers)), mean())
    return cast(Model[Any, Floats2d], make())


def count_params(model: Model[Any, Any]) -> int:
    total = 0
    for node in model.walk():
        for name in node.param_names:
            if node.has_param(name):
                total += int(node.get_param(name).size)
    return total


# --------------------------------------------------------------------------- training


class Split(NamedTuple):
    train: List[int]
    test: List[int]


def make_input(spec: PoolingSpec, feats: Features, idx: Sequence[int]) -> Any:
    """A batch for a pooling: the real wordpieces of the texts ``idx``, rows by text.

    A ``Ragged`` of the last layer, or for a layer mix a ``LayeredRagged`` of every layer.
    """
    outputs = [feats.outputs[i] for i in idx]
    lengths = numpy.concatenate([o.lengths for o in outputs]).astype("int32")
    if spec.all_layers:
        hidden = [cast(List[Floats3d], o.hidden_states) for o in outputs]
        layers = [
            cast(Floats2d, numpy.concatenate([h[k][0] for h in hidden], axis=0))
            for k in range(feats.n_layers)
        ]
        return LayeredRagged(layers, cast(Ints1d, lengths))
    last = cast(Floats2d, numpy.concatenate([o.tensors[0][0] for o in outputs], axis=0))
    return Ragged(last, cast(Ints1d, lengths))


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
    #: seconds of pooling forward + backward, one entry per training batch
    batch_seconds: List[float]
    train_seconds: float


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
        """Median pooling forward + backward time per batch over all runs, in ms."""
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
    progress: Any,
) -> RunResult:
    n_classes = len(label_names)
    fix_random_seed(seed)
    pool = build_pooling(spec, feats.n_layers)
    head: Model[Floats2d, Floats2d] = Softmax()
    model = chain(pool, head)
    init_idx = split.train[: max(batch_size, 1)]
    X_init = make_input(spec, feats, init_idx)
    Y_init = one_hot([y[i] for i in init_idx], n_classes)
    pool.initialize(X=X_init)
    head.initialize(X=pool.predict(X_init), Y=Y_init)
    optimizer = Adam(learn_rate)
    rng = numpy.random.RandomState(seed)
    train = numpy.asarray(split.train)
    fb_times: List[float] = []
    loss = 0.0
    t_start = time.perf_counter()
    for epoch in range(epochs):
        order = train[rng.permutation(len(train))]
        losses: List[float] = []
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size].tolist()
            X = make_input(spec, feats, idx)
            truth = one_hot([y[i] for i in idx], n_classes)
            t0 = time.perf_counter()
            pooled, backprop_pool = pool.begin_update(X)
            t1 = time.perf_counter()
            probs, backprop_head = head.begin_update(pooled)
            d_probs = (probs - truth) / len(idx)
            d_pooled = backprop_head(cast(Floats2d, d_probs))
            t2 = time.perf_counter()
            backprop_pool(d_pooled)
            t3 = time.perf_counter()
            fb_times.append((t1 - t0) + (t3 - t2))
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
        probs = head.predict(pool.predict(make_input(spec, feats, idx)))
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
        output_width=int(head.get_dim("nI")),
        final_train_loss=loss,
        batch_seconds=fb_times,
        train_seconds=train_seconds,
    )


# --------------------------------------------------------------------------- output


def format_table(results: Sequence[PoolingResult]) -> str:
    header = [
        "pooling", "accuracy", "macro F1", "fwd+bwd ms/batch", "params (pooling)", "params (total)"
    ]
    spread = any(len(r.runs) > 1 for r in results)

    def score(mean: float, std: float) -> str:
        return f"{mean:.3f} ± {std:.3f}" if spread else f"{mean:.3f}"

    rows = [
        [
            r.name,
            score(r.accuracy, r.accuracy_std),
            score(r.macro_f1, r.macro_f1_std),
            f"{r.ms_per_batch:.2f}",
            f"{r.params_pooling:,}",
            f"{r.params_total:,}",
        ]
        for r in results
    ]
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(header)]
    align_left = [True, False, False, False, False, False]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(w) if left else cell.rjust(w)
            for cell, w, left in zip(cells, widths, align_left)
        ]
        return "  ".join(padded).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def plot(results: Sequence[PoolingResult], path: pathlib.Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in results]
    x = numpy.arange(len(names))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8.0, 0.9 * len(names) + 5.0), 4.2))
    spread = any(len(r.runs) > 1 for r in results)
    acc_err = [r.accuracy_std for r in results] if spread else None
    f1_err = [r.macro_f1_std for r in results] if spread else None
    bars_acc = ax1.bar(x - 0.2, [r.accuracy for r in results], 0.4, yerr=acc_err,
                       capsize=2, label="accuracy")
    bars_f1 = ax1.bar(x + 0.2, [r.macro_f1 for r in results], 0.4, yerr=f1_err,
                      capsize=2, label="macro F1")
    for bars in (bars_acc, bars_f1):
        ax1.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax1.set_xticks(x)
    ax1.set_xticklabels(names, rotation=30, ha="right")
    # Zoom in on the scores (the axis label says where it starts): on a 0..1 axis the
    # differences between poolings are often too small to see.
    lowest = min((min(r.accuracy - r.accuracy_std, r.macro_f1 - r.macro_f1_std) for r in results),
                 default=0.0)
    bottom = max(0.0, math.floor((lowest - 0.05) * 10.0) / 10.0)
    ax1.set_ylim(bottom, 1.0 + 0.18 * (1.0 - bottom))
    n_runs = len(results[0].runs) if results else 1
    ylabel = f"held-out score (mean ± sd, {n_runs} splits)" if spread else "held-out score"
    ax1.set_ylabel(ylabel if bottom == 0.0 else f"{ylabel}; axis from {bottom:.1f}")
    ax1.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    ax1.set_title("quality")
    bars_t = ax2.bar(x, [r.ms_per_batch for r in results], 0.6, color="tab:gray")
    ax2.bar_label(bars_t, fmt="%.2f", fontsize=7, padding=1)
    ax2.set_xticks(x)
    ax2.set_xticklabels(names, rotation=30, ha="right")
    ax2.set_ylabel("ms per batch (median)")
    ax2.set_title("pooling forward + backward")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(str(path), dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_outputs(out: pathlib.Path, files: Dict[str, Callable[[pathlib.Path], None]]) -> None:
    """Write every file into a temporary folder beside ``out``, then move them into place.

    If ``out`` does not exist, the temporary folder is renamed to it (one atomic step);
    otherwise each file replaces its namesake in ``out`` with ``os.replace``.
    """
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=str(out.parent)))
    try:
        for name, write in files.items():
            write(tmp / name)
        if not out.exists():
            os.rename(tmp, out)
            return
        for name in files:
            os.replace(tmp / name, out / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _versions() -> Dict[str, str]:
    import thinc

    from . import __version__

    versions = {"python": platform.python_version(), "thinc": thinc.__version__,
                "thinc_trf_layers": __version__, "numpy": numpy.__version__}
    for mod in ("torch", "transformers"):
        module = sys.modules.get(mod)
        if module is not None:
            versions[mod] = str(getattr(module, "__version__", "?"))
    return versions


def _progress(*, total: int, desc: str, unit: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # disable=None: tqdm turns itself off when stderr is not a terminal. The size comes
    # from shutil, which falls back to 80x24 where a terminal reports a size of 0 (tqdm
    # would then draw nothing).
    size = shutil.get_terminal_size((80, 24))
    return tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False,
        ncols=min(size.columns, 100), nrows=size.lines,
    )


def _check_dependencies() -> None:
    """torch, transformers and matplotlib must be importable (``InputError`` if not)."""
    import importlib.util

    missing = [
        name for name in ("torch", "transformers", "matplotlib")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise InputError(
            f"compare needs {', '.join(missing)}, not installed here; install the 'torch' "
            f"and 'demo' extras: pip install 'thinc-trf-layers[torch,demo]'."
        )


def run(options: CompareOptions) -> Dict[str, Any]:
    """Run a checked ``compare``; returns the content of results.json."""
    check_poolings_available(options.poolings)
    _check_dependencies()
    trf = load_transformer(options.model, options.model_name)
    data = options.data
    progress = not options.quiet
    t0 = time.perf_counter()
    max_length = min(options.max_length, trf.max_length)
    feats = extract_features(
        trf,
        data.texts,
        max_length=max_length,
        batch_size=options.batch_size,
        progress=progress,
    )
    feature_seconds = time.perf_counter() - t0
    label_index = {name: i for i, name in enumerate(data.label_names)}
    y = [label_index[label] for label in data.labels]
    seeds = [options.seed + r for r in range(options.repeats)]
    splits = [Split(*stratified_split(data.labels, options.test_fraction, seed)) for seed in seeds]
    n_train, n_test = len(splits[0].train), len(splits[0].test)
    specs = [pooling_spec(name) for name in options.poolings]
    bar = _progress(
        total=len(seeds) * len(specs) * options.epochs,
        desc="training",
        unit="epoch",
        enabled=progress,
    )
    results = [PoolingResult(spec.name, spec.registry_name, []) for spec in specs]
    try:
        for seed, split in zip(seeds, splits):
            for spec, result in zip(specs, results):
                run_result = train_and_evaluate(
                    spec, feats, y, split, data.label_names,
                    seed=seed, epochs=options.epochs, batch_size=options.batch_size,
                    learn_rate=options.learn_rate, progress=bar,
                )
                result.runs.append(run_result)
    finally:
        if bar is not None:
            bar.close()
    table = format_table(results)
    data_name = options.data_arg if options.data_arg is not None else "built-in example"
    summary = (
        f"data:  {len(data.texts)} texts ({data_name}), {len(data.label_names)} labels, "
        f"{n_train} train / {n_test} test (stratified, "
        + (f"seed {options.seed})\n" if len(seeds) == 1 else
           f"{len(seeds)} splits, seeds {seeds[0]}..{seeds[-1]}; mean ± sd)\n")
        + 
        f"model: {trf.name}, {feats.n_layers} hidden layers incl. embeddings, width "
        f"{feats.width}, max {max_length} wordpieces ({feats.n_truncated} texts truncated)\n"
        f"heads: pooling + Softmax, {options.epochs} epoch{'s' if options.epochs != 1 else ''}, "
        f"batch size {options.batch_size}, "
        f"Adam {options.learn_rate:g}"
    )
    report = {
        "command": "compare",
        "config": {
            "data": data_name,
            "model": trf.name if options.model_name else str(options.model),
            "poolings": list(options.poolings),
            "seed": options.seed,
            "repeats": options.repeats,
            "epochs": options.epochs,
            "batch_size": options.batch_size,
            "test_fraction": options.test_fraction,
            "max_length": max_length,
            "learn_rate": options.learn_rate,
        },
        "data": {
            "n_texts": len(data.texts),
            "labels": list(data.label_names),
            "label_counts": data.label_counts,
            "n_train": n_train,
            "n_test": n_test,
            "n_truncated": feats.n_truncated,
        },
        "model": {"name": trf.name, "n_layers": feats.n_layers, "width": feats.width},
        # Deterministic for a given seed, data, model and versions:
        "results": [
            {
                "pooling": r.name,
                "layer": r.registry_name,
                "accuracy": r.accuracy,
                "accuracy_std": r.accuracy_std,
                "macro_f1": r.macro_f1,
                "macro_f1_std": r.macro_f1_std,
                "f1_per_label": r.f1_per_label,
                "params_pooling": r.params_pooling,
                "params_total": r.params_total,
                "output_width": r.output_width,
                "runs": [
                    {
                        "seed": run.seed,
                        "accuracy": run.accuracy,
                        "macro_f1": run.macro_f1,
                        "final_train_loss": run.final_train_loss,
                    }
                    for run in r.runs
                ],
            }
            for r in results
        ],
        # Wall-clock figures: they vary from run to run.
        "timings": {
            "feature_extraction_seconds": feature_seconds,
            "poolings": {
                r.name: {
                    "forward_backward_ms_per_batch": r.ms_per_batch,
                    "train_seconds": r.train_seconds,
                }
                for r in results
            },
        },
        "versions": _versions(),
    }

    def write_json(path: pathlib.Path) -> None:
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")

    def write_txt(path: pathlib.Path) -> None:
        path.write_text(summary + "\n\n" + table + "\n", encoding="utf8")

    def write_png(path: pathlib.Path) -> None:
        plot(results, path, f"{trf.name}: {len(data.texts)} texts, {len(data.label_names)} labels")

    write_outputs(
        options.out, {RESULTS_JSON: write_json, RESULTS_TXT: write_txt, RESULTS_PNG: write_png}
    )
    print(summary)
    print()
    print(table)
    print()
    names = (RESULTS_JSON, RESULTS_PNG, RESULTS_TXT)
    written = ", ".join(str(options.out / name) for name in names)
    print(f"wrote {written}")
    return report
