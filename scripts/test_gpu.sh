#!/usr/bin/env bash
# make test-gpu: the GPU checks, for a machine with an NVIDIA GPU, Python 3.12 and CuPy
# but no Thinc and no network. Run `make gpu-wheels` first on a machine with the package
# registries and bring its gpu-wheels/ folder along (with this checkout).
#
# 1. Fails at once, saying why, unless nvidia-smi lists a GPU and CuPy under Python 3.12
#    sees it.
# 2. A venv (.venv-gpu, with --system-site-packages so that the machine's CuPy and NumPy
#    are used) with our cp312 wheel and its requirements plus pytest and hypothesis,
#    installed from gpu-wheels/ only (pip --no-index).
# 3. Every test marked `gpu` (the CupyOps parameter of the `ops` fixtures, gated on
#    thinc.util.has_cupy_gpu), run against the installed wheel from a scratch directory;
#    scripts/ttl_installed_guard.py stops the run if the package is not the installed
#    one or Thinc sees no GPU (TTL_REQUIRE_GPU=1), and zero tests run is a failure.
#    Hypothesis runs the `ttl-quick` profile (10 examples per property).
# 4. The pooling benchmark on CupyOps: python -m benchmarks --ops cupy --quick pooling.
#
# About 8 minutes at most: pytest is stopped after GPU_TEST_TIMEOUT seconds (default
# 300), the benchmark after GPU_BENCH_TIMEOUT (default 120). Environment: GPU_PYTHON
# (default python3.12), GPU_WHEELS (default gpu-wheels), GPU_VENV (default .venv-gpu),
# GPU_PYTEST_ARGS (extra pytest arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${GPU_PYTHON:-python3.12}
WHEELS=${GPU_WHEELS:-gpu-wheels}
VENV=${GPU_VENV:-.venv-gpu}
start=$SECONDS

fail() {
    echo "test-gpu: FAILED: $*" >&2
    exit 1
}
step() {
    echo "== test-gpu [$((SECONDS - start)) s] $*"
}

step "a GPU"
command -v nvidia-smi >/dev/null 2>&1 \
    || fail "no GPU visible: nvidia-smi is not installed (no NVIDIA driver); this check needs an NVIDIA GPU"
gpus=$(nvidia-smi -L 2>&1) || fail "no GPU visible: nvidia-smi -L failed: $gpus"
grep -q '^GPU ' <<<"$gpus" || fail "no GPU visible: nvidia-smi -L lists none: $gpus"
echo "$gpus"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null \
    || fail "$PY is not a working Python 3.12 (set GPU_PYTHON)"
"$PY" - <<'EOF' || fail "CuPy under $PY does not import or sees no GPU (see above)"
import cupy
n = cupy.cuda.runtime.getDeviceCount()
assert n > 0, "cupy.cuda.runtime.getDeviceCount() is 0"
print(f"CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, {n} GPU(s)")
EOF

step "install from $WHEELS/ (no network)"
wheel=$(ls "$WHEELS"/thinc_trf_layers-*-cp312-*.whl 2>/dev/null | head -1) || true
[ -n "$wheel" ] || fail "no cp312 wheel of ours in $WHEELS/: run 'make gpu-wheels' on a machine with the package registries and copy $WHEELS/ here"
rm -rf "$VENV"
"$PY" -m venv --system-site-packages "$VENV"
VPY=$(cd "$VENV" && pwd)/bin/python
"$VPY" -m pip install --quiet --no-index --find-links "$WHEELS" "$wheel" pytest hypothesis \
    || fail "pip could not install from $WHEELS/ alone (is it from 'make gpu-wheels' for this checkout?)"

step "the gpu tests"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
set +e
(cd "$scratch" && PYTHONPATH="$ROOT/scripts" TTL_REQUIRE_GPU=1 HYPOTHESIS_PROFILE=ttl-quick \
    timeout "${GPU_TEST_TIMEOUT:-300}" "$VPY" -m pytest "$ROOT/tests" \
    --rootdir "$ROOT" -c "$ROOT/setup.cfg" -p no:cacheprovider -p ttl_installed_guard \
    --ignore="$ROOT/tests/integration" --ignore="$ROOT/tests/test_typing.py" \
    -m gpu -q -rs ${GPU_PYTEST_ARGS:-})
rc=$?
set -e
case $rc in
    0) ;;
    5) fail "no gpu test was collected" ;;
    124) fail "the gpu tests ran past ${GPU_TEST_TIMEOUT:-300} s" ;;
    *) fail "the gpu tests failed (pytest exit status $rc)" ;;
esac

step "the pooling benchmark on CupyOps"
# -P and a PYTHONPATH holding only benchmarks/: the package comes from the venv
ln -s "$ROOT/benchmarks" "$scratch/benchmarks"
PYTHONPATH="$scratch" timeout "${GPU_BENCH_TIMEOUT:-120}" "$VPY" -P -m benchmarks --ops cupy --quick pooling \
    || fail "the CupyOps pooling benchmark failed or ran past ${GPU_BENCH_TIMEOUT:-120} s"

step "passed"
