"""The whole tutorial in one call: train, evaluate, predict, draw, and keep it all.

``train_run`` is what ``mnist-cnn train`` does; it writes the run folder and
returns a summary for the caller to report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_cnn.config import TrainConfig
from mnist_cnn.data import Dataset
from mnist_cnn.evaluate import evaluate
from mnist_cnn.models import count_parameters
from mnist_cnn.plots import image_grid_figure, predictions_figure, training_curves_figure
from mnist_cnn.runs import (
    MODEL_FILE,
    point_latest_at,
    save_figure,
    save_model,
    write_config,
    write_history,
    write_metrics,
)
from mnist_cnn.train import HISTORY_COLUMNS, EpochLineLogger, train

GRID_SIZE = 25  # the tutorial draws the first 25 images


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]


def describe_data(dataset: Dataset) -> dict[str, Any]:
    return {
        "source": dataset.source,
        "class_names": list(dataset.class_names),
        "train_count": len(dataset.train_images),
        "test_count": len(dataset.test_images),
    }


def train_run(
    config: TrainConfig,
    dataset: Dataset,
    run_dir: Path,
    *,
    progress_bar: bool = False,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Train ``config`` on ``dataset`` and fill ``run_dir`` with every artefact.

    ``progress_bar``: Keras's bar (for a terminal) instead of one line per epoch.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config, describe_data(dataset))
    names = dataset.class_names
    save_figure(
        image_grid_figure(
            dataset.train_images[:GRID_SIZE],
            [f"label {names[label]}" for label in dataset.train_labels[:GRID_SIZE]],
        ),
        run_dir / "samples.png",
    )

    callbacks = [] if progress_bar else [EpochLineLogger(config.epochs, log)]
    result = train(config, dataset, callbacks=callbacks, verbose=1 if progress_bar else 0)
    save_model(result.model, run_dir / MODEL_FILE)
    write_history(run_dir, result.history, HISTORY_COLUMNS)

    evaluation = evaluate(result.model, dataset.test_images, dataset.test_labels)
    predictions = evaluation.predictions
    first_predicted = int(predictions.classes[0])
    metrics = {
        "preset": config.preset,
        "test_loss": evaluation.loss,
        "test_accuracy": evaluation.accuracy,
        "test_count": len(evaluation.labels),
        "train_seconds": result.train_seconds,
        "epochs": len(result.history),
        "parameters": count_parameters(result.model),
        "first_test_image": {
            "predicted": names[first_predicted],
            "actual": names[int(dataset.test_labels[0])],
            "confidence": float(predictions.confidences[0]),
        },
    }
    write_metrics(run_dir, metrics)
    save_figure(
        predictions_figure(
            dataset.test_images[:GRID_SIZE],
            predictions.classes[:GRID_SIZE],
            predictions.confidences[:GRID_SIZE],
            dataset.test_labels[:GRID_SIZE],
            names,
        ),
        run_dir / "predictions.png",
    )
    save_figure(training_curves_figure(result.history), run_dir / "training_curves.png")
    point_latest_at(run_dir)
    return RunSummary(run_dir=run_dir, metrics=metrics)
