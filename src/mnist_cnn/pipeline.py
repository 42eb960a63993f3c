"""The whole tutorial for one run: train, evaluate, predict, draw, and keep it all.

``train_run`` is what ``mnist-cnn train`` does and ``resume_run`` what
``mnist-cnn train --resume`` does: each owns its run folder for the whole
training (see ``run_folder.RunFolder.owned``), fills it, and returns a summary
for the caller to report. ``evaluate_run`` and ``write_report`` redo the last
steps for an existing run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnist_cnn.config import TrainConfig
from mnist_cnn.data import Dataset, load_mnist
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.evaluation import EVALUATION_BATCH, Analysis, analyse, evaluate
from mnist_cnn.models import (
    average_over_shifts,
    count_parameters,
    ensemble_model,
    resolve_precision,
)
from mnist_cnn.run_folder import RunFolder

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)
GRID_SIZE = 25  # the tutorial draws the first 25 images
GALLERY_SIZE = 24  # worst errors shown in misclassified.png
# Worst errors explained in misclassified_why.png: two rows of six, each 169 occluded
# copies (explain.OCCLUSION_*) through the model's views (845 passes of the fast net),
# a fraction of a second.
EXPLAINED_ERRORS = 12
# Test images classified between two progress reports: prediction's own batch size.
EVALUATION_FILES = 5  # evaluation.json and four figures
# progress(done, total) in steps; the CLI draws it as a bar.
Progress = Callable[[int, int], None]
KEEP_CHOICES = ("last", "best")


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    analysis: Analysis


def describe_data(dataset: Dataset, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What config.json records of the data: enough for --resume to load it again."""
    return {
        "source": dataset.source,
        "path": str(Path(path).resolve()) if path is not None else None,
        "class_names": list(dataset.class_names),
        "train_count": len(dataset.train_images),
        "test_count": len(dataset.test_images),
    }


def train_run(
    config: TrainConfig,
    dataset: Dataset,
    run_dir: str | os.PathLike[str],
    *,
    data_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    keep: str = "last",
    progress_bar: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    log: Callable[[str], None] = logger.info,
) -> RunSummary:
    """Train ``config`` on ``dataset`` and fill ``run_dir`` with every artefact.

    A fresh run needs an empty or new ``run_dir``; ``resume`` continues the run
    there from its last completed epoch. ``keep``: "last" makes model.keras the
    final epoch's model, "best" the epoch with the best validation accuracy
    (best.keras is kept either way when there is a validation split).
    ``progress_bar``: Keras's bar (for a terminal) instead of one line per
    epoch. ``callbacks`` go to every ``fit``.
    """
    from mnist_cnn.training import EpochLineLogger, train

    if keep not in KEEP_CHOICES:
        raise MnistCnnError(f"keep must be best or last, got {keep!r}")
    config = resolve_precision(config)  # config.json names the arithmetic the run used
    with RunFolder(run_dir).owned(resume=resume) as run:
        if not resume:
            run.write_config(config, describe_data(dataset, data_path), keep)
            _save_samples(run, dataset)
        progress = [] if progress_bar else [EpochLineLogger(config.epochs, log)]
        result = train(
            config,
            dataset,
            checkpoints=run.checkpoints,
            resume=resume,
            callbacks=[*progress, *callbacks],
            verbose=1 if progress_bar else 0,
            log=log,
        )
        model, best_epoch = result.model, _best_epochs(run, config)
        if keep == "best" and best_epoch is not None:
            model = _best_model(run, config)
        run.save_model(model)
        if config.ensemble > 1:
            # Each member's checkpoints keep its own history; the run's is their mean.
            run.write_history(result.history)
        metrics = {
            "preset": config.preset,
            "train_seconds": result.train_seconds,
            "epochs": len(result.history),
            "kept": keep if best_epoch is not None else "last",
            "best_validation_epoch": best_epoch,
            "resumed_from_epoch": result.resumed_from_epoch,
            "parameters": count_parameters(model),
        }
        analysis = write_results(run, model, dataset, result.history, metrics)
        # Only a finished run becomes "latest": predict and serve keep a model meanwhile.
        run.point_latest_at()
    return RunSummary(run_dir=run.path, metrics=run.read_metrics(), analysis=analysis)


def _best_epochs(run: RunFolder, config: TrainConfig) -> int | list[int] | None:
    """The epoch with the best validation accuracy; one per member for an ensemble.

    None when there was no validation split (so there is no best epoch).
    """
    if config.ensemble == 1:
        return run.checkpoints.best_epoch()
    epochs = [member.best_epoch() for member in run.checkpoints.members()]
    known = [epoch for epoch in epochs if epoch is not None]
    return known if known and len(known) == len(epochs) else None


def _best_model(run: RunFolder, config: TrainConfig) -> keras.Model:
    """The run's model rebuilt from each network's best validation epoch."""
    from mnist_cnn.engines import load_model

    # load_model hands back float32 nets, also from checkpoints trained in bfloat16.
    if config.ensemble == 1:
        network = load_model(run.best_model_file)
    else:
        # Each member is kept at its own best epoch, as a lone model would be.
        network = ensemble_model(
            [load_model(member.run.best_model_file) for member in run.checkpoints.members()]
        )
    return average_over_shifts(network, config.test_time_views)


def resume_run(
    run_dir: str | os.PathLike[str],
    *,
    keep: str | None = None,
    progress_bar: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    log: Callable[[str], None] = logger.info,
) -> RunSummary:
    """Continue an interrupted run with its own settings, data and ``keep`` choice.

    ``keep`` overrides the choice the run was started with.
    """
    run = RunFolder(run_dir)
    stored = run.read_config()
    run.checkpoints.require_saved()  # before the data is loaded: a quick, clear refusal
    config = TrainConfig.from_dict(stored.get("config", {}))
    data = stored.get("data") or {}
    dataset = load_mnist(data.get("path"), class_names=data.get("class_names"))
    log(describe_dataset(dataset))
    return train_run(
        config,
        dataset,
        run.path,
        data_path=data.get("path"),
        resume=True,
        keep=keep or stored.get("keep", "last"),
        progress_bar=progress_bar,
        callbacks=callbacks,
        log=log,
    )


def describe_dataset(dataset: Dataset) -> str:
    """Two lines for the console: where the data came from, and its shapes."""
    return (
        f"data: {dataset.source}\n"
        f"train images {dataset.train_images.shape}, test images {dataset.test_images.shape}, "
        f"{dataset.num_classes} classes"
    )


def _save_samples(run: RunFolder, dataset: Dataset) -> None:
    from mnist_cnn.plots import image_grid_figure

    names = dataset.class_names
    figure = image_grid_figure(
        dataset.train_images[:GRID_SIZE],
        [f"label {names[label]}" for label in dataset.train_labels[:GRID_SIZE]],
    )
    run.save_figure(figure, "samples")


def write_results(
    run: RunFolder,
    model: Any,
    dataset: Dataset,
    history: Sequence[dict[str, float]],
    metrics: dict[str, Any],
) -> Analysis:
    """The tutorial's last steps: evaluate, predict the first images, plot, report."""
    from mnist_cnn.plots import predictions_figure, training_curves_figure

    names = dataset.class_names
    evaluation = evaluate(model, dataset.test_images, dataset.test_labels)
    predictions = evaluation.predictions
    first_predicted = int(predictions.classes[0])
    run.write_metrics(
        {
            "preset": metrics["preset"],
            "test_loss": evaluation.loss,
            "test_accuracy": evaluation.accuracy,
            "test_count": len(evaluation.labels),
            **metrics,
            "first_test_image": {
                "predicted": names[first_predicted],
                "actual": names[int(dataset.test_labels[0])],
                "confidence": float(predictions.confidences[0]),
            },
        }
    )
    run.save_figure(
        predictions_figure(
            dataset.test_images[:GRID_SIZE],
            predictions.classes[:GRID_SIZE],
            predictions.confidences[:GRID_SIZE],
            dataset.test_labels[:GRID_SIZE],
            names,
        ),
        "predictions",
    )
    run.save_figure(training_curves_figure(history), "training_curves")
    analysis = analyse(evaluation, names)
    write_evaluation(run, analysis, dataset.test_images, model)
    write_report(run.path)
    return analysis


def check_model_fits_data(model: Any, dataset: Dataset, model_name: str) -> None:
    """The model must answer as many classes as the dataset has."""
    model_classes = int(model.output_shape[-1])
    if model_classes != dataset.num_classes:
        raise MnistCnnError(
            f"{model_name}: the model has {model_classes} classes but the data "
            f"({dataset.source}) has {dataset.num_classes}"
        )


def write_evaluation(
    out: RunFolder,
    analysis: Analysis,
    test_images: Any,
    model: Any,
    *,
    on_file_written: Callable[[], None] | None = None,
) -> list[Path]:
    """evaluation.json, confusion_matrix.png, misclassified.png, misclassified_why.png
    and calibration.png.

    ``model`` explains the worst errors. ``on_file_written`` is called after
    each of the ``EVALUATION_FILES`` files.
    """
    from mnist_cnn.atomic_files import write_json_atomic
    from mnist_cnn.plots import confusion_matrix_figure, misclassified_figure, reliability_figure

    predictions = analysis.evaluation.predictions
    worst = analysis.worst_errors[:GALLERY_SIZE]
    calibration = analysis.calibration
    figures = {
        "confusion_matrix": lambda: confusion_matrix_figure(
            analysis.confusion, analysis.class_names
        ),
        "misclassified": lambda: misclassified_figure(
            test_images[worst],
            analysis.evaluation.labels[worst],
            predictions.classes[worst],
            predictions.confidences[worst],
            analysis.class_names,
        ),
        "misclassified_why": lambda: _explained_errors_figure(
            model, test_images, analysis, analysis.worst_errors[:EXPLAINED_ERRORS]
        ),
        "calibration": lambda: reliability_figure(
            calibration.bin_edges,
            calibration.bin_confidence,
            calibration.bin_accuracy,
            calibration.bin_count,
            calibration.expected_calibration_error,
        ),
    }
    written: list[Path] = []

    def wrote(path: Path) -> None:
        written.append(path)
        if on_file_written is not None:
            on_file_written()

    write_json_atomic(out.evaluation_file, analysis.to_dict())
    wrote(out.evaluation_file)
    for name, draw in figures.items():
        wrote(out.save_figure(draw(), name))
    return written


def _explained_errors_figure(model: Any, test_images: Any, analysis: Analysis, worst: Any) -> Any:
    """The most confident wrong answers, each with where it leaned for the wrong class."""
    from mnist_cnn.explain import saliency_maps
    from mnist_cnn.plots import WRONG_COLOUR, saliency_figure

    predictions = analysis.evaluation.predictions
    names = analysis.class_names
    if len(worst) == 0:
        return saliency_figure(test_images[:0], test_images[:0], [], note="No misclassified images")
    predicted = predictions.classes[worst]
    titles = [
        f"{names[truth]} → {names[guess]} ({100 * confidence:.0f}%)"
        for truth, guess, confidence in zip(
            analysis.evaluation.labels[worst],
            predicted,
            predictions.confidences[worst],
            strict=True,
        )
    ]
    return saliency_figure(
        test_images[worst],
        saliency_maps(model, test_images[worst], predicted),
        titles,
        colours=[WRONG_COLOUR] * len(worst),
    )


def evaluate_run(
    run_or_model: str | os.PathLike[str],
    dataset: Dataset,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    use_run_class_names: bool = True,
    progress: Progress | None = None,
) -> tuple[Analysis, Path]:
    """Load a run's model, evaluate and analyse it, and write the files into ``out_dir``.

    ``out_dir`` defaults to the run folder (or the model file's folder).
    ``use_run_class_names``: show the names the run was trained with (e.g.
    Fashion-MNIST's) rather than the dataset's. ``progress(done, total)`` is
    called as the work goes: loading the model, each thousand test images,
    the analysis, and each written file are a step each.
    """
    from mnist_cnn.engines import load_model, resolve_keras_path

    batches = max(1, math.ceil(len(dataset.test_images) / EVALUATION_BATCH))
    total = 1 + batches + 1 + EVALUATION_FILES
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    model_path = resolve_keras_path(run_or_model)
    model = load_model(model_path)
    logger.debug("evaluating %s on %d test images", model_path, len(dataset.test_images))
    step()
    if use_run_class_names:
        names = RunFolder(model_path.parent).read_class_names(dataset.num_classes)
        dataset = dataclasses.replace(dataset, class_names=names)
    check_model_fits_data(model, dataset, str(model_path))
    evaluation = evaluate(model, dataset.test_images, dataset.test_labels, on_batch=step)
    analysis = analyse(evaluation, dataset.class_names)
    step()
    out = RunFolder(out_dir if out_dir is not None else model_path.parent)
    write_evaluation(out, analysis, dataset.test_images, model, on_file_written=step)
    return analysis, out.path


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Render ``report.html`` into the run folder, atomically."""
    from mnist_cnn.atomic_files import write_text_atomic
    from mnist_cnn.report import render_report

    run = RunFolder(run_dir)
    write_text_atomic(run.report_file, render_report(run.path))
    return run.report_file
