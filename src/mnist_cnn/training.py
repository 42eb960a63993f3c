"""Training: from a config and a dataset to a trained model and its history.

Training runs one ``fit`` call per epoch, with the epoch's shuffle order and
random seed derived from (seed, epoch). That makes every epoch reproducible on
its own, so a run resumed from a checkpoint after a crash draws the same
batches as one that was never interrupted. With a ``Checkpoints`` object, the
full training state (weights, optimizer moments and step count, which is the
schedule position, and the history) is saved atomically after each epoch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from mnist_cnn.augment import augmentation_layers, epoch_inputs
from mnist_cnn.checkpoints import Checkpoints
from mnist_cnn.config import TrainConfig
from mnist_cnn.data import Dataset
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.models import (
    average_over_shifts,
    build_model,
    compile_model,
    ensemble_model,
    in_float32,
    resolve_precision,
    steps_per_epoch,
)
from mnist_cnn.pen_styles import redrawn_with_pens
from mnist_cnn.preprocess import to_model_input
from mnist_cnn.run_folder import HISTORY_COLUMNS

logger = logging.getLogger(__name__)


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
    train_seconds: float = 0.0  # wall time of the epochs, data already loaded
    resumed_from_epoch: int = 0  # 0 for a fresh run


def split_for_training(
    dataset: Dataset, config: TrainConfig, *, with_pen_styles: bool = True
) -> Split:
    """Apply ``config.limit``, normalise, and hold out the last ``validation_split``.

    The hold-out is taken from the end, before shuffling, exactly as Keras's
    ``fit(validation_split=...)`` does, so ``seed`` matches the tutorial. With
    ``config.pen_style_share``, that share of the training digits is redrawn with people's
    pens first (``pen_styles.redrawn_with_pens``, seeded by ``config.seed``);
    ``with_pen_styles=False`` skips that for callers that read only the held-out digits
    or the counts, which it does not change.
    """
    limited = dataset.limited(config.limit)
    raw_images = limited.train_images
    validation_count = int(len(raw_images) * config.validation_split)
    train_count = len(raw_images) - validation_count
    if config.pen_style_share and with_pen_styles:
        # Only the digits trained on: the held-out ones stay MNIST's, as the test set is.
        logger.info(
            "redrawing %s of the %s training digits with people's pens",
            f"{round(config.pen_style_share * train_count):,}",
            f"{train_count:,}",
        )
        redrawn = redrawn_with_pens(raw_images[:train_count], config.pen_style_share, config.seed)
        raw_images = np.concatenate([redrawn, raw_images[train_count:]])
    images = to_model_input(raw_images)
    labels = limited.train_labels.astype(np.int32)
    return Split(
        train_images=images[:train_count],
        train_labels=labels[:train_count],
        validation_images=images[train_count:],
        validation_labels=labels[train_count:],
    )


class EpochHistory(keras.callbacks.Callback):
    """Collects one row per epoch (the ``HISTORY_COLUMNS``) with its wall time."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []
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

    def __init__(self, total_epochs: int, write: Callable[[str], None] = logger.info) -> None:
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


class StopWhenAsked(keras.callbacks.Callback):
    """Raises ``KeyboardInterrupt`` at the end of the batch in which ``asked`` was set.

    A Ctrl-C handler sets ``asked`` instead of raising wherever the signal
    lands: raised inside TensorFlow's clean-up code (an iterator's ``__del__``,
    say) the interrupt is swallowed and training carries on, while raised here
    it always unwinds through ``fit``, between two batches.
    """

    def __init__(self) -> None:
        super().__init__()
        self.asked = False
        self.fitting = False  # inside fit, where the next batch end will see ``asked``

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.fitting = True

    def on_train_end(self, logs: dict | None = None) -> None:
        self.fitting = False

    def _stop_if_asked(self, batch: int, logs: dict | None = None) -> None:
        if self.asked:
            raise KeyboardInterrupt

    on_train_batch_end = _stop_if_asked
    on_test_batch_end = _stop_if_asked  # fit's validation pass


class TensorBoardAcrossEpochs(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback, for training that calls ``fit`` once per epoch.

    The epochs are numbered right as it is: each ``fit`` passes its
    ``initial_epoch``, which the callback uses as the step. But each ``fit``
    also hands it the model again, and it would write the graph again each
    time, which TensorBoard shows as "more than one graph"; so only the first.
    """

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        self.write_graph = False


def tensorboard_callback(log_dir: str | os.PathLike[str]) -> keras.callbacks.Callback:
    """Losses, accuracies and weight histograms per epoch, and the graph, under ``log_dir``.

    Needs the ``tensorboard`` package; view with ``tensorboard --logdir log_dir``.
    """
    return TensorBoardAcrossEpochs(log_dir=os.fspath(log_dir), histogram_freq=1, write_graph=True)


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, told the run's real epoch count.

    Each ``fit`` call covers one epoch, so the stock bar would say "Epoch 3/3"
    in the third epoch of ten.
    """

    def __init__(self, total_epochs: int) -> None:
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.epochs = self.total_epochs


def train(
    config: TrainConfig,
    dataset: Dataset,
    *,
    checkpoints: Checkpoints | None = None,
    resume: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``config`` on ``dataset``; with ``resume``, continue from ``checkpoints``.

    ``verbose=1`` shows Keras's progress bar; add an ``EpochLineLogger`` to
    ``callbacks`` instead for one line per epoch. The model's summary
    (``model.summary()``, as the tutorial prints it) goes to this module's
    logger at INFO before the first epoch. With ``config.ensemble`` K > 1, K
    models are trained with seeds seed, seed + 1, ... (each with its own
    checkpoints, announced through ``log``) and returned as one averaging model.
    With ``config.test_time_views`` > 1 the returned model also averages over
    shifted copies of each image (the checkpoints keep the bare networks).
    A callback that sets ``model.stop_training`` (``EarlyStopping``, say) ends
    the run after that epoch. ``config.precision`` "auto" is resolved here
    (``models.resolve_precision``); a net trained in bfloat16 is returned in float32.
    """
    config = resolve_precision(config)
    if config.ensemble == 1:
        result = _train_one(config, dataset, checkpoints, resume, callbacks, verbose)
    else:
        result = _train_ensemble(config, dataset, checkpoints, resume, callbacks, verbose, log)
    model = average_over_shifts(result.model, config.test_time_views)
    return dataclasses.replace(result, model=model)


def _train_ensemble(
    config: TrainConfig,
    dataset: Dataset,
    checkpoints: Checkpoints | None,
    resume: bool,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int,
    log: Callable[[str], None] | None,
) -> TrainResult:
    """``config.ensemble`` members one after another, as one probability-averaging model."""
    members, histories, seconds, resumed_from = [], [], 0.0, 0
    for index in range(config.ensemble):
        member_config = dataclasses.replace(config, seed=config.seed + index, ensemble=1)
        member_checkpoints = checkpoints.member(index) if checkpoints is not None else None
        member_resume = resume and member_checkpoints is not None and member_checkpoints.exists()
        if log is not None:
            log(f"model {index + 1}/{config.ensemble} (seed {member_config.seed})")
        result = _train_one(
            member_config, dataset, member_checkpoints, member_resume, callbacks, verbose,
            name=f"member_{index}",
            summarize=index == 0,  # the members are alike: one summary
        )  # fmt: skip
        members.append(result.model)
        histories.append(result.history)
        seconds += result.train_seconds
        resumed_from = max(resumed_from, result.resumed_from_epoch)
    return TrainResult(
        model=ensemble_model(members),
        history=_mean_history(histories),
        train_seconds=seconds,
        resumed_from_epoch=resumed_from,
    )


def _mean_history(histories: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per epoch, the members' mean loss and accuracy and their total seconds."""
    rows = []
    for epoch_rows in zip(*histories, strict=True):
        row = {"epoch": epoch_rows[0]["epoch"]}
        for column in HISTORY_COLUMNS[1:-1]:
            row[column] = float(np.mean([member[column] for member in epoch_rows]))
        row["seconds"] = float(sum(member["seconds"] for member in epoch_rows))
        rows.append(row)
    return rows


def _train_one(
    config: TrainConfig,
    dataset: Dataset,
    checkpoints: Checkpoints | None,
    resume: bool,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int,
    name: str | None = None,
    summarize: bool = True,
) -> TrainResult:
    split = split_for_training(dataset, config)
    if resume:
        if checkpoints is None:
            raise MnistCnnError("resuming needs the run folder's checkpoints")
        model, first_epoch, history = checkpoints.restore()
    else:
        keras.utils.set_random_seed(config.seed)
        model = build_model(config, dataset.num_classes, name=name)
        compile_model(model, config, steps_per_epoch(len(split.train_images), config.batch_size))
        first_epoch, history = 0, []
    resumed_from = first_epoch
    if summarize and logger.isEnabledFor(logging.INFO):
        # Keras hands print_fn the whole table as one string, ending in a newline.
        model.summary(print_fn=lambda text, **_: logger.info(text.rstrip("\n")))

    validation_data = None
    if len(split.validation_images):
        validation_data = (split.validation_images, split.validation_labels)
    progress = [ProgressBar(config.epochs)] if verbose else []
    for epoch in range(first_epoch, config.epochs):
        # Per-epoch random streams: a resumed run repeats the order and the weights' draws.
        # Augmented batches repeat exactly on JAX only: TensorFlow's parallel map hands the
        # draws to batches in whatever order its threads run (a sequential map repeats them,
        # but fell into this CPU's slow mode in 7 of 24 epochs of `accurate` against 2 of 24).
        epoch_seed = config.seed * 10_007 + epoch
        keras.utils.set_random_seed(epoch_seed)
        order = np.random.default_rng([config.seed, epoch]).permutation(len(split.train_images))
        augment = augmentation_layers(config, epoch_seed)
        recorder = EpochHistory()
        model.fit(
            **epoch_inputs(
                split.train_images[order], split.train_labels[order], config.batch_size, augment
            ),
            epochs=epoch + 1,
            initial_epoch=epoch,
            validation_data=validation_data,
            validation_batch_size=1000,
            callbacks=[recorder, *progress, *callbacks],
            verbose=verbose,
        )
        history.extend(recorder.rows)
        if checkpoints is not None:
            checkpoints.save(model, epoch + 1, history)
        # A callback (keras.callbacks.EarlyStopping, say) asked to stop: each fit
        # covers one epoch, so its own check would only end that one.
        if model.stop_training:
            break
    return TrainResult(
        model=in_float32(model),
        history=history,
        train_seconds=float(sum(row["seconds"] for row in history)),
        resumed_from_epoch=resumed_from,
    )
