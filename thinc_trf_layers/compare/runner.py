"""One compare run: the features once, every pooling trained and scored on every split, the
table printed and results.json/.txt/.png written into ``--out`` (matplotlib imported to draw)."""

import contextlib
import io
import json
import math
import os
import pathlib
import platform
import sys
import time
import uuid
from importlib.util import find_spec
from typing import Any, Dict, List, Sequence

import numpy
import thinc

from thinc_trf_layers import __version__

from .features import extract_features, load_transformer, progress_bar
from .inputs import RESULT_FILES, CompareOptions, InputError, stratified_split
from .training import ms_per_batch, summary, train_and_evaluate


def run(options: CompareOptions) -> Dict[str, Any]:
    """Run a checked ``compare`` (``check_options``); returns the content of results.json.
    ``InputError`` for a model that cannot be loaded or run, or results not written."""
    missing = [m for m in ("torch", "transformers", "matplotlib") if find_spec(m) is None]
    if missing:
        raise InputError(
            f"compare needs {', '.join(missing)}, not installed here; install the 'torch' and "
            "'demo' extras: pip install 'thinc-trf-layers[torch,demo]'."
        )
    o, data = options, options.data
    trf = load_transformer(o.model, o.model_name)
    t0 = time.perf_counter()
    max_length = min(o.max_length, trf.max_length)
    feats = extract_features(
        trf, data.texts, max_length=max_length, batch_size=o.batch_size, progress=not o.quiet
    )
    feature_seconds = time.perf_counter() - t0
    label_index = {name: i for i, name in enumerate(data.label_names)}
    y = [label_index[label] for label in data.labels]
    seeds = [o.seed + r for r in range(o.repeats)]
    splits = [stratified_split(data.labels, o.test_fraction, seed) for seed in seeds]
    n_train, n_test = len(splits[0][0]), len(splits[0][1])
    runs: Dict[str, List[Any]] = {name: [] for name in o.poolings}
    epochs = len(seeds) * len(o.poolings) * o.epochs
    with progress_bar(total=epochs, desc="training", unit="epoch", enabled=not o.quiet) as bar:
        for seed, split in zip(seeds, splits):
            for name in o.poolings:
                result = train_and_evaluate(
                    name,
                    feats,
                    y,
                    split,
                    data.label_names,
                    seed=seed,
                    epochs=o.epochs,
                    batch_size=o.batch_size,
                    learn_rate=o.learn_rate,
                    progress=bar,
                )
                result.model = None  # the report needs the numbers only
                runs[name].append(result)
    results = [summary(name, runs[name]) for name in o.poolings]
    ms = [ms_per_batch(runs[name]) for name in o.poolings]
    data_name = o.data_arg if o.data_arg is not None else "built-in example"
    splits_text = (
        f"seed {o.seed})"
        if len(seeds) == 1
        else f"{len(seeds)} splits, seeds {seeds[0]}..{seeds[-1]}; mean ± sd)"
    )
    text = (
        f"data:  {len(data.texts)} texts ({data_name}), {len(data.label_names)} labels, "
        f"{n_train} train / {n_test} test (stratified, {splits_text}\n"
        f"model: {trf.name}, {feats.n_layers} hidden layers incl. embeddings, width "
        f"{feats.width}, max {max_length} wordpieces ({feats.n_truncated} texts truncated)\n"
        f"heads: pooling + Softmax, {o.epochs} epoch{'s' if o.epochs != 1 else ''}, "
        f"batch size {o.batch_size}, Adam {o.learn_rate:g}\n\n{format_table(results, ms)}"
    )
    report: Dict[str, Any] = {
        "command": "compare",
        "config": {
            "data": data_name,
            "model": trf.name if o.model_name else str(o.model),
            **{
                key: getattr(o, key)
                for key in ("poolings", "seed", "repeats", "epochs", "batch_size", "test_fraction")
            },
            "max_length": max_length,
            "learn_rate": o.learn_rate,
        },
        "data": {
            "n_texts": len(data.texts),
            "labels": data.label_names,
            "label_counts": data.label_counts,
            "n_train": n_train,
            "n_test": n_test,
            "n_truncated": feats.n_truncated,
        },
        "model": {"name": trf.name, "n_layers": feats.n_layers, "width": feats.width},
        "results": results,  # deterministic for a given seed, data, model and versions
        "timings": {  # wall-clock: they vary from run to run
            "feature_extraction_seconds": feature_seconds,
            "poolings": {
                name: {
                    "forward_backward_ms_per_batch": t,
                    "train_seconds": sum(r.train_seconds for r in runs[name]),
                }
                for name, t in zip(o.poolings, ms)
            },
        },
        "versions": versions(),
    }
    title = f"{trf.name}: {len(data.texts)} texts, {len(data.label_names)} labels"
    files = {
        "results.json": (json.dumps(report, indent=2) + "\n").encode("utf8"),
        "results.txt": (text + "\n").encode("utf8"),
        "results.png": plot(results, ms, title),
    }
    assert set(files) == set(RESULT_FILES)
    try:
        write_results(o.out, files)
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise InputError(
            f"--out {o.out}: could not write the results: {err.strerror or err}{where}; {o.out} "
            "was left as it was."
        ) from None
    print(f"{text}\n")
    print(f"wrote {', '.join(str(o.out / name) for name in sorted(files))}")
    return report


def write_results(out: pathlib.Path, files: Dict[str, bytes]) -> None:
    """Each file whole or not at all (docs/cli.md, Atomic): temporary files in ``out``, replaced
    onto their names once all are written; a failure leaves no temporary file or new folder."""
    out = out.absolute()
    made = [folder for folder in (out, *out.parents) if not folder.exists()]
    out.mkdir(parents=True, exist_ok=True)
    temps: List[pathlib.Path] = []
    try:
        for name, content in files.items():
            temps.append(out / f".{name}.{uuid.uuid4().hex[:8]}.tmp")
            fd = os.open(temps[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
            with os.fdopen(fd, "wb") as f:
                f.write(content)
        for name in files:  # refuse before anything is replaced
            if (out / name).is_dir() and not (out / name).is_symlink():
                raise IsADirectoryError(21, "is a folder, not a file", str(out / name))
        for temp, name in zip(temps, files):
            os.replace(temp, out / name)
    except BaseException:
        for path in temps:
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in made:  # innermost first; only while still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def format_table(results: Sequence[Dict[str, Any]], ms: Sequence[float]) -> str:
    header = ["pooling", "accuracy", "macro F1", "fwd+bwd ms/batch"]
    header += ["params (pooling)", "params (total)"]
    spread = any(len(r["runs"]) > 1 for r in results)

    def score(r: Dict[str, Any], key: str) -> str:
        return f"{r[key]:.3f} ± {r[key + '_std']:.3f}" if spread else f"{r[key]:.3f}"

    rows = [
        [r["pooling"], score(r, "accuracy"), score(r, "macro_f1"), f"{t:.2f}"]
        + [f"{r[key]:,}" for key in ("params_pooling", "params_total")]
        for r, t in zip(results, ms)
    ]
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(header)]
    lines = [
        [c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))]
        for row in [header, *rows]
    ]
    lines.insert(1, ["-" * w for w in widths])
    return "\n".join("  ".join(line).rstrip() for line in lines)


def plot(results: Sequence[Dict[str, Any]], ms: Sequence[float], title: str) -> bytes:
    """Two bar charts as PNG: the scores (with their standard deviation), the time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["pooling"] for r in results]
    x = numpy.arange(len(names))
    spread = any(len(r["runs"]) > 1 for r in results)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8.0, 0.9 * len(names) + 5.0), 4.2))
    try:
        for key, label, shift in (("accuracy", "accuracy", -0.2), ("macro_f1", "macro F1", 0.2)):
            scores = [r[key] for r in results]
            err = [r[key + "_std"] for r in results] if spread else None
            bars = ax1.bar(x + shift, scores, 0.4, capsize=2, label=label, yerr=err)
            ax1.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        # zoom in on the scores (the axis label says where it starts): on a 0..1 axis the
        # differences between poolings are often too small to see
        lowest = min(r[k] - r[k + "_std"] for r in results for k in ("accuracy", "macro_f1"))
        bottom = max(0.0, math.floor((lowest - 0.05) * 10.0) / 10.0)
        ax1.set_ylim(bottom, 1.0 + 0.18 * (1.0 - bottom))
        ylabel = "held-out score"
        if spread:
            ylabel += f" (mean ± sd, {len(results[0]['runs'])} splits)"
        ax1.set_ylabel(ylabel if bottom == 0.0 else f"{ylabel}; axis from {bottom:.1f}")
        ax1.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
        ax1.set_title("quality")
        bars = ax2.bar(x, list(ms), 0.6, color="tab:gray")
        ax2.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        ax2.set_ylabel("ms per batch (median)")
        ax2.set_title("head forward + backward")
        for ax in (ax1, ax2):
            ax.set_xticks(x, names, rotation=30, ha="right")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        return png.getvalue()
    finally:
        plt.close(fig)


def versions() -> Dict[str, str]:
    found = {
        "python": platform.python_version(),
        "thinc": thinc.__version__,
        "thinc_trf_layers": __version__,
        "numpy": numpy.__version__,
    }
    for name in ("torch", "transformers"):
        if name in sys.modules:
            found[name] = str(getattr(sys.modules[name], "__version__", "?"))
    return found
