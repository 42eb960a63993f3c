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

from mnist_cnn.atomic_files import atomic_path
from mnist_cnn.engines import ONNX_FILE
from mnist_cnn.errors import MnistCnnError

SAVED_MODEL_FOLDER = "saved_model"
FORMATS = ("onnx", "saved_model")


def export_model(run_or_model: Path, export_format: str, out: Path | None = None) -> Path:
    """Write the model of a run (or a .keras file) as ONNX or a SavedModel; return the path."""
    from mnist_cnn.engines import load_model
    from mnist_cnn.run_folder import resolve_model_path

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


def engine_agreement(
    keras_probabilities: np.ndarray, onnx_probabilities: np.ndarray
) -> tuple[float, float]:
    """(largest absolute probability difference, share of images with the same argmax)."""
    difference = float(np.max(np.abs(keras_probabilities - onnx_probabilities)))
    agreement = float(
        np.mean(keras_probabilities.argmax(axis=1) == onnx_probabilities.argmax(axis=1))
    )
    return difference, agreement
