"""The core's steps of earlier commits and of the working tree, side by side in one process
(``python -m benchmarks.ab_core REV [REV ...] [--calls N | --batched]``).

On a shared machine a ratio moves by 0.3x from one run of ``python -m benchmarks core``
to the next, so a change is measured here against the commits it is compared with in
the same process. Each REV's ``thinc_trf_layers`` is taken from git (``git archive``)
into a temporary folder under another name (its imports of itself by absolute name
rewritten to that name; its registry entries replace ours in this process, which
builds every model by calling the functions). Then, by default, every version's step
is timed a few calls at a time, the versions in turn, over and over: a drift in the
machine's memory bandwidth reaches every version alike, and two runs agree within
0.02x. Its roofline is one copy timed after the other steps, about 1.25x slower than
``benchmarks core``'s warm loop of copies, so its ratios are lower than that command's;
compare versions with it, goals with ``--batched``, which times as ``benchmarks core``
does (a roofline, then batches of calls of one step, the versions in turn in each of
``--rounds`` rounds).

A REV whose compiled kernels have the same source as the working tree's gets the
working tree's build of them; any other REV runs its NumPy code, which the table says.
"""
import argparse
import gc
import importlib
import io
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy

from .bench_core import make_docs
from .common import fwd_bwd, roofline, single_thread, timeit

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNEL_SOURCES = ["_kernels.pyx", "_kernels.h", "_segments_body.h"]


def _git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True).stdout


def _same_kernels(rev: str) -> bool:
    for name in KERNEL_SOURCES:
        path = ROOT / "thinc_trf_layers" / "backends" / name
        try:
            old = _git("show", f"{rev}:thinc_trf_layers/backends/{name}")
        except subprocess.CalledProcessError:
            return False
        if not path.exists() or path.read_bytes() != old:
            return False
    return True


def load_rev(rev: str, into: pathlib.Path) -> Tuple[Any, str]:
    """``thinc_trf_layers`` as of ``rev``, imported as ``ttl_<rev>``, and a note on its kernels."""
    alias = "ttl_" + "".join(c if c.isalnum() else "_" for c in rev)
    safe: Dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(fileobj=io.BytesIO(_git("archive", rev, "thinc_trf_layers"))) as tar:
        tar.extractall(into / "tmp", **safe)
    package = into / alias
    (into / "tmp" / "thinc_trf_layers").rename(package)
    for path in package.rglob("*.py"):  # e.g. import_module("thinc_trf_layers.backends._kernels")
        text = path.read_text(encoding="utf8")
        text = re.sub(r"""(import_module\(["'])thinc_trf_layers\.""", rf"\g<1>{alias}.", text)
        text = re.sub(r"^(\s*)(import|from) thinc_trf_layers\b", rf"\g<1>\g<2> {alias}", text, flags=re.M)
        path.write_text(text, encoding="utf8")
    built = sorted((ROOT / "thinc_trf_layers" / "backends").glob("_kernels.*.so"))
    if not (package / "backends" / "_kernels.pyx").exists():
        note = "has no compiled kernels"
    elif built and _same_kernels(rev):
        shutil.copy(built[0], package / "backends" / built[0].name)
        note = "the working tree's build of its kernels (same source)"
    else:
        note = "its kernels' source differs from the working tree's: runs its NumPy code"
    return importlib.import_module(alias), note


Step = Tuple[str, str, Callable[[], object]]  # version, layer, forward + backward


def interleaved(steps: List[Step], padded: int, calls: int) -> Tuple[Dict[Tuple[str, str], float], str]:
    """Ratios from single calls: every step three times in a row (the last two timed),
    the versions of a layer in turn, ``calls`` times over; medians."""
    src = numpy.ones(padded // 4, dtype="float32")
    dst = numpy.empty_like(src)
    steps = steps + [("", "roofline", lambda: numpy.copyto(dst, src))]
    names = list(dict.fromkeys(name for _, name, _ in steps))
    by_name = {name: [(tag, step) for tag, n, step in steps if n == name] for name in names}
    times: Dict[Tuple[str, str], List[float]] = {(tag, name): [] for tag, name, _ in steps}
    gc.disable()
    try:
        for i in range(calls):
            for name in names:
                group = by_name[name]
                k = i % len(group)  # each version in turn goes first, after another layer
                for tag, step in group[k:] + group[:k]:
                    step()  # the same step just before: its own cache state, as in a loop of it
                    for _ in range(2):
                        start = time.perf_counter()
                        step()
                        times[(tag, name)].append(time.perf_counter() - start)
    finally:
        gc.enable()
    roof = float(numpy.median(times[("", "roofline")]))
    ratios = {key: float(numpy.median(t)) / roof for key, t in times.items() if key[0]}
    return ratios, (
        f"each version's step (and the roofline, one copyto of the padded batch) run three times in a "
        f"row and the last two timed, the versions in turn, {calls} times over; medians, as ratios to "
        f"the roofline's ({roof * 1e3:.3f} ms)"
    )


def batched(steps: List[Step], padded: int, rounds: int) -> Tuple[Dict[Tuple[str, str], float], str]:
    """Ratios as ``benchmarks core`` takes them (a roofline, then batches of calls of one
    step), the steps in turn in each round; medians over the rounds."""
    ratios: Dict[Tuple[str, str], List[float]] = {(tag, name): [] for tag, name, _ in steps}
    roofs: List[float] = []
    for _ in range(rounds):
        for tag, name, step in steps:
            roof = roofline(padded, padded)
            roofs.append(roof)
            ratios[(tag, name)].append(timeit(step) / roof)
    return {key: float(numpy.median(r)) for key, r in ratios.items()}, (
        f"as in benchmarks core: each ratio to the roofline timed just before it; medians of {rounds} "
        f"rounds (roofline median {float(numpy.median(roofs)) * 1e3:.3f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_core", description=__doc__)
    parser.add_argument("revs", nargs="+", help="commits to compare with the working tree")
    parser.add_argument("--calls", type=int, default=300, help="turns of the versions (default 300)")
    parser.add_argument("--batched", action="store_true", help="time as benchmarks core does")
    parser.add_argument("--rounds", type=int, default=7, help="rounds with --batched (default 7)")
    args = parser.parse_args()
    single_thread()
    import thinc_trf_layers as now

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ab_core_"))
    sys.path.insert(0, str(tmp))
    versions: Dict[str, Any] = {}
    notes: Dict[str, str] = {}
    for rev in args.revs:
        versions[rev], notes[rev] = load_rev(rev, tmp)
    versions["working tree"], notes["working tree"] = now, "as built"
    base = make_docs(32, 128, 768)
    padded = sum(int(d.tensors[0].size) for d in base) * 4
    steps: List[Step] = []
    for tag, lib in versions.items():
        docs = [lib.TransformerOutput(tensors=d.tensors, lengths=d.lengths) for d in base]
        steps.append((tag, "cls_pool()", fwd_bwd(lib.cls_pool(), docs)))
        for name in ("reduce_mean", "reduce_max", "reduce_mean_max"):
            if hasattr(lib, name) and hasattr(lib, "trf_pool"):
                steps.append((tag, f"trf_pool({name})", fwd_bwd(lib.trf_pool(getattr(lib, name)()), docs)))
    if args.batched:
        ratios, how = batched(steps, padded, args.rounds)
    else:
        ratios, how = interleaved(steps, padded, args.calls)
    print(f"\n32 docs x 1-3 x 128 x 768, forward + backward: {how}\n")
    for tag in versions:
        print(f"- {tag}: {notes[tag]}")
    names = list(dict.fromkeys(name for _, name, _ in steps))
    print(f"\n| {'layer':<26} | " + " | ".join(f"{tag:>14}" for tag in versions))
    print(f"|{'-' * 28}|" + "|".join("-" * 16 for _ in versions) + "|")
    for name in names:
        cells = [
            f"{ratios[(tag, name)]:>13.2f}x" if (tag, name) in ratios else f"{'':>14}"
            for tag in versions
        ]
        print(f"| {name:<26} | " + " | ".join(cells))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
