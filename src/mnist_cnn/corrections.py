"""A user's corrections: their own digits with the true labels, read and checked.

They come from the feedback store (``feedback.labelled_digits``) or an
MNIST-style ``.npz`` (what ``mnist-cnn feedback export`` writes); a seeded share
is held out to measure what fine-tuning on the rest changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.data import IMAGE_SIZE, read_npz
from mnist_cnn.errors import MnistCnnError

CORRECTION_KEYS = (("x_train", "y_train"), ("x_test", "y_test"))  # what `feedback export` writes


@dataclass(frozen=True)
class Corrections:
    """A user's digits with their true labels: images (N, 28, 28) uint8, labels (N,) int64."""

    images: np.ndarray
    labels: np.ndarray
    source: str  # where they came from, for messages and config.json

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> Corrections:
        return Corrections(self.images[indices], self.labels[indices], self.source)


def read_corrections(path: str | os.PathLike[str]) -> Corrections:
    """The corrections in ``path``: an MNIST-style ``.npz``, or else the feedback database.

    An ``.npz`` holds ``x_train``/``y_train`` and optionally ``x_test``/``y_test``
    (what ``mnist-cnn feedback export`` writes); all of them are corrections.
    Any other file is read by ``mnist_cnn.feedback.labelled_digits``.
    """
    path = Path(path)
    if path.is_dir():
        raise MnistCnnError(f"{path}: a folder, not a feedback database or an .npz")
    if not path.is_file():
        raise MnistCnnError(f"{path}: no such file")
    if path.suffix.lower() == ".npz":
        images, labels = _read_correction_npz(path)
    else:
        from mnist_cnn.feedback import labelled_digits

        images, labels = labelled_digits(path)
    return check_corrections(np.asarray(images), np.asarray(labels), str(path))


def _read_correction_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = read_npz(path, keys=CORRECTION_KEYS[0], optional=CORRECTION_KEYS[1])
    pairs = [
        (arrays[images_key], arrays[labels_key])
        for images_key, labels_key in CORRECTION_KEYS
        if images_key in arrays and labels_key in arrays
    ]
    for images, labels in pairs:
        _check_shapes(images, labels, str(path))
    return (
        np.concatenate([images for images, _ in pairs]),
        np.concatenate([labels for _, labels in pairs]),
    )


def _check_shapes(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MnistCnnError(f"{source}: images have shape {images.shape}, expected (N, 28, 28)")
    if images.dtype != np.uint8:
        raise MnistCnnError(f"{source}: images have dtype {images.dtype}, expected uint8")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise MnistCnnError(
            f"{source}: labels have shape {labels.shape} and dtype {labels.dtype}, "
            "expected (N,) integers"
        )
    if len(images) != len(labels):
        raise MnistCnnError(f"{source}: {len(images)} images but {len(labels)} labels")


def check_corrections(images: np.ndarray, labels: np.ndarray, source: str) -> Corrections:
    """Shapes, dtypes and a non-empty set, as ``Corrections``; the label range is checked
    against the model by ``check_labels``."""
    _check_shapes(images, labels, source)
    if len(labels) == 0:
        raise MnistCnnError(f"{source}: no corrections in this file")
    return Corrections(images, labels.astype(np.int64), source)


def check_labels(corrections: Corrections, num_classes: int) -> None:
    """Every label must be one of the model's classes, 0 to ``num_classes`` - 1."""
    low, high = int(corrections.labels.min()), int(corrections.labels.max())
    if low < 0 or high >= num_classes:
        raise MnistCnnError(
            f"{corrections.source}: labels out of range (found {low}…{high}, "
            f"the model's classes run from 0 to {num_classes - 1})"
        )


def split_corrections(
    corrections: Corrections, holdout_fraction: float, seed: int
) -> tuple[Corrections, Corrections]:
    """(to train on, held out): a seeded ``holdout_fraction`` of them held out.

    At least one correction is always trained on; with few corrections the
    held-out share may round to none.
    """
    count = len(corrections)
    held_out = min(round(holdout_fraction * count), count - 1)
    order = np.random.default_rng([seed, 1]).permutation(count)
    return corrections.subset(np.sort(order[held_out:])), corrections.subset(
        np.sort(order[:held_out])
    )
