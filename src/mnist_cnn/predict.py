"""Running a trained model on images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mnist_cnn.preprocess import to_model_input

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Predictions:
    """Per image: the chosen class, its probability, and all class probabilities."""

    probabilities: np.ndarray  # (N, classes) float32, rows sum to 1
    classes: np.ndarray  # (N,) int, the argmax
    confidences: np.ndarray  # (N,) float32, the probability of the chosen class

    def top(self, index: int, count: int = 3) -> list[tuple[int, float]]:
        """The ``count`` most probable classes of image ``index``, best first."""
        order = np.argsort(self.probabilities[index])[::-1][:count]
        return [(int(cls), float(self.probabilities[index, cls])) for cls in order]


def predict_probabilities(
    model: keras.Model, model_inputs: np.ndarray, batch_size: int = 1000
) -> np.ndarray:
    """(N, 28, 28, 1) float32 in [0, 1] -> (N, classes) float32 probabilities.

    Calls the model directly on batches: ``model.predict`` builds a data
    pipeline per call, which costs milliseconds for a single image.
    """
    batches = [
        np.asarray(model(model_inputs[start : start + batch_size], training=False))
        for start in range(0, len(model_inputs), batch_size)
    ]
    if not batches:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.concatenate(batches).astype(np.float32)


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> Predictions:
    """Classify (N, 28, 28) uint8 images in [0, 255]."""
    probabilities = predict_probabilities(model, to_model_input(images), batch_size)
    classes = probabilities.argmax(axis=1)
    return Predictions(
        probabilities=probabilities,
        classes=classes,
        confidences=probabilities[np.arange(len(classes)), classes],
    )
