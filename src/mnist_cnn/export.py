"""Export a trained model for serving: ONNX (with a TensorFlow-free predictor) or SavedModel.

The ONNX file comes from Keras's own ``model.export(format="onnx")`` (tf2onnx
under the TensorFlow backend). It takes a dynamic batch of (N, 28, 28, 1)
float32 images in [0, 1] and returns (N, classes) probabilities. Loading it
needs only ONNX Runtime, so ``--engine onnx`` starts without TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn.errors import MnistCnnError
from mnist_cnn.files import atomic_path
from mnist_cnn.predict import Classifier

ONNX_FILE = "model.onnx"
SAVED_MODEL_FOLDER = "saved_model"
FORMATS = ("onnx", "saved_model")


def export_model(run_or_model: Path, export_format: str, out: Path | None = None) -> Path:
    """Write the model of a run (or a .keras file) as ONNX or a SavedModel; return the path."""
    from mnist_cnn.runs import load_model, resolve_model_path

    if export_format not in FORMATS:
        raise MnistCnnError(f"unknown format {export_format!r}; choose {' or '.join(FORMATS)}")
    model_path = resolve_model_path(run_or_model)
    model = load_model(model_path)
    model(np.zeros((1, 28, 28, 1), dtype=np.float32))  # Keras exports only models it has run
    if export_format == "onnx":
        out = out or model_path.parent / ONNX_FILE
        with atomic_path(out) as temporary_path, warnings.catch_warnings():
            # Keras's tf2onnx shim probes np.object, which numpy 2 warns about.
            warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
            model.export(str(temporary_path), format="onnx", verbose=False)
        return out
    out = out or model_path.parent / SAVED_MODEL_FOLDER
    _export_folder_atomically(model, out)
    return out


def _export_folder_atomically(model: Any, out: Path) -> None:
    """A SavedModel is a folder: build it beside ``out``, then swap it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        model.export(str(staging / "model"), format="tf_saved_model", verbose=False)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".old-{out.name}-", dir=out.parent))
            os.replace(out, retired / "model")
            os.replace(staging / "model", out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging / "model", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_onnx_path(run_or_model: Path) -> Path:
    if run_or_model.is_dir():
        path = run_or_model / ONNX_FILE
        if not path.exists():
            raise MnistCnnError(
                f"{run_or_model}: no {ONNX_FILE}; make it with "
                f"'mnist-cnn export {run_or_model} --format onnx'"
            )
        return path
    if not run_or_model.exists():
        raise MnistCnnError(f"{run_or_model}: no such run folder or model file")
    return run_or_model


def load_onnx_classifier(run_or_model: Path, threads: int | None = None) -> Classifier:
    """An ONNX Runtime session as a ``Classifier``. Never imports TensorFlow."""
    import onnxruntime

    from mnist_cnn.runs import read_class_names

    path = resolve_onnx_path(Path(run_or_model))
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: the CLI reports problems itself
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own error types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MnistCnnError(f"{path}: not a loadable ONNX model ({reason[:200]})") from None
    (model_input,) = session.get_inputs()
    if list(model_input.shape[1:]) != [28, 28, 1]:
        raise MnistCnnError(
            f"{path}: the model takes input of shape {tuple(model_input.shape[1:])}, "
            "expected (28, 28, 1)"
        )
    classes = int(session.get_outputs()[0].shape[-1])
    input_name = model_input.name

    def probabilities(model_inputs: np.ndarray) -> np.ndarray:
        if len(model_inputs) == 0:
            return np.zeros((0, classes), dtype=np.float32)
        (output,) = session.run(None, {input_name: model_inputs.astype(np.float32, copy=False)})
        return output

    return Classifier(
        name=str(path),
        class_names=read_class_names(path.parent, classes),
        probabilities=probabilities,
        metadata={"engine": "onnx"},
    )


def engine_agreement(
    keras_probabilities: np.ndarray, onnx_probabilities: np.ndarray
) -> tuple[float, float]:
    """(largest absolute probability difference, share of images with the same argmax)."""
    difference = float(np.max(np.abs(keras_probabilities - onnx_probabilities)))
    agreement = float(
        np.mean(keras_probabilities.argmax(axis=1) == onnx_probabilities.argmax(axis=1))
    )
    return difference, agreement
