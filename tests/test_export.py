"""ONNX and SavedModel export: parity with Keras, and a predictor without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.engines import load_model, load_onnx_classifier
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.export import engine_agreement, export_model
from mnist_cnn.prediction import predict_probabilities
from mnist_cnn.preprocess import to_model_input
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def onnx_path(trained_run):
    return export_model(trained_run.run_dir, "onnx").path


def test_onnx_matches_keras_on_the_whole_test_set(onnx_path, trained_run, mnist):
    images = to_model_input(mnist.test_images)
    keras_output = predict_probabilities(load_model(trained_run.run_dir), images)
    onnx_output = load_onnx_classifier(onnx_path).probabilities(images)
    difference, agreement = engine_agreement(keras_output, onnx_output)
    assert onnx_output.shape == (10_000, 10)
    assert difference <= 1e-5
    assert agreement == 1.0


@pytest.mark.slow
def test_a_model_averaged_over_shifted_views_exports_with_parity(trained_run, mnist, tmp_path):
    from mnist_cnn.models import average_over_shifts, net_over_views
    from mnist_cnn.run_folder import save_model

    # The run's own model averages 5 views of its net: 9 views of that net instead.
    net, _ = net_over_views(load_model(trained_run.run_dir))
    save_model(average_over_shifts(net, 9), tmp_path / "views.keras")
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


def test_saved_model_export_answers_as_keras_does(trained_run, tmp_path, mnist):
    import tensorflow as tf

    out = export_model(trained_run.run_dir, "saved_model", tmp_path / "saved").path
    assert (out / "saved_model.pb").exists()
    images = to_model_input(mnist.test_images[:500])
    keras_output = predict_probabilities(load_model(trained_run.run_dir), images)
    loaded = tf.saved_model.load(str(out))  # kept: its functions hold only weak references
    saved_output = loaded.serve(tf.constant(images)).numpy()
    difference, agreement = engine_agreement(keras_output, saved_output)
    assert saved_output.shape == (500, 10)
    assert difference <= 1e-5 and agreement == 1.0
    # Replacing an export works too, and checks itself when given images.
    result = export_model(
        str(trained_run.run_dir), "saved_model", str(out), check_images=mnist.test_images[:200]
    )
    assert result.path == out and (out / "saved_model.pb").exists()
    assert result.checked_images == 200 and result.agreement == 1.0
    assert result.largest_difference <= 1e-5
    assert not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.glob(".old-*"))


def test_onnx_export_checks_itself_when_given_images(trained_run, tmp_path, mnist):
    out = tmp_path / "checked.onnx"
    result = export_model(trained_run.run_dir, "onnx", out, check_images=mnist.test_images[:300])
    assert result.path == out and out.exists()
    assert result.checked_images == 300 and result.agreement == 1.0
    assert 0 <= result.largest_difference <= 1e-5
    assert str(result) == str(out)  # still usable where the path was


@pytest.mark.parametrize("export_format", ["onnx", "saved_model"])
def test_an_export_that_disagrees_is_refused_and_not_written(
    trained_run, tmp_path, mnist, monkeypatch, export_format
):
    # An exporter that went wrong: its answers are off by 0.01 in every probability.
    def off_by_a_bit(path):
        def probabilities(model_inputs):
            return predict_probabilities(load_model(trained_run.run_dir), model_inputs) + 0.01

        return probabilities

    monkeypatch.setattr("mnist_cnn.export._onnx_probability_function", off_by_a_bit)
    monkeypatch.setattr("mnist_cnn.export._saved_model_probability_function", off_by_a_bit)
    out = tmp_path / "export"
    with pytest.raises(MnistCnnError) as raised:
        export_model(trained_run.run_dir, export_format, out, check_images=mnist.test_images[:50])
    message = str(raised.value)
    assert message.startswith(f"{out}: the {export_format} export disagrees with the Keras model")
    assert "largest probability difference 1.0e-02, over the 1e-04 allowed" in message
    assert "\n" not in message
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("export_format", "blocked", "expected"),
    [
        ("saved_model", "tensorflow", "needs tensorflow (tensorflow is not installed): pip"),
        ("onnx", "tf2onnx", "needs tensorflow and tf2onnx (tf2onnx is not installed): pip install"),
    ],
)  # fmt: skip
def test_export_without_its_packages_says_what_to_install(
    trained_run, monkeypatch, export_format, blocked, expected
):
    monkeypatch.setitem(sys.modules, blocked, None)  # as if it were not installed
    with pytest.raises(MnistCnnError) as raised:
        export_model(trained_run.run_dir, export_format)
    assert f"exporting to {export_format} {expected}" in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.slow
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
    assert "no model.onnx in this run folder; make it with 'mnist-cnn export" in result.stderr


def test_broken_onnx_file_is_refused(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a protobuf")
    result = run_cli("predict", "--engine", "onnx", "--model", str(bad), str(tmp_path))
    assert result.returncode == 2
    assert "not a loadable ONNX model" in result.stderr


@pytest.mark.parametrize("kind", ["folder of other files", "file"])
def test_a_saved_model_never_replaces_what_is_not_one(trained_run, tmp_path, kind):
    target = tmp_path / "victim"
    if kind == "file":
        target.write_text("precious")
    else:
        (target / "sub").mkdir(parents=True)
        (target / "sub" / "notes.txt").write_text("precious")
    with pytest.raises(MnistCnnError, match="victim: "):
        export_model(trained_run.run_dir, "saved_model", target)
    kept = target if kind == "file" else target / "sub" / "notes.txt"
    assert kept.read_text() == "precious"
