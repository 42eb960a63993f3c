"""Knowing when a picture is not a digit.

A classifier trained only on digits gives every picture a digit, often at
99% (a dot is a confident 0, a letter A a confident 4). A ``DigitDetector``
gives each prepared image a ``digit_score`` (higher is more digit-like) and
refuses those under its threshold. Two kinds:

* ``learned``: a small network of its own, trained to tell MNIST digits
  (and MNIST digits redrawn with the page's pens) from drawn non-digits
  (``non_digits.TRAINING``), stored in the run folder by
  ``mnist-cnn not-a-digit RUN``. The score is its probability of "a digit"
  times the classifier's largest probability: that product separated
  held-out non-digits best (AUROC 0.991 against 0.982 for the network alone
  and 0.933 for the confidence alone, benchmarks/results/not_a_digit.json).
  Its threshold is chosen on the validation split (the last 10k training
  images) and validation non-digits.
  The same network trained without a classifier ships in the package
  (``PACKAGED_DETECTOR``, score P(a digit) alone, ``uses_confidence`` false)
  for runs of the digits 0-9 without their own: AUROC 0.982, 90.1% of held-out
  non-digits refused and 96.3% of test digits kept
  (benchmarks/results/not_a_digit-packaged.json).
* ``confidence``: the classifier's own largest probability, for models of other
  classes without a learned detector; it needs nothing the run lacks. Its threshold is the
  answer's ``min_confidence`` (0.5 by default, chosen on validation data:
  under it an answer is more often wrong than right), so for such runs "not a
  digit" is what "uncertain" was, and what the page already said for it.

``engines.load_detector`` loads a run's detector beside its classifier.
``benchmarks/not_a_digit.py`` compares them on MNIST's test digits and the
held-out non-digits (``non_digits.HELD_OUT``), which no training run sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_cnn.errors import MnistCnnError, first_line

if TYPE_CHECKING:
    import keras

    from mnist_cnn.data import Dataset

DETECTOR_KINDS = ("learned", "confidence")
NOT_A_DIGIT = "not a digit"  # the answer's reason when the detector refuses a picture
DIGIT_CLASS_NAMES = tuple(str(digit) for digit in range(10))  # what the packaged one knows


@dataclass(frozen=True)
class DetectorFiles:
    """A stored detector: its network for Keras and for ONNX Runtime, and its settings."""

    folder: Path

    @property
    def keras(self) -> Path:
        return self.folder / "not_a_digit.keras"

    @property
    def onnx(self) -> Path:
        return self.folder / "not_a_digit.onnx"

    @property
    def settings(self) -> Path:
        return self.folder / "not_a_digit.json"


# The detector that ships with mnist-cnn, for runs without their own: trained
# without any classifier (its score is P(a digit) alone), by
# `mnist-cnn not-a-digit --packaged DIR` (`make detector`), on the training split and
# non_digits.TRAINING, its threshold chosen on the validation split.
PACKAGED_DETECTOR = DetectorFiles(Path(__file__).resolve().parent / "detectors")

DigitNetwork = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28, 1) float32 -> (N,) in [0, 1]


@dataclass(frozen=True)
class DigitDetector:
    """Scores prepared digits and says which are not digits."""

    kind: str  # one of DETECTOR_KINDS
    threshold: float  # scores under it are not digits
    network: DigitNetwork | None = None  # the learned kind's network
    # A run's own detector multiplies in its classifier's confidence; the packaged
    # one, made without any particular classifier, scores with its network alone.
    uses_confidence: bool = True

    def scores(self, model_inputs: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """(N,) float32 digit scores in [0, 1] from model inputs and class probabilities."""
        confidence = np.asarray(probabilities, dtype=np.float32).max(axis=1, initial=0.0)
        if self.network is None:
            return confidence
        if not self.uses_confidence:
            return np.asarray(self.network(model_inputs), dtype=np.float32)
        return learned_scores(self.network(model_inputs), confidence)

    def rejects(self, scores: np.ndarray) -> np.ndarray:
        """(N,) bool: which scores are too low for a digit."""
        return np.asarray(scores) < self.threshold


def learned_scores(digit_probabilities: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """The learned detector's score: P(a digit) times the classifier's largest probability."""
    return (np.asarray(digit_probabilities) * np.asarray(confidence)).astype(np.float32)


def confidence_detector(threshold: float) -> DigitDetector:
    """The detector a run without a learned one uses: the classifier's largest probability.

    A largest probability chosen to keep 97% of validation digits (0.978 for the
    two-epoch fast preset of an earlier stop) still accepted 40% of the held-out non-digits
    (benchmarks/results/not_a_digit.json), and it depends on the model; so the
    answers' ``min_confidence`` is its threshold rather than a number of its own.
    """
    return DigitDetector(kind="confidence", threshold=threshold)


# Training a learned detector ------------------------------------------------------


@dataclass(frozen=True)
class DetectorConfig:
    """How a learned detector is trained; the defaults take 3-5 minutes on two cores."""

    digit_count: int = 20_000  # MNIST training-split digits shown (of the first 50k)
    pen_digit_count: int = 2_000  # of those, also redrawn with a pen (non_digits)
    non_digit_count: int = 4_000  # non_digits.TRAINING pictures, seeds 0 and up
    validation_non_digit_count: int = 600  # TRAINING pictures from VALIDATION_SEED up
    validation_pen_digit_count: int = 500  # validation digits also redrawn with a pen
    # The threshold keeps this share of validation digits: two points above the 95%
    # asked for, so that a new set's spread still keeps 95%.
    digit_accept_target: float = 0.97
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 0.002  # Adam
    seed: int = 0


DIGIT_OUTPUT = 1  # the network's outputs: 0 not a digit, 1 a digit
VALIDATION_SEED = 500_000  # validation non-digits start here: no training seed reaches it
VALIDATION_SPLIT = 10_000  # the last 10k training images, as training's validation split


@dataclass(frozen=True)
class TrainedDetector:
    """A learned detector's network and the threshold chosen for it on validation data."""

    model: keras.Model
    threshold: float
    validation: dict[str, float]  # accepted digits, rejected non-digits, AUROC


def build_detector_network() -> keras.Model:
    """(N, 28, 28, 1) float32 in [0, 1] -> (N, 2) probabilities: not a digit, a digit.

    Two softmax outputs rather than one sigmoid, so that the network loads,
    exports and runs through the same code as the classifiers (whose ONNX
    signature check asks for at least two classes).
    """
    import keras
    from keras import layers

    from mnist_cnn.preprocess import INPUT_SHAPE

    # The fast net's shape at a quarter of its width: ~56k weights, a fraction
    # of a millisecond a picture, so the answer after pen-up is not slower.
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(16, kernel_size=5),  # (N, 24, 24, 16)
            layers.MaxPooling2D(pool_size=2),  # (N, 12, 12, 16)
            layers.ReLU(),
            layers.Conv2D(32, kernel_size=3),  # (N, 10, 10, 32)
            layers.MaxPooling2D(pool_size=2),  # (N, 5, 5, 32)
            layers.ReLU(),
            layers.Flatten(),  # (N, 800)
            layers.Dense(64, activation="relu"),
            layers.Dense(2, activation="softmax"),
        ],
        name="digit_or_not",
    )


def pen_digits(images: np.ndarray, seed: int) -> np.ndarray:
    """MNIST digits (N, 28, 28) uint8 redrawn with a pen and prepared as pictures are."""
    from mnist_cnn.non_digits import draw_digit_with_pen
    from mnist_cnn.preprocess import prepare_digit

    prepared = [
        prepare_digit(draw_digit_with_pen(image, seed + index)).image
        for index, image in enumerate(images)
    ]
    kept = [image for image in prepared if image is not None]
    return np.stack(kept) if kept else np.zeros((0, 28, 28), np.uint8)


def varied(images: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """(N, 28, 28) uint8 images, each turned up to 25 degrees, slanted and resized a little."""
    from scipy import ndimage

    centre = np.array([13.5, 13.5])
    result = np.empty_like(images)
    for index, image in enumerate(images):
        angle = np.radians(random.uniform(-25, 25))
        shear = random.uniform(-0.25, 0.25)
        scale = random.uniform(0.8, 1.1)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        # affine_transform maps output coordinates to input ones: the inverse of the change.
        matrix = np.linalg.inv(rotation @ np.array([[1.0, shear], [0.0, 1.0]]) * scale)
        result[index] = ndimage.affine_transform(
            image, matrix, offset=centre - matrix @ centre, order=1
        )
    return result


def choose_threshold(digit_scores: np.ndarray, digit_accept_target: float) -> float:
    """The highest threshold that still accepts ``digit_accept_target`` of these digits."""
    if len(digit_scores) == 0:
        raise ValueError("choosing a threshold needs at least one digit's score")
    return float(np.quantile(np.asarray(digit_scores, np.float64), 1.0 - digit_accept_target))


def separation(
    digit_scores: np.ndarray, non_digit_scores: np.ndarray, threshold: float
) -> dict[str, float]:
    """Accepted digits and rejected non-digits at ``threshold`` (shares), and the AUROC."""
    from sklearn.metrics import roc_auc_score

    truth = np.concatenate([np.ones(len(digit_scores)), np.zeros(len(non_digit_scores))])
    return {
        "accepted_digits": float(np.mean(digit_scores >= threshold)),
        "rejected_non_digits": float(np.mean(non_digit_scores < threshold)),
        "auroc": float(roc_auc_score(truth, np.concatenate([digit_scores, non_digit_scores]))),
    }


def train_detector(
    dataset: Dataset,
    classifier_probabilities: Callable[[np.ndarray], np.ndarray] | None,
    config: DetectorConfig = DetectorConfig(),
) -> TrainedDetector:
    """Train a digit-or-not network and choose its threshold on validation data.

    ``classifier_probabilities``: the run's classifier, (N, 28, 28, 1) float32
    to (N, classes), whose confidence is part of the score (``learned_scores``);
    None for the packaged detector, which scores with the network alone.

    Digits come from the training split (the first 50k images) and are
    validated on the last 10k, as classifiers are; non-digits are
    ``non_digits.TRAINING`` pictures, with their own seeds for validation.
    MNIST's test images and ``non_digits.HELD_OUT`` are never seen.
    """
    import keras

    from mnist_cnn.non_digits import TRAINING, make_non_digits
    from mnist_cnn.preprocess import to_model_input

    keras.utils.set_random_seed(config.seed)
    random = np.random.default_rng(config.seed)
    train_end = len(dataset.train_images) - VALIDATION_SPLIT
    if train_end <= 0:
        raise MnistCnnError(
            f"training a detector needs more than {VALIDATION_SPLIT} training images "
            f"(the validation split); the data has {len(dataset.train_images)}"
        )
    chosen = random.permutation(train_end)[: config.digit_count]
    digits = dataset.train_images[chosen]
    digits = np.concatenate(
        [digits, pen_digits(digits[: config.pen_digit_count], seed=config.seed)]
    )
    non_digits = make_non_digits(TRAINING, config.non_digit_count).images
    # Each non-digit twice, once turned, slanted and resized: the held-out glyphs
    # are other shapes, and variety teaches "not a digit" rather than these glyphs.
    non_digits = np.concatenate([non_digits, varied(non_digits, random)])
    images = np.concatenate([digits, non_digits])
    labels = np.concatenate([np.ones(len(digits)), np.zeros(len(non_digits))]).astype("int32")
    # Each side weighs as much as the other, whatever their counts.
    weights = {0: len(images) / (2 * max(len(non_digits), 1)), 1: len(images) / (2 * len(digits))}

    model = build_detector_network()
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        to_model_input(images),
        labels,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        class_weight=weights,
        verbose=0,
    )

    validation_digits = dataset.train_images[train_end:]
    validation_digits = np.concatenate(
        [
            validation_digits,
            pen_digits(
                validation_digits[: config.validation_pen_digit_count],
                seed=VALIDATION_SEED + config.seed,
            ),
        ]
    )
    validation_non_digits = make_non_digits(
        TRAINING, config.validation_non_digit_count, start_seed=VALIDATION_SEED
    ).images
    network = network_function(model)

    def scores(images: np.ndarray) -> np.ndarray:
        model_inputs = to_model_input(images)
        if classifier_probabilities is None:
            return network(model_inputs)
        confidence = np.asarray(classifier_probabilities(model_inputs)).max(axis=1, initial=0.0)
        return learned_scores(network(model_inputs), confidence)

    digit_scores = scores(validation_digits)
    non_digit_scores = scores(validation_non_digits)
    threshold = choose_threshold(digit_scores, config.digit_accept_target)
    return TrainedDetector(
        model=model,
        threshold=threshold,
        validation=separation(digit_scores, non_digit_scores, threshold),
    )


def network_function(model: keras.Model, batch_size: int = 1000) -> DigitNetwork:
    """A Keras digit-or-not network as a function to (N,) scores, run eagerly in batches.

    Loaded runs get a compiled one from ``engines.load_detector``; this one
    serves training and benchmarks, which call it a few times on many images.
    """
    import keras

    def probabilities(model_inputs: np.ndarray) -> np.ndarray:
        batches = [
            keras.ops.convert_to_numpy(model(model_inputs[start : start + batch_size]))
            for start in range(0, len(model_inputs), batch_size)
        ]
        return np.concatenate(batches) if batches else np.zeros((0, 2), np.float32)

    return digit_network(probabilities)


def digit_network(probabilities: Callable[[np.ndarray], np.ndarray]) -> DigitNetwork:
    """A digit-or-not network's (N, 2) probabilities to (N,) probabilities of "a digit"."""

    def scores(model_inputs: np.ndarray) -> np.ndarray:
        return probabilities(model_inputs)[:, DIGIT_OUTPUT]

    return scores


# Stored detectors -------------------------------------------------------------------


def settings(
    trained: TrainedDetector, config: DetectorConfig, uses_confidence: bool = True
) -> dict[str, Any]:
    """What ``not_a_digit.json`` keeps: the threshold, the score, and how they were chosen."""
    return {
        "kind": "learned",
        "score": (
            "P(a digit) x the classifier's largest probability" if uses_confidence else "P(a digit)"
        ),
        "uses_confidence": uses_confidence,
        "threshold": trained.threshold,
        "validation": trained.validation,
        "config": asdict(config),
    }


def read_settings(settings_file: str | os.PathLike[str]) -> tuple[float, bool]:
    """(threshold, uses_confidence) from ``not_a_digit.json``; a damaged file is one line.

    Files written before the packaged detector existed lack ``uses_confidence``:
    theirs was always the product.
    """
    settings_file = Path(settings_file)
    try:
        stored = json.loads(settings_file.read_text(encoding="utf-8"))
        threshold = float(stored["threshold"])
        uses_confidence = stored.get("uses_confidence", True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise MnistCnnError(
            f"{settings_file}: not a detector's settings ({first_line(error)})"
        ) from None
    if not 0.0 <= threshold <= 1.0:  # also refuses NaN
        raise MnistCnnError(f"{settings_file}: threshold {threshold} is outside [0, 1]")
    if not isinstance(uses_confidence, bool):
        raise MnistCnnError(f"{settings_file}: uses_confidence must be true or false")
    return threshold, uses_confidence
