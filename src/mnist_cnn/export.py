"""Export a trained model for serving: ONNX (with a TensorFlow-free predictor) or SavedModel.

The ONNX file comes from Keras's own ``model.export(format="onnx")`` (tf2onnx
under the TensorFlow backend). It takes a dynamic batch of (N, 28, 28, 1)
float32 images in [0, 1] and returns (N, classes) probabilities. Loading it
needs only ONNX Runtime, so ``--engine onnx`` starts without TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn.atomic_files import atomic_path
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.preprocess import INPUT_SHAPE

FORMATS = ("onnx", "saved_model")
# The largest probability difference an export may show against Keras. tf2onnx
# stays within 1e-5 on the whole test set (tests/test_export.py); float32 sums
# in another order drift that far, an export that went wrong is off by far more.
PARITY_TOLERANCE = 1e-4
# What each format needs besides Keras, and the command that installs it.
EXPORTER_PACKAGES = {
    "onnx": (("tensorflow", "tf2onnx"), "pip install tensorflow-cpu 'mnist-cnn[onnx]'"),
    "saved_model": (("tensorflow",), "pip install tensorflow-cpu"),
}


@dataclass(frozen=True)
class ExportResult:
    """The written export and, when images were given, how closely it matches Keras.

    It is also a path (``os.fspath``, ``str``), so code that took the path
    ``export_model`` used to return keeps working.
    """

    path: Path
    checked_images: int = 0  # images compared with the Keras model; 0: not checked
    largest_difference: float | None = None  # largest absolute probability difference
    agreement: float | None = None  # share of images given the same class

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


def export_model(
    run_or_model: str | os.PathLike[str],
    export_format: str,
    out: str | os.PathLike[str] | None = None,
    *,
    check_images: np.ndarray | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> ExportResult:
    """Write the model of a run (or a .keras file) as ONNX or a SavedModel.

    ``check_images``: (N, 28, 28) uint8 images in [0, 255]. When given, the
    export is loaded back (ONNX Runtime, ``tf.saved_model.load``) and compared
    with the Keras model before it replaces anything under ``out``; a largest
    probability difference over ``tolerance`` is a ``MnistCnnError`` and leaves
    no file behind.
    """
    from mnist_cnn.engines import load_model, resolve_keras_path
    from mnist_cnn.run_folder import RunFolder

    if export_format not in FORMATS:
        raise MnistCnnError(f"unknown format {export_format!r}; choose {' or '.join(FORMATS)}")
    model_path = resolve_keras_path(run_or_model)
    inputs = None if check_images is None else _check_inputs(check_images)
    _require_exporter(export_format)
    model = load_model(model_path)
    model(np.zeros((1, *INPUT_SHAPE), dtype=np.float32))  # Keras exports only models it has run
    comparison: dict[str, Any] = {}

    def compare(exported: Callable[[np.ndarray], np.ndarray], where: Path) -> None:
        if inputs is None or len(inputs) == 0:
            return
        from mnist_cnn.engines import keras_probability_function

        difference, agreement = engine_agreement(
            keras_probability_function(model)(inputs), exported(inputs)
        )
        comparison.update(
            checked_images=len(inputs), largest_difference=difference, agreement=agreement
        )
        if not difference <= tolerance:  # also refuses NaN
            raise MnistCnnError(
                f"{where}: the {export_format} export disagrees with the Keras model on "
                f"{len(inputs)} images (largest probability difference {difference:.1e}, "
                f"over the {tolerance:.0e} allowed; same class for {100 * agreement:.2f}%); "
                "nothing was written"
            )

    if export_format == "onnx":
        out = Path(out) if out is not None else RunFolder(model_path.parent).onnx_file
        with atomic_path(out) as temporary_path:
            with warnings.catch_warnings():
                # Keras's tf2onnx shim probes np.object, which numpy 2 warns about.
                warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
                model.export(str(temporary_path), format="onnx", verbose=False)
            compare(_onnx_probability_function(temporary_path), out)
        return ExportResult(path=out, **comparison)
    out = Path(out) if out is not None else RunFolder(model_path.parent).saved_model_folder
    _export_folder_atomically(
        model, out, lambda staged: compare(_saved_model_probability_function(staged), out)
    )
    return ExportResult(path=out, **comparison)


def _check_inputs(images: np.ndarray) -> np.ndarray:
    from mnist_cnn.preprocess import to_model_input

    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != INPUT_SHAPE[:2] or images.dtype != np.uint8:
        raise MnistCnnError(
            f"check images of shape {images.shape} and dtype {images.dtype}, "
            "expected (N, 28, 28) uint8"
        )
    return to_model_input(images)


def _require_exporter(export_format: str) -> None:
    """One line naming what to install, before minutes go into loading a model."""
    packages, command = EXPORTER_PACKAGES[export_format]
    missing = [name for name in packages if not _importable(name)]
    if missing:
        raise MnistCnnError(
            f"exporting to {export_format} needs {' and '.join(packages)} "
            f"({', '.join(missing)} is not installed): {command}"
        )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
        return False


def _onnx_probability_function(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from mnist_cnn.engines import load_onnx_classifier

    return load_onnx_classifier(path).probabilities


def _saved_model_probability_function(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The SavedModel's ``serve`` endpoint (the one Keras exports), in batches."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))

    def probabilities(model_inputs: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        batches = [
            loaded.serve(tf.constant(model_inputs[start : start + batch_size])).numpy()
            for start in range(0, len(model_inputs), batch_size)
        ]
        return np.concatenate(batches).astype(np.float32)

    return probabilities


def _export_folder_atomically(model: Any, out: Path, check: Callable[[Path], None]) -> None:
    """A SavedModel is a folder: build it beside ``out``, check it, then swap it into place.

    Only an earlier SavedModel (or an empty folder) is replaced: a folder or a file
    that is something else belongs to the user and is refused, before exporting.
    """
    _require_replaceable_saved_model(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        model.export(str(staging / "model"), format="tf_saved_model", verbose=False)
        check(staging / "model")
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".old-{out.name}-", dir=out.parent))
            os.replace(out, retired / "model")
            os.replace(staging / "model", out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging / "model", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _require_replaceable_saved_model(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise MnistCnnError(f"{out}: not a folder; a SavedModel is written as a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "saved_model.pb").exists():
        raise MnistCnnError(
            f"{out}: the folder holds files that are not a SavedModel; choose another --out"
        )


def engine_agreement(
    keras_probabilities: np.ndarray, other_probabilities: np.ndarray
) -> tuple[float, float]:
    """(largest absolute probability difference, share of images with the same argmax)."""
    from mnist_cnn.evaluation import accuracy

    difference = float(np.max(np.abs(keras_probabilities - other_probabilities)))
    # Agreement is the other engine's accuracy against Keras's answers as labels.
    return difference, accuracy(other_probabilities, keras_probabilities.argmax(axis=1))
