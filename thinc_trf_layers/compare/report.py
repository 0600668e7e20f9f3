"""What a compare run reports: the table, the chart, ``results.json`` and how the files
get into ``--out``.

``write_outputs`` writes every file into a fresh temporary folder first and moves them
into place only when all of them were written; if a move fails, the files already moved
are put back as they were, so ``--out`` ends with all new results or none.
matplotlib is imported when the chart is drawn.
"""
import math
import os
import pathlib
import platform
import shutil
import sys
import tempfile
from typing import Callable, Dict, List, Sequence, Tuple

import numpy

from .training import PoolingResult

#: Writes one file to the path it is given.
WriterT = Callable[[pathlib.Path], None]


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
    try:
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
        lowest = min(
            (min(r.accuracy - r.accuracy_std, r.macro_f1 - r.macro_f1_std) for r in results),
            default=0.0,
        )
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
        ax2.set_title("head forward + backward")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(str(path), dpi=110, metadata={"Software": None})
    finally:
        plt.close(fig)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_outputs(out: pathlib.Path, files: Dict[str, WriterT]) -> None:
    """Write every file into a temporary folder, then move them all into ``out``.

    ``out`` missing: the temporary folder is made beside it (its parents created) and
    renamed to ``out`` in one step; it gets the mode a new folder gets (0777 less the
    umask), not ``mkdtemp``'s 0700. ``out`` existing: the temporary folder is made
    inside it, and each file replaces its namesake; if a replacement fails (or is
    interrupted), the files already replaced get their previous versions back. The
    temporary folder is removed in every case, and so are the parents made for a new
    ``out`` if it fails. Raises the ``OSError`` of the failure.
    """
    out = out.absolute()
    exists = out.exists()
    made: List[pathlib.Path] = []  # the parents made here, removed again on failure
    if not exists:
        parent = out.parent
        while not parent.exists():
            made.append(parent)
            parent = parent.parent
        out.parent.mkdir(parents=True, exist_ok=True)
    where = out if exists else out.parent
    try:
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=str(where)))
    except BaseException:
        _remove_empty(made)
        raise
    done = False
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        staged = tmp / "new"
        staged.mkdir()
        for name, write in files.items():
            write(staged / name)
        if not exists:
            os.rename(staged, out)
        else:
            _replace_all(out, staged, tmp / "previous", list(files))
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            _remove_empty(made)


def _remove_empty(folders: List[pathlib.Path]) -> None:
    """Remove the folders (innermost first) that are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def _replace_all(out: pathlib.Path, staged: pathlib.Path, previous: pathlib.Path,
                 names: List[str]) -> None:
    """Move ``staged/<name>`` to ``out/<name>`` for every name, all or none."""
    for name in names:  # refuse before anything moves
        target = out / name
        if target.is_dir() and not target.is_symlink():
            raise IsADirectoryError(21, "is a folder, not a file", str(target))
    previous.mkdir()
    moved_old: List[Tuple[pathlib.Path, pathlib.Path]] = []  # (target, its previous version)
    moved_new: List[pathlib.Path] = []
    try:
        for name in names:
            target = out / name
            if os.path.lexists(target):
                kept = previous / name
                os.rename(target, kept)
                moved_old.append((target, kept))
            os.rename(staged / name, target)
            moved_new.append(target)
    except BaseException:
        for target in reversed(moved_new):
            os.unlink(target)
        for target, kept in reversed(moved_old):
            os.rename(kept, target)
        raise


def versions() -> Dict[str, str]:
    import thinc

    from thinc_trf_layers import __version__

    found = {"python": platform.python_version(), "thinc": thinc.__version__,
             "thinc_trf_layers": __version__, "numpy": numpy.__version__}
    for mod in ("torch", "transformers"):
        module = sys.modules.get(mod)
        if module is not None:
            found[mod] = str(getattr(module, "__version__", "?"))
    return found


__all__ = ["format_table", "plot", "write_outputs", "versions", "WriterT"]
