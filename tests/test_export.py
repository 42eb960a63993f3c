"""ONNX and SavedModel export: parity with Keras, and a predictor without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.engines import load_model, load_onnx_classifier
from mnist_cnn.export import engine_agreement, export_model
from mnist_cnn.prediction import predict_probabilities
from mnist_cnn.preprocess import to_model_input
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def onnx_path(trained_run):
    return export_model(trained_run.run_dir, "onnx")


def test_onnx_matches_keras_on_the_whole_test_set(onnx_path, trained_run, mnist):
    images = to_model_input(mnist.test_images)
    keras_output = predict_probabilities(load_model(trained_run.run_dir), images)
    onnx_output = load_onnx_classifier(onnx_path).probabilities(images)
    difference, agreement = engine_agreement(keras_output, onnx_output)
    assert onnx_output.shape == (10_000, 10)
    assert difference <= 1e-5
    assert agreement == 1.0


def test_a_model_averaged_over_shifted_views_exports_with_parity(trained_run, mnist, tmp_path):
    from mnist_cnn.models import average_over_shifts
    from mnist_cnn.run_folder import save_model

    save_model(average_over_shifts(load_model(trained_run.run_dir), 9), tmp_path / "views.keras")
    onnx_file = export_model(tmp_path / "views.keras", "onnx", tmp_path / "views.onnx")
    images = to_model_input(mnist.test_images[:1000])
    keras_output = predict_probabilities(load_model(tmp_path / "views.keras"), images)
    difference, agreement = engine_agreement(
        keras_output, load_onnx_classifier(onnx_file).probabilities(images)
    )
    assert difference <= 1e-5 and agreement == 1.0


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_onnx_takes_any_batch_size(onnx_path, mnist, batch):
    output = load_onnx_classifier(onnx_path).probabilities(
        to_model_input(mnist.test_images[:batch])
    )
    assert output.shape == (batch, 10)
    np.testing.assert_allclose(output.sum(axis=1), 1.0, atol=1e-5)


def test_saved_model_export(trained_run, tmp_path):
    out = export_model(trained_run.run_dir, "saved_model", tmp_path / "saved")
    assert (out / "saved_model.pb").exists()
    export_model(trained_run.run_dir, "saved_model", out)  # replacing an export works too
    assert (out / "saved_model.pb").exists()
    assert not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.glob(".old-*"))


def test_export_cli_checks_parity(trained_run, tmp_path):
    out = tmp_path / "digits.onnx"
    result = run_cli("export", str(trained_run.run_dir), "--out", str(out), "--check", "500")
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    assert (
        "checked on 500 test images" in result.stdout and "same digit for 100.00%" in result.stdout
    )
    assert "FutureWarning" not in result.stderr


NO_TENSORFLOW = (
    "import sys\n"
    "from mnist_cnn.cli import main\n"
    "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exit:\n    code = exit.code\n"
    "heavy = sorted(name for name in ('tensorflow', 'keras') if name in sys.modules)\n"
    "print('exit', code, 'heavy', heavy, file=sys.stderr)\n"
)


def test_onnx_predict_never_imports_tensorflow(onnx_path, trained_run, tmp_path, mnist):
    picture = tmp_path / "seven.png"
    Image.fromarray(255 - mnist.test_images[0]).resize((140, 140)).save(picture)
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, "predict", "--engine", "onnx", "--json",
         "--model", str(trained_run.run_dir), str(picture)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "exit 0 heavy []" in result.stderr, result.stderr
    assert json.loads(result.stdout)[0]["name"] == "7"


def test_help_never_imports_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, "--help"], capture_output=True, text=True
    )
    assert "exit 0 heavy []" in result.stderr, result.stderr


def test_onnx_engine_without_export_says_how_to_make_one(tmp_path):
    result = run_cli("predict", "--engine", "onnx", "--model", str(tmp_path), str(tmp_path))
    assert result.returncode == 2
    assert "no model.onnx; make it with 'mnist-cnn export" in result.stderr


def test_broken_onnx_file_is_refused(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a protobuf")
    result = run_cli("predict", "--engine", "onnx", "--model", str(bad), str(tmp_path))
    assert result.returncode == 2
    assert "not a loadable ONNX model" in result.stderr
