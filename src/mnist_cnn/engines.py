"""Loaded models for inference, whatever runs them: Keras or ONNX Runtime.

A ``Classifier`` is a name, the class names, and a function from model inputs
(N, 28, 28, 1) float32 in [0, 1] to (N, classes) probabilities. ``predict``
and ``serve`` use only that, so the ONNX engine never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_cnn.errors import MnistCnnError

if TYPE_CHECKING:
    import keras

ONNX_FILE = "model.onnx"

ProbabilityFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Classifier:
    """A loaded model, whatever runs it."""

    name: str  # where it came from, for messages
    class_names: tuple[str, ...]
    probabilities: ProbabilityFunction  # (N, 28, 28, 1) float32 -> (N, classes) float32
    metadata: dict[str, Any] = field(default_factory=dict)


def keras_probability_function(
    model: keras.Model, batch_size: int = 1000, *, compiled: bool = False
) -> ProbabilityFunction:
    """Calls the model directly on batches; ``compiled``: as one graph on TensorFlow.

    ``model.predict`` builds a data pipeline per call, which costs milliseconds
    for a single image; a direct call does not. Run eagerly, though, every layer
    is dispatched from Python: for one image, 2.9 ms for the fast net and 116 ms
    for best's 5-model, 5-view ensemble, against 0.45 and 5.7 ms as a
    ``tf.function`` (AMD EPYC, 2 cores). Tracing that graph costs up to a
    second or so, which pays only when the function is kept and called again
    (a loaded classifier), not for one call. ``reduce_retracing`` traces once
    more for a new batch size, then reuses one graph for all sizes.
    """
    import keras

    def call(batch: np.ndarray) -> Any:
        return model(batch, training=False)

    if compiled and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        call = tf.function(call, reduce_retracing=True)

    def probabilities(model_inputs: np.ndarray) -> np.ndarray:
        batches = [
            np.asarray(call(model_inputs[start : start + batch_size]))
            for start in range(0, len(model_inputs), batch_size)
        ]
        if not batches:
            return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
        return np.concatenate(batches).astype(np.float32)

    return probabilities


def load_model(run_or_model: Path) -> Any:
    """Load a ``.keras`` model in Keras's safe mode (no Lambda layers, no code).

    The input must be (N, 28, 28, 1); anything else is refused with one line.
    """
    import keras

    from mnist_cnn.run_folder import resolve_model_path

    model_path = resolve_model_path(Path(run_or_model))
    try:
        model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MnistCnnError(f"{model_path}: not a loadable Keras model ({reason[:200]})") from None
    input_shape = tuple(model.input_shape[1:])
    if input_shape != (28, 28, 1):
        raise MnistCnnError(
            f"{model_path}: the model takes input of shape {input_shape}, expected (28, 28, 1)"
        )
    return model


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

    from mnist_cnn.run_folder import RunFolder

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
        class_names=RunFolder(path.parent).read_class_names(classes),
        probabilities=probabilities,
        metadata={"engine": "onnx"},
    )


def load_classifier(run_or_model: Path, engine: str = "keras") -> Classifier:
    """Load a run's model (or a model file) for the chosen engine: keras or onnx.

    The ONNX engine runs on ONNX Runtime and never imports TensorFlow.
    """
    from mnist_cnn.run_folder import RunFolder, resolve_model_path

    if engine == "onnx":
        return load_onnx_classifier(run_or_model)
    if engine != "keras":
        raise MnistCnnError(f"unknown engine {engine!r}; choose keras or onnx")
    model_path = resolve_model_path(run_or_model)
    model = load_model(model_path)
    classes = int(model.output_shape[-1])
    return Classifier(
        name=str(model_path),
        class_names=RunFolder(model_path.parent).read_class_names(classes),
        probabilities=keras_probability_function(model, compiled=True),
    )
