"""Measuring a trained model on labelled images, and finding where it fails.

Per-class precision, recall and F1 and the confusion matrix come from
scikit-learn (well tested, and ``zero_division=0`` handles classes that never
occur or are never predicted without warnings). The top-label calibration
error has no multi-class helper there, so it is computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_cnn.prediction import Predictions, predict

EVALUATION_BATCH = 1000  # test images per forward pass (and per progress step)
CALIBRATION_BINS = 15  # equal-width confidence bins, as in Guo et al. (2017)


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean sparse categorical cross-entropy, natural log
    accuracy: float  # fraction of images whose most probable class is the label
    labels: np.ndarray  # (N,) int, the true classes
    predictions: Predictions


@dataclass(frozen=True)
class ClassMetrics:
    """One entry per class, in class order."""

    precision: np.ndarray  # (C,) of the images predicted as the class, the share that were
    recall: np.ndarray  # (C,) of the images of the class, the share found
    f1: np.ndarray  # (C,) harmonic mean of the two
    support: np.ndarray  # (C,) int, test images of the class


@dataclass(frozen=True)
class Calibration:
    """How far the printed confidence is from the real hit rate."""

    bin_edges: np.ndarray  # (B + 1,) in [0, 1]
    bin_confidence: np.ndarray  # (B,) mean confidence in each bin (nan when empty)
    bin_accuracy: np.ndarray  # (B,) accuracy in each bin (nan when empty)
    bin_count: np.ndarray  # (B,) int
    expected_calibration_error: float  # count-weighted mean |accuracy - confidence|


@dataclass(frozen=True)
class Analysis:
    """Everything ``mnist-cnn evaluate`` reports."""

    evaluation: Evaluation
    class_names: tuple[str, ...]
    class_metrics: ClassMetrics
    confusion: np.ndarray  # (C, C) int, rows are true classes, columns predictions
    confused_pairs: list[tuple[int, int, int]]  # (true, predicted, count), most frequent first
    worst_errors: np.ndarray  # indices of wrong answers, most confident first
    calibration: Calibration

    def to_dict(self) -> dict[str, Any]:
        names = self.class_names
        metrics = self.class_metrics
        return {
            "test_loss": self.evaluation.loss,
            "test_accuracy": self.evaluation.accuracy,
            "test_count": len(self.evaluation.labels),
            "errors": len(self.worst_errors),
            "per_class": [
                {
                    "class": names[index],
                    "precision": float(metrics.precision[index]),
                    "recall": float(metrics.recall[index]),
                    "f1": float(metrics.f1[index]),
                    "support": int(metrics.support[index]),
                }
                for index in range(len(names))
            ],
            "confusion_matrix": self.confusion.tolist(),
            "most_confused": [
                {"true": names[true], "predicted": names[guess], "count": count}
                for true, guess, count in self.confused_pairs
            ],
            "worst_errors": [
                {
                    "index": int(index),
                    "true": names[int(self.evaluation.labels[index])],
                    "predicted": names[int(self.evaluation.predictions.classes[index])],
                    "confidence": float(self.evaluation.predictions.confidences[index]),
                }
                for index in self.worst_errors[:25]
            ],
            "calibration": {
                "expected_calibration_error": self.calibration.expected_calibration_error,
                "bins": CALIBRATION_BINS,
                "bin_count": self.calibration.bin_count.tolist(),
                "bin_confidence": _nan_to_none(self.calibration.bin_confidence),
                "bin_accuracy": _nan_to_none(self.calibration.bin_accuracy),
            },
        }


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(label), clipped as Keras clips, so one certain mistake is finite."""
    epsilon = 1e-7
    chosen = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(chosen, epsilon, 1.0 - epsilon))))


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose most probable class is their label.

    The one definition of accuracy outside training (where Keras's "accuracy"
    metric counts): evaluation, export parity and the benchmarks use it.
    Probabilities (N, C), labels (N,) int; NaN for no images.
    """
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def evaluate(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    on_batch: Callable[[], None] | None = None,
) -> Evaluation:
    """Test loss and accuracy of ``model`` on (N, 28, 28) uint8 images.

    The images go through the model ``EVALUATION_BATCH`` at a time, and
    ``on_batch`` (for a progress bar) is called after each such batch.
    """
    labels = np.asarray(labels).astype(np.int64)
    probabilities = []
    # At least one pass, so that no images still give a (0, classes) answer.
    for start in range(0, max(len(images), 1), EVALUATION_BATCH):
        batch = images[start : start + EVALUATION_BATCH]
        probabilities.append(predict(model, batch, batch_size=EVALUATION_BATCH).probabilities)
        if on_batch is not None:
            on_batch()
    predictions = Predictions.from_probabilities(np.concatenate(probabilities))
    return evaluation_from_predictions(predictions, labels)


def evaluation_from_predictions(predictions: Predictions, labels: np.ndarray) -> Evaluation:
    labels = np.asarray(labels).astype(np.int64)
    return Evaluation(
        loss=cross_entropy(predictions.probabilities, labels),
        accuracy=accuracy(predictions.probabilities, labels),
        labels=labels,
        predictions=predictions,
    )


def class_metrics(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> ClassMetrics:
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=np.arange(num_classes), zero_division=0
    )
    return ClassMetrics(precision=precision, recall=recall, f1=f1, support=support)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    return sklearn_confusion_matrix(labels, predicted, labels=np.arange(num_classes))


def most_confused_pairs(confusion: np.ndarray, top: int = 10) -> list[tuple[int, int, int]]:
    """Off-diagonal cells with at least one error, most frequent first (ties by class)."""
    errors = confusion.copy()
    np.fill_diagonal(errors, 0)
    true_classes, predicted_classes = np.nonzero(errors)
    pairs = [
        (int(true), int(guess), int(errors[true, guess]))
        for true, guess in zip(true_classes, predicted_classes, strict=True)
    ]
    pairs.sort(key=lambda pair: (-pair[2], pair[0], pair[1]))
    return pairs[:top]


def worst_errors(labels: np.ndarray, predictions: Predictions) -> np.ndarray:
    """Indices of the wrong answers, the most confident first."""
    wrong = np.flatnonzero(predictions.classes != labels)
    order = np.argsort(-predictions.confidences[wrong], kind="stable")
    return wrong[order]


def calibration(
    confidences: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS
) -> Calibration:
    """Top-label reliability: accuracy against confidence in equal-width bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds confidences in (edges[i], edges[i + 1]]; a confidence of 0 goes to bin 0.
    bin_index = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    count = np.bincount(bin_index, minlength=bins)
    confidence_sum = np.bincount(bin_index, weights=confidences, minlength=bins)
    correct_sum = np.bincount(bin_index, weights=correct.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.where(count > 0, confidence_sum / np.maximum(count, 1), np.nan)
        bin_accuracy = np.where(count > 0, correct_sum / np.maximum(count, 1), np.nan)
    total = max(int(count.sum()), 1)
    gaps = np.abs(np.nan_to_num(bin_accuracy) - np.nan_to_num(mean_confidence))
    return Calibration(
        bin_edges=edges,
        bin_confidence=mean_confidence,
        bin_accuracy=bin_accuracy,
        bin_count=count,
        expected_calibration_error=float(np.sum(count * gaps) / total),
    )


def analyse(evaluation: Evaluation, class_names: tuple[str, ...]) -> Analysis:
    """Per-class metrics, confusions, worst errors and calibration of an evaluation."""
    labels = evaluation.labels
    predictions = evaluation.predictions
    num_classes = len(class_names)
    matrix = confusion_matrix(labels, predictions.classes, num_classes)
    return Analysis(
        evaluation=evaluation,
        class_names=tuple(class_names),
        class_metrics=class_metrics(labels, predictions.classes, num_classes),
        confusion=matrix,
        confused_pairs=most_confused_pairs(matrix),
        worst_errors=worst_errors(labels, predictions),
        calibration=calibration(predictions.confidences, predictions.classes == labels),
    )


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(value) else float(value) for value in values]
