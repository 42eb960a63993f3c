"""Training: from a config and a dataset to a trained model and its history."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from mnist_cnn.config import TrainConfig
from mnist_cnn.data import Dataset
from mnist_cnn.models import build_model, compile_model, steps_per_epoch
from mnist_cnn.preprocess import to_model_input

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


@dataclass(frozen=True)
class Split:
    """Model-ready arrays: images (N, 28, 28, 1) float32 in [0, 1], labels (N,) int32."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray


@dataclass
class TrainResult:
    model: keras.Model
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    train_seconds: float = 0.0  # wall time inside fit, data already loaded


def split_for_training(dataset: Dataset, config: TrainConfig) -> Split:
    """Apply ``config.limit``, normalise, and hold out the last ``validation_split``.

    The hold-out is taken from the end, before shuffling, exactly as Keras's
    ``fit(validation_split=...)`` does, so ``seed`` matches the tutorial.
    """
    limited = dataset.limited(config.limit)
    images = to_model_input(limited.train_images)
    labels = limited.train_labels.astype(np.int32)
    validation_count = int(len(images) * config.validation_split)
    train_count = len(images) - validation_count
    return Split(
        train_images=images[:train_count],
        train_labels=labels[:train_count],
        validation_images=images[train_count:],
        validation_labels=labels[train_count:],
    )


class EpochHistory(keras.callbacks.Callback):
    """Collects one row per epoch (the ``HISTORY_COLUMNS``) with its wall time."""

    def __init__(self, rows: list[dict[str, float]] | None = None) -> None:
        super().__init__()
        self.rows = rows if rows is not None else []
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row: dict[str, float] = {"epoch": epoch + 1}
        for column in HISTORY_COLUMNS[1:-1]:
            row[column] = float(logs[column]) if column in logs else float("nan")
        row["seconds"] = time.perf_counter() - self._epoch_start
        self.rows.append(row)


class EpochLineLogger(keras.callbacks.Callback):
    """One line per epoch, for logs where a progress bar would be noise."""

    def __init__(self, total_epochs: int, write: Callable[[str], None] = print) -> None:
        super().__init__()
        self.total_epochs = total_epochs
        self.write = write
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.total_epochs}"]
        parts += [f"{name} {logs[name]:.4f}" for name in HISTORY_COLUMNS[1:-1] if name in logs]
        parts.append(f"{time.perf_counter() - self._epoch_start:.1f}s")
        self.write(" | ".join(parts))


def augmentation_layers(config: TrainConfig) -> keras.Sequential | None:
    """Random shifts and rotations for training batches, or None when turned off."""
    pipeline = []
    if config.max_rotation_degrees:
        pipeline.append(
            keras.layers.RandomRotation(
                config.max_rotation_degrees / 360.0, fill_mode="constant", seed=config.seed
            )
        )
    if config.max_shift_pixels:
        fraction = config.max_shift_pixels / 28.0
        pipeline.append(
            keras.layers.RandomTranslation(
                fraction, fraction, fill_mode="constant", seed=config.seed + 1
            )
        )
    return keras.Sequential(pipeline, name="augmentation") if pipeline else None


def _training_input(split: Split, config: TrainConfig):
    augment = augmentation_layers(config)
    if augment is None:
        return split.train_images, split.train_labels
    import tensorflow as tf

    # Augmenting in the input pipeline keeps the saved model free of random layers,
    # and lets tf.data overlap it with the training step.
    return (
        tf.data.Dataset.from_tensor_slices((split.train_images, split.train_labels))
        .shuffle(len(split.train_images), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .map(
            lambda images, labels: (augment(images, training=True), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )


def train(
    config: TrainConfig,
    dataset: Dataset,
    *,
    model: keras.Model | None = None,
    initial_epoch: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
) -> TrainResult:
    """Train a new model (or continue ``model`` from ``initial_epoch``).

    ``verbose`` is passed to ``fit``: 1 for Keras's progress bar, 0 for none
    (add an ``EpochLineLogger`` to ``callbacks`` for one line per epoch).
    """
    keras.utils.set_random_seed(config.seed)
    split = split_for_training(dataset, config)
    if model is None:
        model = build_model(config, dataset.num_classes)
        compile_model(model, config, steps_per_epoch(len(split.train_images), config.batch_size))
    history = EpochHistory()
    inputs = _training_input(split, config)
    fit_arguments = {}
    if isinstance(inputs, tuple):
        images, labels = inputs
        fit_arguments = {"x": images, "y": labels, "batch_size": config.batch_size, "shuffle": True}
    else:
        fit_arguments = {"x": inputs, "shuffle": False}  # the pipeline shuffles
    validation_data = None
    if len(split.validation_images):
        validation_data = (split.validation_images, split.validation_labels)
    started = time.perf_counter()
    model.fit(
        **fit_arguments,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        validation_data=validation_data,
        validation_batch_size=1000,
        callbacks=[history, *callbacks],
        verbose=verbose,
    )
    return TrainResult(
        model=model, history=history.rows, train_seconds=time.perf_counter() - started
    )
