"""Feedback in and out: the digits for fine-tuning, and MNIST-style .npz export and import."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.data import load_mnist, write_npz_atomic
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.feedback.records import DIGITS, Feedback
from mnist_cnn.feedback.store import FeedbackStore

# ---- What other stages ask for ---------------------------------------------------------


def labelled_digits(database: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every row labelled with a digit, confirmations and corrections, in insertion order.

    Returns images (N, 28, 28) uint8 in [0, 255] and labels (N,) int64 in
    [0, 9]. Rows labelled "not a digit" are left out. Raises ``MnistCnnError``
    (one line naming the file) when it is missing or not a feedback database.
    """
    with FeedbackStore.open(database, create=False) as store:
        return store.labelled(digits_only=True)


@dataclass(frozen=True)
class ExportSummary:
    train_rows: int
    test_rows: int
    left_out: int  # rows labelled "not a digit"
    missing_digits: tuple[int, ...]  # digits with no training row


def split_for_export(
    images: np.ndarray, labels: np.ndarray, *, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Images and labels -> the four arrays of an MNIST-style ``.npz``, split per digit.

    Each digit's rows are shuffled (seeded) and ``test_fraction`` of them,
    rounded down, go to the test set; a digit with one row keeps it for
    training. The training rows are shuffled as a whole, since training holds
    its validation split out from the end.
    """
    if not 0.0 < test_fraction < 1.0:
        raise MnistCnnError(f"test fraction: must be between 0 and 1, got {test_fraction}")
    generator = np.random.default_rng(seed)
    train_indices: list[int] = []
    test_indices: list[int] = []
    for digit in np.unique(labels):
        indices = generator.permutation(np.flatnonzero(labels == digit))
        test_count = int(len(indices) * test_fraction)
        test_indices.extend(indices[:test_count].tolist())
        train_indices.extend(indices[test_count:].tolist())
    if not test_indices:
        raise MnistCnnError(
            f"{len(labels)} digit rows are too few to hold out a test set at "
            f"--test-fraction {test_fraction} (a digit needs {int(np.ceil(1 / test_fraction))} "
            "rows for one to go to the test set)"
        )
    train_order = generator.permutation(np.array(train_indices, dtype=np.int64))
    test_order = np.sort(np.array(test_indices, dtype=np.int64))
    return {
        "x_train": images[train_order],
        "y_train": labels[train_order].astype(np.uint8),
        "x_test": images[test_order],
        "y_test": labels[test_order].astype(np.uint8),
    }


def export_digits(
    store: FeedbackStore, out: Path, *, test_fraction: float = 0.2, seed: int = 0
) -> ExportSummary:
    """Write the digit rows of ``store`` to ``out`` as an MNIST-style ``.npz``, atomically."""
    images, labels = store.labelled(digits_only=True)
    if not len(labels):
        raise MnistCnnError(f"{store.path}: no rows labelled with a digit to export")
    arrays = split_for_export(images, labels, test_fraction=test_fraction, seed=seed)
    write_npz_atomic(out, arrays)
    present = set(np.unique(arrays["y_train"]).tolist())
    return ExportSummary(
        train_rows=len(arrays["y_train"]),
        test_rows=len(arrays["y_test"]),
        left_out=store.count() - len(labels),
        missing_digits=tuple(digit for digit in range(DIGITS) if digit not in present),
    )


def read_import(path: Path) -> list[Feedback]:
    """The rows of an MNIST-style ``.npz`` (train, then test), as feedback to store.

    Labels must be digits 0-9; the images are stored as the 28x28 images, with
    no picture, answer or model (source "import").
    """
    dataset = load_mnist(path, class_names=[str(digit) for digit in range(DIGITS)])
    images = np.concatenate([dataset.train_images, dataset.test_images])
    labels = np.concatenate([dataset.train_labels, dataset.test_labels])
    return [
        Feedback(preprocessed=image, label=int(label), answer=None, model=None, source="import")
        for image, label in zip(images, labels, strict=True)
    ]
