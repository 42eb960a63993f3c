"""Running a trained model: on MNIST arrays, and on people's own pictures.

The model is reached through a ``engines.Classifier``: a name, the class
names and a function from model inputs to probabilities. Keras and ONNX
Runtime both provide one, so this module never imports TensorFlow itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_cnn.engines import Classifier, keras_probability_function
from mnist_cnn.preprocess import (
    NO_DIGIT,
    PreparedDigit,
    prepare_digit,
    prepare_digits,
    to_model_input,
)
from mnist_cnn.reading import Picture
from mnist_cnn.rejection import NOT_A_DIGIT, DigitDetector, confidence_detector

if TYPE_CHECKING:
    import keras

# Digits classified together: enough to keep the model busy, while a folder of
# photos never holds more than their 28x28 images until the end.
CLASSIFY_BATCH_SIZE = 1000
# A prediction below this confidence is marked uncertain. Chosen on validation
# data (benchmarks/choose_min_confidence.py, results/min_confidence.json): on
# the held-out last 10k, the fast preset's answers from 0.4 to 0.5 were right only
# 46.9% of the time (48.5% for all under 0.5; 3 seeds pooled), those from 0.5 to
# 0.6 56.6%: under 0.5 an answer is more likely wrong than right.
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Predictions:
    """Per image: the chosen class, its probability, and all class probabilities."""

    probabilities: np.ndarray  # (N, classes) float32, rows sum to 1
    classes: np.ndarray  # (N,) int, the argmax
    confidences: np.ndarray  # (N,) float32, the probability of the chosen class

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray) -> Predictions:
        classes = probabilities.argmax(axis=1)
        return cls(
            probabilities=probabilities,
            classes=classes,
            confidences=probabilities[np.arange(len(classes)), classes],
        )

    def top(self, index: int, count: int = 3) -> list[tuple[int, float]]:
        """The ``count`` most probable classes of image ``index``, best first."""
        order = np.argsort(self.probabilities[index])[::-1][:count]
        return [(int(cls), float(self.probabilities[index, cls])) for cls in order]


def predict_probabilities(
    model: keras.Model, model_inputs: np.ndarray, batch_size: int = 1000
) -> np.ndarray:
    """(N, 28, 28, 1) float32 in [0, 1] -> (N, classes) float32 probabilities."""
    return keras_probability_function(model, batch_size)(model_inputs)


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> Predictions:
    """Classify (N, 28, 28) uint8 MNIST-style images in [0, 255]."""
    return Predictions.from_probabilities(
        predict_probabilities(model, to_model_input(images), batch_size)
    )


# People's own pictures ------------------------------------------------------------


@dataclass(frozen=True)
class DigitAnswer:
    """One digit read: the class chosen, how sure, and what the model saw."""

    digit: str  # the class name
    confidence: float
    top: list[tuple[str, float]]  # best three (class name, probability)
    uncertain: bool  # confidence under the threshold
    image: np.ndarray  # (28, 28) uint8, what the model saw
    probabilities: np.ndarray  # (classes,) float32, one per class
    class_index: int  # the chosen class's position in the model's output
    top_classes: tuple[int, ...]  # the class index of each entry of ``top``
    box: tuple[int, int, int, int] | None = None  # where the digit stood, with --multi
    # (28, 28) float32 in [0, 1]: where the answer leans (explain.explain_answers), if asked.
    saliency: np.ndarray | None = None
    # How digit-like the picture is (rejection.DigitDetector, higher is more), and
    # whether it fell under the detector's threshold: then the fields above are the
    # model's best guess, kept so that explanations and corrections still work.
    digit_score: float = 1.0
    not_a_digit: bool = False

    def to_dict(self, include_preprocessed: bool = False) -> dict[str, Any]:
        """The digit's JSON: class index, name, confidence, top three, probabilities."""
        result: dict[str, Any] = {
            "digit": self.class_index,
            "name": self.digit,
            "confidence": round(self.confidence, 6),
            "uncertain": self.uncertain,
            "top": [
                {"digit": index, "name": name, "probability": round(probability, 6)}
                for index, (name, probability) in zip(self.top_classes, self.top, strict=True)
            ],
            # Six decimals keep the answer short; float32 holds about seven.
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "not_a_digit": self.not_a_digit,
            "digit_score": round(self.digit_score, 6),
        }
        if include_preprocessed:
            result["preprocessed"] = self.image.tolist()
        if self.saliency is not None:
            # Three decimals: a map is looked at, not computed with.
            result["saliency"] = np.round(self.saliency, 3).tolist()
        return result


# The keys of a digit's JSON, all null where an answer has no single digit.
_NO_DIGIT_FIELDS = (
    "digit",
    "name",
    "confidence",
    "uncertain",
    "top",
    "probabilities",
    "not_a_digit",
    "digit_score",
)


@dataclass(frozen=True)
class Answer:
    """The answer for one picture: one digit, several (--multi), none, or an error."""

    name: str
    digits: list[DigitAnswer] = field(default_factory=list)
    reason: str | None = None  # e.g. "no digit found"
    error: str | None = None  # a one-line problem with the input

    @property
    def text(self) -> str:
        """The digits read, as one string ("" when none), leaving out what is not a digit."""
        return "".join(digit.digit for digit in self.digits if not digit.not_a_digit)

    @property
    def confidence(self) -> float:
        """The confidence of the least sure digit (needs at least one digit)."""
        return min(digit.confidence for digit in self.digits)

    @property
    def uncertain(self) -> bool:
        """Whether any digit read falls under the confidence threshold."""
        return any(digit.uncertain for digit in self.digits)

    def to_dict(self, include_preprocessed: bool = False) -> dict[str, Any]:
        """The answer's JSON, the one shape that ``predict --json`` and the web API share.

        Every key is always there, null where it does not apply. One digit fills
        the top-level digit fields; several (read with multi, which is when
        digits carry a ``box``) fill ``digits``, one object per digit left to
        right, and leave the top-level digit fields null. ``number`` is the
        digits read as a string, without the pieces that are not digits (they
        stay in ``digits``, with ``not_a_digit`` true); null when there are none.
        ``preprocessed``, the 28x28 image the model saw, is there only when asked for.
        """
        several = any(digit.box is not None for digit in self.digits)
        single = self.digits[0] if len(self.digits) == 1 and not several else None
        result: dict[str, Any] = {"file": self.name}
        if single is not None:
            result.update(single.to_dict(include_preprocessed))
        else:
            result.update(dict.fromkeys(_NO_DIGIT_FIELDS))
            if include_preprocessed:
                result["preprocessed"] = None
        result["number"] = self.text or None
        result["digits"] = (
            [
                {**digit.to_dict(include_preprocessed), "box": list(digit.box or ())}
                for digit in self.digits
            ]
            if several
            else None
        )
        result["reason"] = self.reason
        result["error"] = self.error
        return result


def digits_in(gray: np.ndarray, multi: bool) -> list[PreparedDigit]:
    """The MNIST-style digits of one picture: all of them with ``multi``, else one; [] if none."""
    if multi:
        return prepare_digits(gray)
    digit = prepare_digit(gray)
    return [digit] if digit.image is not None else []


def digit_answer(
    digit: PreparedDigit,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    digit_score: float = 1.0,
    not_a_digit: bool = False,
) -> DigitAnswer:
    """The answer for one prepared digit, from its row of class probabilities.

    ``digit_score`` and ``not_a_digit`` come from a ``rejection.DigitDetector``;
    a picture that is not a digit is always uncertain.
    """
    predictions = Predictions.from_probabilities(probabilities[np.newaxis, :])
    confidence = float(predictions.confidences[0])
    class_index = int(predictions.classes[0])
    top = predictions.top(0)
    if digit.image is None:
        raise ValueError("a prepared digit without an image has no answer")
    return DigitAnswer(
        digit=class_names[class_index],
        confidence=confidence,
        top=[(class_names[cls], p) for cls, p in top],
        uncertain=confidence < min_confidence or not_a_digit,
        image=digit.image,
        probabilities=probabilities,
        class_index=class_index,
        top_classes=tuple(cls for cls, _ in top),
        box=digit.box,
        digit_score=digit_score,
        not_a_digit=not_a_digit,
    )


def answer_pictures(
    pictures: Iterable[Picture],
    classifier: Classifier,
    *,
    multi: bool = False,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    batch_size: int = CLASSIFY_BATCH_SIZE,
) -> list[Answer]:
    """Answer every picture, in order: its digits, "no digit found", or its error.

    The classifier's detector (``Classifier.detector``; without one, the
    confidence detector at ``min_confidence``) scores every digit. A single
    digit under its threshold is answered "not a digit"; with ``multi`` such
    pieces are left out of the number, and a picture with no piece left is
    "not a digit" too.

    Pictures are prepared as they come (``read_pictures`` reads them lazily)
    and dropped once their 28x28 digits are made; the digits are classified
    ``batch_size`` or so at a time. So a folder of photos costs one decoded
    photo at a time, plus 784 bytes per digit.
    """
    # Per picture: its name, its digits (None when it could not be read), its error.
    prepared: list[tuple[str, list[PreparedDigit] | None, str | None]] = []
    waiting: list[np.ndarray] = []  # 28x28 images not yet classified
    batches: list[tuple[np.ndarray, np.ndarray]] = []  # (probabilities, digit scores) in order
    detector = classifier.detector or confidence_detector(min_confidence)
    for picture in pictures:
        readable = picture.error is None and picture.gray is not None
        digits = digits_in(picture.gray, multi) if picture.gray is not None and readable else None
        prepared.append((picture.name, digits, picture.error))
        # Unbound before the loop asks for the next picture, so that two decoded
        # pictures are never held at once.
        del picture
        waiting.extend(digit.image for digit in digits or [] if digit.image is not None)
        if len(waiting) >= batch_size:
            batches.append(_classify(waiting, classifier, detector))
            waiting = []
    batches.append(_classify(waiting, classifier, detector))
    probabilities = np.concatenate([batch for batch, _ in batches])
    digit_scores = np.concatenate([scores for _, scores in batches])
    rejected = detector.rejects(digit_scores)

    answers, position = [], 0
    for name, digits, error in prepared:
        if digits is None:
            answers.append(Answer(name=name, error=error))
            continue
        if not digits:
            answers.append(Answer(name=name, reason=NO_DIGIT))
            continue
        found = []
        for digit in digits:
            found.append(
                digit_answer(
                    digit,
                    probabilities[position],
                    classifier.class_names,
                    min_confidence,
                    digit_score=float(digit_scores[position]),
                    not_a_digit=bool(rejected[position]),
                )
            )
            position += 1
        none_left = all(digit.not_a_digit for digit in found)
        answers.append(Answer(name=name, digits=found, reason=NOT_A_DIGIT if none_left else None))
    return answers


def _classify(
    images: list[np.ndarray], classifier: Classifier, detector: DigitDetector
) -> tuple[np.ndarray, np.ndarray]:
    """(n, classes) probabilities and (n,) digit scores for n 28x28 uint8 images (n may be 0)."""
    if not images:
        return np.zeros((0, len(classifier.class_names)), np.float32), np.zeros(0, np.float32)
    model_inputs = to_model_input(np.stack(images))
    probabilities = np.asarray(classifier.probabilities(model_inputs))
    return probabilities, detector.scores(model_inputs, probabilities)
