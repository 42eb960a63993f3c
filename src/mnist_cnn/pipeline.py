"""The whole tutorial in one call: train, evaluate, predict, draw, and keep it all.

``train_run`` is what ``mnist-cnn train`` does; it writes the run folder and
returns a summary for the caller to report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnist_cnn.atomic_files import write_json_atomic
from mnist_cnn.config import TrainConfig
from mnist_cnn.data import Dataset
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.evaluation import Analysis, analyse, evaluate
from mnist_cnn.models import average_over_shifts, count_parameters
from mnist_cnn.plots import (
    confusion_matrix_figure,
    image_grid_figure,
    misclassified_figure,
    predictions_figure,
    reliability_figure,
    training_curves_figure,
)
from mnist_cnn.run_folder import (
    EVALUATION_FILE,
    MODEL_FILE,
    point_latest_at,
    save_figure,
    save_model,
    write_config,
    write_history,
    write_metrics,
)
from mnist_cnn.training import (
    BEST_MODEL_FILE,
    HISTORY_COLUMNS,
    Checkpoints,
    EpochLineLogger,
    train,
)

if TYPE_CHECKING:
    import keras

GRID_SIZE = 25  # the tutorial draws the first 25 images
GALLERY_SIZE = 24  # worst errors shown in misclassified.png


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    analysis: Analysis


def describe_data(dataset: Dataset, path: Path | None = None) -> dict[str, Any]:
    return {
        "source": dataset.source,
        "path": str(path) if path is not None else None,  # what --resume loads again
        "class_names": list(dataset.class_names),
        "train_count": len(dataset.train_images),
        "test_count": len(dataset.test_images),
    }


def train_run(
    config: TrainConfig,
    dataset: Dataset,
    run_dir: Path,
    *,
    data_path: Path | None = None,
    resume: bool = False,
    keep: str = "last",
    progress_bar: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Train ``config`` on ``dataset`` and fill ``run_dir`` with every artefact.

    ``resume`` continues an interrupted run from its last completed epoch.
    ``keep``: "last" makes model.keras the final epoch's model, "best" the
    epoch with the best validation accuracy (best.keras is kept either way when
    there is a validation split). ``progress_bar``: Keras's bar (for a
    terminal) instead of one line per epoch. ``callbacks`` go to every ``fit``.
    """
    if keep not in ("last", "best"):
        raise MnistCnnError(f"--keep must be best or last, got {keep!r}")
    run_dir.mkdir(parents=True, exist_ok=True)
    names = dataset.class_names
    if not resume:
        write_config(run_dir, config, describe_data(dataset, data_path))
        save_figure(
            image_grid_figure(
                dataset.train_images[:GRID_SIZE],
                [f"label {names[label]}" for label in dataset.train_labels[:GRID_SIZE]],
            ),
            run_dir / "samples.png",
        )
    point_latest_at(run_dir)

    checkpoints = Checkpoints(run_dir)
    progress = [] if progress_bar else [EpochLineLogger(config.epochs, log)]
    result = train(
        config,
        dataset,
        checkpoints=checkpoints,
        resume=resume,
        callbacks=[*progress, *callbacks],
        verbose=1 if progress_bar else 0,
        log=log,
    )
    model = result.model
    best_epoch = checkpoints.best_epoch()
    if keep == "best" and best_epoch is not None:
        from mnist_cnn.engines import load_model

        model = average_over_shifts(load_model(run_dir / BEST_MODEL_FILE), config.test_time_views)
    save_model(model, run_dir / MODEL_FILE)
    write_history(run_dir, result.history, HISTORY_COLUMNS)

    evaluation = evaluate(model, dataset.test_images, dataset.test_labels)
    predictions = evaluation.predictions
    first_predicted = int(predictions.classes[0])
    metrics = {
        "preset": config.preset,
        "test_loss": evaluation.loss,
        "test_accuracy": evaluation.accuracy,
        "test_count": len(evaluation.labels),
        "train_seconds": result.train_seconds,
        "epochs": len(result.history),
        "kept": keep if best_epoch is not None else "last",
        "best_validation_epoch": best_epoch,
        "resumed_from_epoch": result.resumed_from_epoch,
        "parameters": count_parameters(model),
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
    analysis = analyse(evaluation, names)
    write_evaluation(run_dir, analysis, dataset.test_images)
    write_report(run_dir)
    return RunSummary(run_dir=run_dir, metrics=metrics, analysis=analysis)


def check_model_fits_data(model: Any, dataset: Dataset, model_name: str) -> None:
    """The model must answer as many classes as the dataset has."""
    model_classes = int(model.output_shape[-1])
    if model_classes != dataset.num_classes:
        raise MnistCnnError(
            f"{model_name}: the model has {model_classes} classes but the data "
            f"({dataset.source}) has {dataset.num_classes}"
        )


def evaluate_model(model: Any, dataset: Dataset, model_name: str) -> Analysis:
    """Evaluate ``model`` on the test set and analyse its errors."""
    check_model_fits_data(model, dataset, model_name)
    evaluation = evaluate(model, dataset.test_images, dataset.test_labels)
    return analyse(evaluation, dataset.class_names)


def write_evaluation(out_dir: Path, analysis: Analysis, test_images: Any) -> list[Path]:
    """evaluation.json, confusion_matrix.png, misclassified.png and calibration.png."""
    predictions = analysis.evaluation.predictions
    worst = analysis.worst_errors[:GALLERY_SIZE]
    calibration = analysis.calibration
    written = [
        out_dir / EVALUATION_FILE,
        out_dir / "confusion_matrix.png",
        out_dir / "misclassified.png",
        out_dir / "calibration.png",
    ]
    write_json_atomic(written[0], analysis.to_dict())
    save_figure(confusion_matrix_figure(analysis.confusion, analysis.class_names), written[1])
    save_figure(
        misclassified_figure(
            test_images[worst],
            analysis.evaluation.labels[worst],
            predictions.classes[worst],
            predictions.confidences[worst],
            analysis.class_names,
        ),
        written[2],
    )
    save_figure(
        reliability_figure(
            calibration.bin_edges,
            calibration.bin_confidence,
            calibration.bin_accuracy,
            calibration.bin_count,
            calibration.expected_calibration_error,
        ),
        written[3],
    )
    return written


def evaluate_run(
    run_or_model: Path, dataset: Dataset, out_dir: Path | None = None
) -> tuple[Analysis, Path]:
    """Load a run's model, evaluate and analyse it, and write the files into ``out_dir``.

    ``out_dir`` defaults to the run folder (or the model file's folder).
    """
    from mnist_cnn.engines import load_model
    from mnist_cnn.run_folder import resolve_model_path

    model_path = resolve_model_path(run_or_model)
    model = load_model(model_path)
    analysis = evaluate_model(model, dataset, str(model_path))
    out_dir = out_dir or model_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    write_evaluation(out_dir, analysis, dataset.test_images)
    return analysis, out_dir


def write_report(run_dir: Path) -> Path:
    """Render ``report.html`` into the run folder, atomically."""
    from mnist_cnn.atomic_files import write_text_atomic
    from mnist_cnn.report import render_report
    from mnist_cnn.run_folder import REPORT_FILE

    path = run_dir / REPORT_FILE
    write_text_atomic(path, render_report(run_dir))
    return path
