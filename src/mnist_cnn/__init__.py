"""mnist-cnn: train, understand and use a convolutional network on MNIST digits.

The public API is imported lazily, so ``import mnist_cnn`` is instant and does
not start TensorFlow until a function that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "MnistCnnError": "mnist_cnn.errors",
    "TrainConfig": "mnist_cnn.config",
    "PRESETS": "mnist_cnn.config",
    "preset_config": "mnist_cnn.config",
    "Dataset": "mnist_cnn.data",
    "load_mnist": "mnist_cnn.data",
    "to_model_input": "mnist_cnn.preprocess",
    "build_model": "mnist_cnn.models",
    "compile_model": "mnist_cnn.models",
    "average_over_shifts": "mnist_cnn.models",
    "train": "mnist_cnn.train",
    "TrainResult": "mnist_cnn.train",
    "evaluate": "mnist_cnn.evaluate",
    "Evaluation": "mnist_cnn.evaluate",
    "predict": "mnist_cnn.predict",
    "Predictions": "mnist_cnn.predict",
    "load_model": "mnist_cnn.runs",
    "Classifier": "mnist_cnn.classifiers",
    "load_classifier": "mnist_cnn.classifiers",
    "train_run": "mnist_cnn.workflow",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mnist_cnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
