#!/usr/bin/env bash
# make gpu-wheels: on a machine with the package registries, fill gpu-wheels/ with all
# that `make test-gpu` installs on a GPU machine that has CuPy and Python 3.12 but no
# network: our wheel for CPython 3.12 (built here by Python 3.12, compiled kernels
# included) and, as binary wheels for CPython 3.12 on x86-64 Linux, its requirements
# and the test extra's (Thinc and its dependencies, NumPy, pytest, hypothesis, mypy).
# CuPy is not downloaded: the GPU machine has its own, matched to its CUDA.
#
# Environment: GPU_WHEELS (the folder, default gpu-wheels), GPU_PLATFORMS (the wheel
# platforms pip may take, default "manylinux_2_28_x86_64 manylinux2014_x86_64": glibc
# 2.28 or newer on the GPU machine), PYTHON312 (the interpreter that builds our wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GPU_WHEELS:-gpu-wheels}
PLATFORMS=${GPU_PLATFORMS:-manylinux_2_28_x86_64 manylinux2014_x86_64}

find_python312() {
    local exe
    for exe in ${PYTHON312:-} python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12; do
        if [ -n "$exe" ] && "$exe" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            echo "$exe"
            return 0
        fi
    done
    return 1
}
PY312=$(find_python312) || { echo "gpu-wheels: no Python 3.12 found (python3.12 on PATH, pyenv, or set PYTHON312)" >&2; exit 1; }
echo "gpu-wheels: building our cp312 wheel with $PY312"

rm -rf "$OUT"
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY312" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip
"$tmp/venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$OUT" .
wheel=$(ls "$OUT"/thinc_trf_layers-*-cp312-*.whl)
"$tmp/venv/bin/python" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if not any("/backends/_kernels." in n and n.endswith(".so") for n in names):
    sys.exit(f"gpu-wheels: {sys.argv[1]} has no compiled kernels (the C extension did not build)")
EOF

platform_args=()
for p in $PLATFORMS; do platform_args+=(--platform "$p"); done
# linux_x86_64: the tag of our own wheel, which pip must accept to read its requirements
"$tmp/venv/bin/python" -m pip download --quiet --dest "$OUT" --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    "${platform_args[@]}" --platform linux_x86_64 \
    "$wheel[test]"
echo "gpu-wheels: $(ls "$OUT" | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT/"
