"""Evaluation metrics against hand-computed values, and evaluate on a real trained run."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.evaluation import (
    analyse,
    calibration,
    evaluation_from_predictions,
    most_confused_pairs,
)
from mnist_cnn.prediction import Predictions
from tests.helpers import run_cli, run_cli_here


def predictions_for(classes, confidences, num_classes):
    """Predictions whose argmax is ``classes`` with the given top probability."""
    probabilities = np.zeros((len(classes), num_classes), dtype=np.float32)
    for row, (cls, confidence) in enumerate(zip(classes, confidences, strict=True)):
        probabilities[row] = (1 - confidence) / (num_classes - 1)
        probabilities[row, cls] = confidence
    return Predictions(
        probabilities=probabilities,
        classes=np.asarray(classes),
        confidences=np.asarray(confidences, dtype=np.float32),
    )


@pytest.fixture
def fixed_analysis():
    # Four classes. Class 3 never occurs in the labels; class 2 is never predicted.
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 1, 1, 1, 1, 0, 3])
    confidences = [0.9, 0.8, 0.6, 0.7, 0.95, 0.55, 0.85, 0.4]
    evaluation = evaluation_from_predictions(predictions_for(predicted, confidences, 4), labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero warnings allowed
        return analyse(evaluation, ("a", "b", "c", "d"))


def test_per_class_metrics_match_hand_computed_values(fixed_analysis):
    metrics = fixed_analysis.class_metrics
    # Class a: predicted 3 times (2 right) of 3 true -> P 2/3, R 2/3.
    # Class b: predicted 4 times (2 right) of 2 true -> P 1/2, R 1.
    # Class c: never predicted -> P 0 (not a warning), R 0 of 3.
    # Class d: predicted once wrongly, never true -> P 0, R 0, support 0.
    np.testing.assert_allclose(metrics.precision, [2 / 3, 1 / 2, 0, 0])
    np.testing.assert_allclose(metrics.recall, [2 / 3, 1, 0, 0])
    np.testing.assert_allclose(metrics.f1, [2 / 3, 2 / 3, 0, 0])
    assert metrics.support.tolist() == [3, 2, 3, 0]
    assert fixed_analysis.evaluation.accuracy == pytest.approx(4 / 8)


def test_confusion_matrix_sums_to_the_test_size(fixed_analysis):
    assert fixed_analysis.confusion.sum() == 8
    assert fixed_analysis.confusion.tolist() == [
        [2, 1, 0, 0],
        [0, 2, 0, 0],
        [1, 1, 0, 1],
        [0, 0, 0, 0],
    ]


def test_most_confused_pairs_are_ordered_by_count_then_class():
    confusion = np.array([[5, 2, 7], [2, 9, 0], [1, 7, 3]])
    assert most_confused_pairs(confusion) == [(0, 2, 7), (2, 1, 7), (0, 1, 2), (1, 0, 2), (2, 0, 1)]
    assert most_confused_pairs(confusion, top=2) == [(0, 2, 7), (2, 1, 7)]


def test_worst_errors_are_the_most_confident_wrong_answers(fixed_analysis):
    # Wrong: index 2 (0.6), 5 (0.55), 6 (0.85), 7 (0.4).
    assert fixed_analysis.worst_errors.tolist() == [6, 2, 5, 7]


def test_expected_calibration_error_by_hand():
    confidences = np.array([0.95, 0.95, 0.65, 0.65])
    correct = np.array([True, True, True, False])
    result = calibration(confidences, correct, bins=10)
    # Bin (0.9, 1]: accuracy 1, confidence .95 -> gap .05; bin (0.6, 0.7]: .5 vs .65 -> .15.
    assert result.expected_calibration_error == pytest.approx(0.5 * 0.05 + 0.5 * 0.15)
    assert result.bin_count.sum() == 4
    assert np.isnan(result.bin_accuracy[0])


def test_evaluation_json_is_plain_json(fixed_analysis):
    text = json.dumps(fixed_analysis.to_dict(), allow_nan=False)
    restored = json.loads(text)
    assert restored["most_confused"][0] == {"true": "a", "predicted": "b", "count": 1}
    assert restored["errors"] == 4


def test_train_run_evaluates_and_writes_the_figures(trained_run):
    run_dir = trained_run.run_dir
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert sum(map(sum, evaluation["confusion_matrix"])) == 10_000
    assert evaluation["test_accuracy"] == pytest.approx(trained_run.metrics["test_accuracy"])
    counts = [pair["count"] for pair in evaluation["most_confused"]]
    assert counts == sorted(counts, reverse=True)
    for name in ("confusion_matrix.png", "misclassified.png", "calibration.png"):
        with Image.open(run_dir / name) as image:
            assert image.size[0] > 300 and image.size[1] > 300, name


@pytest.mark.slow
def test_evaluate_cli_on_a_run_prints_and_writes(trained_run, tmp_path, capsys):
    result = run_cli_here(capsys, "evaluate", str(trained_run.run_dir), "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "confusion matrix (rows true, columns predicted):" in result.stdout
    assert " → " in result.stdout and "times" in result.stdout
    accuracy = json.loads((tmp_path / "evaluation.json").read_text())["test_accuracy"]
    assert f"test accuracy {100 * accuracy:.2f}%" in result.stdout
    assert (tmp_path / "misclassified.png").stat().st_size > 0


def test_evaluate_run_folder_without_model(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    result = run_cli("evaluate", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path}: no model.keras in this run folder" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_evaluate_model_with_wrong_input_shape(tmp_path, capsys):
    import keras

    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    path = tmp_path / "cifar.keras"
    model.save(path)
    result = run_cli_here(capsys, "evaluate", str(path))
    assert result.returncode == 2
    assert "the model takes input of shape (32, 32, 3), expected (28, 28, 1)" in result.stderr


@pytest.mark.slow
def test_evaluate_data_with_other_class_count(trained_run, tmp_path, tiny_arrays, capsys):
    data = tmp_path / "three.npz"
    np.savez(data, **tiny_arrays)
    result = run_cli_here(
        capsys,
        "evaluate",
        str(trained_run.run_dir),
        "--data",
        str(data),
        "--out-dir",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert "the model has 10 classes but the data" in result.stderr
    assert "has 3" in result.stderr
    assert result.stderr.count("\n") == 1


def test_compare_prints_a_table_and_draws_the_curves(trained_run, tmp_path):
    out = tmp_path / "comparison.png"
    result = run_cli(
        "compare", str(trained_run.run_dir), str(trained_run.run_dir), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "preset", "epochs"]
    assert sum("fast-10k" in line and "fast" in line for line in lines) == 2
    assert f"{100 * trained_run.metrics['test_accuracy']:.2f}%" in result.stdout
    with Image.open(out) as image:
        assert image.size == (700, 400)


def test_compare_missing_run(tmp_path):
    result = run_cli("compare", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "nope: no such run folder" in result.stderr


def test_accuracy_is_one_definition_and_empty_is_nan():
    from mnist_cnn.evaluation import accuracy

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    assert accuracy(probabilities, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    evaluation = evaluation_from_predictions(
        Predictions.from_probabilities(probabilities), np.array([0, 1, 1])
    )
    assert evaluation.accuracy == accuracy(probabilities, np.array([0, 1, 1]))
    # No images: NaN, without numpy's "mean of empty slice" warning.
    assert np.isnan(accuracy(np.zeros((0, 2), dtype=np.float32), np.zeros(0, dtype=np.int64)))
