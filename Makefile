# The two commands: `make demo` and `make test`. Both build their virtual
# environments when missing. torch is installed pinned first: a bare `torch`
# requirement would pull a CUDA build of several GB.
PYTHON ?= python3.11
VENV := .venv
VENV9 := .venv-thinc9
VENVC := .venv-curated
TOOLS := .venv-tools
PY := $(VENV)/bin/python
PY9 := $(VENV9)/bin/python
TORCH_PIN := torch==2.13.0
VENVD := .venv-docs
PYD := $(VENVD)/bin/python
# An editable install that mypy can follow. setuptools' editable install (its default
# mode) is an import hook: Python follows it, mypy does not, and code outside the repo
# would see Any for every layer. A .pth file naming the checkout gives mypy the path
# (tests/test_mypy_installed.py checks it); no deprecated editable mode is needed.
CHECKOUT_PTH = echo "$(CURDIR)" > "$$($(1) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/ttl_checkout.pth"
# the package's install inputs: a change to any of them rebuilds the compiled kernels
PKG_INPUTS := pyproject.toml setup.py $(wildcard thinc_trf_layers/backends/_kernels.pyx thinc_trf_layers/backends/_*.h)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo docs-install lint test test-core test-thinc9 mypy typing bench clean test-pythons gpu-wheels test-gpu

$(VENV)/.installed: $(PKG_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(call CHECKOUT_PTH,$(PY))
	touch $@

# spacy-curated-transformers 0.3.1 trains only with NumPy < 2.4: its own tests
# (tests/integration/test_peer_suites.py) run here, on NumPy 2.3 and then every package of
# $(VENV) (a .pth file adds its site-packages after this one's: nothing else is installed).
$(VENVC)/.installed: $(VENV)/.installed
	test -x $(VENVC)/bin/python || $(PYTHON) -m venv $(VENVC)
	$(VENVC)/bin/python -m pip install --quiet "numpy<2.4"
	echo "import site; site.addsitedir('$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")')" \
		> "$$($(VENVC)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/ttl_venv.pth"
	$(VENVC)/bin/python -c "import numpy, spacy_curated_transformers, thinc_trf_layers; assert numpy.__version__ < '2.4', numpy.__version__"
	touch $@

# Thinc 9.1 without spaCy: the core layers must work there too.
$(VENV9)/.installed: $(PKG_INPUTS)
	test -x $(PY9) || $(PYTHON) -m venv $(VENV9)
	$(PY9) -m pip install --quiet --upgrade pip
	$(PY9) -m pip install --quiet "thinc>=9.1,<9.2" -e ".[test]"
	$(call CHECKOUT_PTH,$(PY9))
	touch $@

# The docs run as a reader runs them: in a venv made by the install lines they give
# (pip install ".[...]", which builds a wheel of the checkout and installs it), not from
# the checkout; tests/doc_snippets.py runs their blocks with $(PYD). The requirements are
# installed once; docs-install puts the current tree's wheel in at every test run.
$(VENVD)/.installed: pyproject.toml
	test -x $(PYD) || $(PYTHON) -m venv $(VENVD)
	$(PYD) -m pip install --quiet --upgrade pip
	$(PYD) -m pip install --quiet $(TORCH_PIN)
	$(PYD) -m pip install --quiet ".[spacy,demo,ray,test]" "sentence-transformers<5"
	touch $@

docs-install: $(VENVD)/.installed
	$(PYD) -m pip install --quiet --no-deps --force-reinstall .

demo: $(VENV)/.installed
	$(PY) -m thinc_trf_layers compare --out out/demo

test: lint test-core test-thinc9 mypy typing

# the package as black formats it, at the line length of pyproject.toml
lint: $(VENV)/.installed
	$(PY) -m black --check --quiet thinc_trf_layers

test-core: $(VENV)/.installed $(VENVC)/.installed docs-install
	TTL_DOCS_PYTHON=$(CURDIR)/$(PYD) $(PY) -m pytest -q --ignore=tests/test_typing.py

test-thinc9: $(VENV9)/.installed
	$(PY9) -c "import thinc, sys; assert thinc.__version__.startswith('9.1'), thinc.__version__; print('thinc', thinc.__version__)"
	$(PY9) -m pytest -q --ignore=tests/integration --ignore=tests/test_typing.py

mypy: $(VENV)/.installed $(VENV9)/.installed
	$(PY) -m mypy thinc_trf_layers
	$(PY9) -m mypy thinc_trf_layers --exclude 'thinc_trf_layers/spacy/'

typing: $(VENV)/.installed
	$(PY) -m pytest -q tests/test_typing.py

# The core suite on Python 3.9-3.13 (those found here), each from a wheel built from the
# sdist, with the test extra only: scripts/test_pythons.py. Uses neither .venv.
$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip build
	touch $@

test-pythons: $(TOOLS)/.installed
	$(TOOLS)/bin/python scripts/test_pythons.py

# GPU checks for a machine with an NVIDIA GPU, Python 3.12 and CuPy but no network:
# gpu-wheels (run where the package registries are) fills gpu-wheels/ with our cp312
# wheel and its requirements; test-gpu (on the GPU machine) installs from that folder
# into .venv-gpu, runs the gpu tests and the CupyOps pooling benchmark, and fails at once
# if no GPU is visible. Both are scripts in scripts/; neither uses .venv.
gpu-wheels:
	scripts/gpu_wheels.sh

test-gpu:
	scripts/test_gpu.sh

bench: $(VENV)/.installed
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(VENV9) $(VENVC) $(VENVD) $(TOOLS) .venv-gpu .mypy_cache .pytest_cache .hypothesis build
	rm -f thinc_trf_layers/backends/_kernels.c thinc_trf_layers/backends/_kernels.*.so
