"""mnist-cnn: train, understand and use a convolutional network on MNIST digits.

The public API is imported lazily, so ``import mnist_cnn`` is instant and does
not start TensorFlow until a function that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# The one place the version is written: pyproject.toml reads it from here.
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
    "train": "mnist_cnn.training",
    "TrainResult": "mnist_cnn.training",
    "evaluate": "mnist_cnn.evaluation",
    "Evaluation": "mnist_cnn.evaluation",
    "predict": "mnist_cnn.prediction",
    "Predictions": "mnist_cnn.prediction",
    "load_model": "mnist_cnn.engines",
    "Classifier": "mnist_cnn.engines",
    "load_classifier": "mnist_cnn.engines",
    "train_run": "mnist_cnn.pipeline",
    "resume_run": "mnist_cnn.pipeline",
    "RunFolder": "mnist_cnn.run_folder",
    "read_pictures": "mnist_cnn.reading",
    "answer_pictures": "mnist_cnn.prediction",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mnist_cnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
