"""Measuring a trained model on labelled images."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from mnist_cnn.predict import Predictions, predict


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean sparse categorical cross-entropy, natural log
    accuracy: float  # fraction of images whose most probable class is the label
    labels: np.ndarray  # (N,) the true classes
    predictions: Predictions


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(label), clipped as Keras clips, so one certain mistake is finite."""
    epsilon = 1e-7
    chosen = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(chosen, epsilon, 1.0 - epsilon))))


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Test loss and accuracy of ``model`` on (N, 28, 28) uint8 images."""
    labels = np.asarray(labels).astype(np.int64)
    predictions = predict(model, images)
    return Evaluation(
        loss=cross_entropy(predictions.probabilities, labels),
        accuracy=float(np.mean(predictions.classes == labels)),
        labels=labels,
        predictions=predictions,
    )
