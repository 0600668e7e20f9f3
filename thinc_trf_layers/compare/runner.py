"""One compare run, step by step: load the transformer, extract the features once, train
and score every pooling on every split, then write the table, chart and results."""
import importlib.util
import json
import pathlib
import time
from typing import Any, Dict, List

from .errors import InputError
from .features import extract_features, load_transformer, progress_bar
from .options import RESULT_FILES, RESULTS_JSON, RESULTS_PNG, RESULTS_TXT, CompareOptions
from .report import WriterT, format_table, plot, versions, write_outputs
from .data import stratified_split
from .training import (
    PoolingResult,
    Split,
    check_poolings_available,
    pooling_spec,
    train_and_evaluate,
)


def check_dependencies() -> None:
    """torch, transformers and matplotlib must be importable (``InputError`` if not)."""
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
    """Run a checked ``compare`` (see ``check_options``); returns the content of results.json.

    Raises ``InputError`` for a model that cannot be loaded or run, and for results that
    cannot be written (``--out`` is then as it was).
    """
    check_poolings_available(options.poolings)
    check_dependencies()
    trf = load_transformer(options.model, options.model_name)
    data = options.data
    progress = not options.quiet
    t0 = time.perf_counter()
    max_length = min(options.max_length, trf.max_length)
    feats = extract_features(
        trf, data.texts, max_length=max_length, batch_size=options.batch_size, progress=progress
    )
    feature_seconds = time.perf_counter() - t0
    label_index = {name: i for i, name in enumerate(data.label_names)}
    y = [label_index[label] for label in data.labels]
    seeds = [options.seed + r for r in range(options.repeats)]
    splits = [Split(*stratified_split(data.labels, options.test_fraction, seed)) for seed in seeds]
    n_train, n_test = len(splits[0].train), len(splits[0].test)
    specs = [pooling_spec(name) for name in options.poolings]
    bar = progress_bar(
        total=len(seeds) * len(specs) * options.epochs, desc="training", unit="epoch",
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
                run_result.model = None  # the table needs the numbers only
                result.runs.append(run_result)
    finally:
        if bar is not None:
            bar.close()
    table = format_table(results)
    data_name = options.data_arg if options.data_arg is not None else "built-in example"
    splits_text = (
        f"seed {options.seed})" if len(seeds) == 1
        else f"{len(seeds)} splits, seeds {seeds[0]}..{seeds[-1]}; mean ± sd)"
    )
    summary = (
        f"data:  {len(data.texts)} texts ({data_name}), {len(data.label_names)} labels, "
        f"{n_train} train / {n_test} test (stratified, {splits_text}\n"
        f"model: {trf.name}, {feats.n_layers} hidden layers incl. embeddings, width "
        f"{feats.width}, max {max_length} wordpieces ({feats.n_truncated} texts truncated)\n"
        f"heads: pooling + Softmax, {options.epochs} epoch{'s' if options.epochs != 1 else ''}, "
        f"batch size {options.batch_size}, Adam {options.learn_rate:g}"
    )
    report: Dict[str, Any] = {
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
        "results": [_result_entry(r) for r in results],
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
        "versions": versions(),
    }

    def write_json(path: pathlib.Path) -> None:
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")

    def write_txt(path: pathlib.Path) -> None:
        path.write_text(summary + "\n\n" + table + "\n", encoding="utf8")

    def write_png(path: pathlib.Path) -> None:
        plot(results, path, f"{trf.name}: {len(data.texts)} texts, {len(data.label_names)} labels")

    writers: Dict[str, WriterT] = {RESULTS_JSON: write_json, RESULTS_TXT: write_txt,
                                   RESULTS_PNG: write_png}
    assert set(writers) == set(RESULT_FILES)
    try:
        write_outputs(options.out, writers)
    except OSError as err:  # --out is as it was (see write_outputs)
        what = err.strerror or str(err)
        where = f" ({err.filename})" if err.filename else ""
        raise InputError(
            f"--out {options.out}: could not write the results: {what}{where}; "
            f"{options.out} was left as it was."
        ) from None
    print(summary)
    print()
    print(table)
    print()
    written = ", ".join(str(options.out / name) for name in sorted(RESULT_FILES))
    print(f"wrote {written}")
    return report


def _result_entry(r: PoolingResult) -> Dict[str, Any]:
    runs: List[Dict[str, Any]] = [
        {
            "seed": run.seed,
            "accuracy": run.accuracy,
            "macro_f1": run.macro_f1,
            "final_train_loss": run.final_train_loss,
        }
        for run in r.runs
    ]
    return {
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
        "runs": runs,
    }


__all__ = ["run", "check_dependencies"]
