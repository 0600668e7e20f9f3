"""The core suite on every Python we claim, against the built wheel (``make test-pythons``).

1. Copy the checkout's files (tracked, and untracked but not ignored) to a snapshot and
   build an sdist from it (``python -m build --sdist``): the wheels below come from what a
   user downloads, and the tests and the package from the same moment of the tree.
2. For each of Python 3.9 to 3.13 found on the machine (``pythonX.Y`` on PATH, else a
   pyenv install; set ``TTL_PYTHONS="3.10 3.12"`` to pick some): a fresh venv, a wheel
   built from the sdist by that interpreter, which must hold the compiled kernels (the
   extension is optional, so a failed compile would otherwise pass unnoticed), the wheel
   installed with its ``test`` extra (no torch, no spaCy), then
   ``pytest tests --ignore=tests/integration --ignore=tests/test_typing.py`` on the
   snapshot's tests, run from a scratch directory so that ``import thinc_trf_layers``
   finds the installed wheel and not the sources (pytest puts only ``tests/`` on
   ``sys.path``); the plugin ``scripts/ttl_installed_guard.py`` imports the package first
   and stops the run if it does not come from the venv or its compiled kernels do not
   load.
3. A table of the results and times; the exit status is 1 if any interpreter failed.

Interpreters that are missing are skipped with a message. Everything lands in
``build/test-pythons/`` (git-ignored), recreated on each run. Environment:
``TTL_PYTHONS`` (versions to run), ``TTL_PYTEST_ARGS`` (extra pytest arguments, e.g.
``-k pooling``), ``HYPOTHESIS_PROFILE`` (passed through: ``ttl-quick`` runs 10 examples
per property instead of 40).
"""
import glob
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "test-pythons"
VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
SNAPSHOT = WORK / "src"
PYTEST_ARGS = [
    "-q", "-p", "no:cacheprovider", "-p", "ttl_installed_guard",
    f"--ignore={SNAPSHOT / 'tests' / 'integration'}",
    f"--ignore={SNAPSHOT / 'tests' / 'test_typing.py'}",
]


def log(message: str) -> None:
    print(message, flush=True)


def run(cmd: List[str], **kwargs: object) -> None:
    log("  $ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)  # type: ignore[call-overload]


def find_python(version: str) -> Optional[str]:
    """``pythonX.Y`` on PATH if it runs (a pyenv shim for a version that is not active
    does not), else ``$PYENV_ROOT/versions/X.Y.*/bin/pythonX.Y``."""
    candidates = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    pattern = f"{pyenv_root}/versions/{version}.*/bin/python{version}"
    candidates += sorted(glob.glob(pattern), reverse=True)
    for exe in candidates:
        probe = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return exe
    return None


def snapshot() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():  # listed but deleted in the working tree: skip
            (SNAPSHOT / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, SNAPSHOT / name)


def build_sdist() -> Path:
    dist = WORK / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--outdir", dist, SNAPSHOT])
    (sdist,) = dist.glob("*.tar.gz")
    return sdist


def test_one(version: str, exe: str, sdist: Path) -> None:
    venv = WORK / f"py{version}"
    py = venv / "bin" / "python"
    run([exe, "-m", "venv", venv])
    run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    wheels = WORK / "wheels" / version
    run([py, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, sdist])
    (wheel,) = wheels.glob("thinc_trf_layers-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    compiled = [n for n in names if "/backends/_kernels." in n and n.endswith(".so")]
    if not compiled:
        raise RuntimeError(f"{wheel.name} has no compiled kernels (the C extension did not build)")
    log(f"  {wheel.name}: {compiled[0]}")
    run([py, "-m", "pip", "install", "--quiet", f"{wheel}[test]"])
    scratch = WORK / f"run{version}"
    scratch.mkdir()
    extra = os.environ.get("TTL_PYTEST_ARGS", "").split()
    env = dict(os.environ, PYTHONPATH=str(SNAPSHOT / "scripts"))  # for ttl_installed_guard
    run(
        [py, "-m", "pytest", SNAPSHOT / "tests", "--rootdir", SNAPSHOT,
         "-c", SNAPSHOT / "setup.cfg", *PYTEST_ARGS, *extra],
        cwd=scratch, env=env,
    )


def main() -> int:
    wanted = os.environ.get("TTL_PYTHONS", "").split() or VERSIONS
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    start = time.perf_counter()
    log("== snapshot of the checkout, sdist")
    snapshot()
    sdist = build_sdist()
    results: List[Tuple[str, str, float]] = []
    for version in wanted:
        exe = find_python(version)
        if exe is None:
            log(f"== Python {version}: SKIPPED, no python{version} on PATH or in pyenv")
            results.append((version, "skipped (not found)", 0.0))
            continue
        log(f"== Python {version}: {exe}")
        t0 = time.perf_counter()
        try:
            test_one(version, exe, sdist)
            status = "passed"
        except (subprocess.CalledProcessError, RuntimeError, ValueError) as err:
            log(f"  FAILED: {err}")
            status = "FAILED"
        results.append((version, status, time.perf_counter() - t0))
    log(f"\n== test-pythons ({time.perf_counter() - start:.0f} s in all)")
    for version, status, seconds in results:
        log(f"  Python {version:<5} {status:<20} {seconds:6.0f} s")
    failed = [v for v, s, _ in results if s == "FAILED"]
    if all(s.startswith("skipped") for _, s, _ in results):
        log("no interpreter was found: nothing was tested")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
