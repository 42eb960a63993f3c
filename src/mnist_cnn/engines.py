"""Loaded models for inference, whatever runs them: Keras or ONNX Runtime.

A ``Classifier`` is a name, the class names, and a function from model inputs
(N, 28, 28, 1) float32 in [0, 1] to (N, classes) probabilities. ``predict``
and ``serve`` use only that, so the ONNX engine never imports TensorFlow.

Every file from the user is checked before a library opens it: a ``.keras``
archive by its zip directory (``check_keras_archive``), an ONNX model by its
declared inputs and outputs.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_cnn.errors import MnistCnnError, first_line
from mnist_cnn.preprocess import INPUT_SHAPE
from mnist_cnn.rejection import (
    DIGIT_CLASS_NAMES,
    PACKAGED_DETECTOR,
    DetectorFiles,
    DigitDetector,
    digit_network,
    read_settings,
)

if TYPE_CHECKING:
    import keras

ENGINES = ("keras", "onnx")

# Bounds on a .keras archive, read from its zip directory before Keras opens it.
# The largest model this project makes (best's 5-member ensemble) is about 20 MB,
# and Keras stores weights uncompressed; 1 GiB leaves fifty times that.
MAX_ARCHIVE_BYTES = 1 << 30
# Keras parses config.json whole; ours are tens of kilobytes.
MAX_CONFIG_BYTES = 16 << 20
# Weights barely compress (float32 noise), so a large member that shrank over
# 100:1 is mostly zeros: a bomb, not a model. Small members (JSON) may compress well.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM_BYTES = 1 << 20

ProbabilityFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Classifier:
    """A loaded model, whatever runs it."""

    name: str  # where it came from, for messages
    class_names: tuple[str, ...]
    probabilities: ProbabilityFunction  # (N, 28, 28, 1) float32 -> (N, classes) float32
    # Says which pictures are not digits; None: the classifier's own confidence
    # (rejection.confidence_detector), which every model has.
    detector: DigitDetector | None = None


def resolve_model_file(
    run_or_model: str | os.PathLike[str], file_name: str, how_to_make: str | None = None
) -> Path:
    """A run folder (or ``runs/latest``) to its ``file_name``; a model file to itself.

    ``how_to_make``: the command that makes a missing file, added to the message.
    """
    run_or_model = Path(run_or_model)
    if run_or_model.is_dir():
        path = run_or_model / file_name
        if not path.exists():
            hint = f"; make it with '{how_to_make}'" if how_to_make else ""
            raise MnistCnnError(f"{run_or_model}: no {file_name} in this run folder{hint}")
        return path
    if not run_or_model.exists():
        raise MnistCnnError(f"{run_or_model}: no such run folder or model file")
    return run_or_model


def resolve_keras_path(run_or_model: str | os.PathLike[str]) -> Path:
    """A run folder to its ``model.keras``; a model file to itself."""
    from mnist_cnn.run_folder import RunFolder

    return resolve_model_file(run_or_model, RunFolder(run_or_model).model_file.name)


def resolve_onnx_path(run_or_model: str | os.PathLike[str]) -> Path:
    """A run folder to its ``model.onnx`` (saying how to export one); a file to itself."""
    from mnist_cnn.run_folder import RunFolder

    file_name = RunFolder(run_or_model).onnx_file.name
    return resolve_model_file(
        run_or_model, file_name, f"mnist-cnn export {run_or_model} --format onnx"
    )


def check_keras_archive(path: str | os.PathLike[str]) -> Path:
    """Refuse a ``.keras`` file that is no zip or would unpack to too much, in one line.

    Reads only the zip's central directory, never a member, so a 4 MB archive
    declaring 4 GiB is refused in milliseconds. The declared sizes are what
    ``zipfile`` later allows itself to inflate, so checking them bounds what
    Keras can unpack. Returns the path, for chaining.
    """
    path = Path(path)

    def refuse(reason: str) -> MnistCnnError:
        return MnistCnnError(f"{path}: not a loadable Keras model ({reason})")

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise refuse("not a zip archive, as a .keras file is") from None
    except (OSError, ValueError, EOFError) as error:
        raise refuse(f"cannot read the archive: {first_line(error)}") from None
    total = sum(member.file_size for member in members)
    if total > MAX_ARCHIVE_BYTES:
        raise refuse(
            f"the archive declares {_size(total)} once unpacked, over the "
            f"{_size(MAX_ARCHIVE_BYTES)} allowed for a model"
        )
    for member in members:
        if member.filename == "config.json" and member.file_size > MAX_CONFIG_BYTES:
            raise refuse(
                f"its config.json declares {_size(member.file_size)}, over the "
                f"{_size(MAX_CONFIG_BYTES)} allowed"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise refuse(
                f"{member.filename} would inflate {ratio:,.0f}:1 to {_size(member.file_size)}, "
                f"more than the {MAX_COMPRESSION_RATIO}:1 a model's weights can compress"
            )
    return path


def _size(byte_count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if byte_count >= scale:
            return f"{byte_count / scale:.1f} {unit}"
    return f"{byte_count} bytes"


def keras_probability_function(
    model: keras.Model, batch_size: int = 1000, *, compiled: bool = False
) -> ProbabilityFunction:
    """Calls the model directly on batches; ``compiled``: as one compiled function.

    ``model.predict`` builds a data pipeline per call, which costs milliseconds
    for a single image; a direct call does not. Run eagerly, though, every layer
    is dispatched from Python, several times slower for one image than one
    compiled graph (README, "Export"; ``benchmarks/results/inference*.json``).
    Tracing that graph costs up to a second or so, which pays only when the
    function is kept and called again (a loaded classifier), not for one call.
    ``reduce_retracing`` traces once more for a new batch size, then reuses one
    graph for all sizes.

    On JAX the same idea is ``jax.jit`` of the model's stateless call (untested
    here: JAX is not installed on the machines these figures come from). The
    PyTorch backend runs eagerly.
    """
    import keras

    call: Callable[[np.ndarray], Any] = _eager_call(model)
    if compiled and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        call = tf.function(call, reduce_retracing=True)
    elif compiled and keras.backend.backend() == "jax":
        call = _jax_compiled_call(model)

    def probabilities(model_inputs: np.ndarray) -> np.ndarray:
        batches = [
            keras.ops.convert_to_numpy(call(model_inputs[start : start + batch_size]))
            for start in range(0, len(model_inputs), batch_size)
        ]
        if not batches:
            return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
        return np.concatenate(batches).astype(np.float32)

    return probabilities


def _eager_call(model: keras.Model) -> Callable[[np.ndarray], Any]:
    def call(batch: np.ndarray) -> Any:
        return model(batch, training=False)

    return call


def _jax_compiled_call(model: keras.Model) -> Callable[[np.ndarray], Any]:
    """``model.stateless_call`` under ``jax.jit``, with the weights as they are now."""
    import jax

    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]

    @jax.jit
    def stateless(trainable: Any, non_trainable: Any, batch: Any) -> Any:
        outputs, _ = model.stateless_call(trainable, non_trainable, batch, training=False)
        return outputs

    def call(batch: np.ndarray) -> Any:
        return stateless(trainable, non_trainable, batch)

    return call


def open_keras_file(
    path: str | os.PathLike[str],
    *,
    compile: bool = False,
    failure: str = "not a loadable Keras model",
) -> keras.Model:
    """Open a ``.keras`` file safely: its archive checked first, then Keras's safe mode.

    Safe mode refuses Lambda layers and any other stored code. ``compile``
    restores the optimizer too (for checkpoints). ``failure`` begins the
    one-line message when Keras cannot load it.
    """
    import keras

    import mnist_cnn.losses  # noqa: F401  registers the losses a checkpoint may be compiled with

    path = check_keras_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except Exception as error:
        raise MnistCnnError(f"{path}: {failure} ({first_line(error)})") from None


def load_model(run_or_model: str | os.PathLike[str]) -> Any:
    """Load a ``.keras`` model in Keras's safe mode (no Lambda layers, no code).

    The archive is checked first (``check_keras_archive``); the input must be
    (N, 28, 28, 1). Anything else is refused with one line. A net saved as it
    trained in bfloat16 (a checkpoint, ``best.keras``) comes back computing in
    float32, as every run's model.keras does (``models.in_float32``).
    """
    from mnist_cnn.models import in_float32

    model_path = resolve_keras_path(run_or_model)
    model = open_keras_file(model_path)
    input_shape = tuple(model.input_shape[1:])
    if input_shape != INPUT_SHAPE:
        raise MnistCnnError(
            f"{model_path}: the model takes input of shape {input_shape}, expected {INPUT_SHAPE}"
        )
    return in_float32(model)


def load_onnx_classifier(
    run_or_model: str | os.PathLike[str], threads: int | None = None
) -> Classifier:
    """An ONNX Runtime session as a ``Classifier``. Never imports TensorFlow.

    The model must take one (N, 28, 28, 1) float input and give one (N, classes)
    float output; anything else is refused with one line when it is loaded,
    not on the first request.
    """
    import onnxruntime

    from mnist_cnn.run_folder import RunFolder

    path = resolve_onnx_path(run_or_model)
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: the CLI reports problems itself
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own error types
        raise MnistCnnError(f"{path}: not a loadable ONNX model ({first_line(error)})") from None
    input_name, classes = _check_onnx_signature(session, path)

    def probabilities(model_inputs: np.ndarray) -> np.ndarray:
        if len(model_inputs) == 0:
            return np.zeros((0, classes), dtype=np.float32)
        (output,) = session.run(None, {input_name: model_inputs.astype(np.float32, copy=False)})
        return output.astype(np.float32, copy=False)

    return Classifier(
        name=str(path),
        class_names=RunFolder(path.parent).read_class_names(classes),
        probabilities=probabilities,
    )


def _check_onnx_signature(session: Any, path: Path) -> tuple[str, int]:
    """The input's name and the number of classes, once the signature is ours."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(model_input.name for model_input in inputs)
        raise MnistCnnError(
            f"{path}: the model takes {len(inputs)} inputs ({names}), expected one image batch"
        )
    if len(outputs) != 1:
        names = ", ".join(output.name for output in outputs)
        raise MnistCnnError(
            f"{path}: the model gives {len(outputs)} outputs ({names}), "
            "expected one (N, classes) array of probabilities"
        )
    (model_input,), (output,) = inputs, outputs
    if tuple(model_input.shape[1:]) != INPUT_SHAPE or model_input.type != "tensor(float)":
        raise MnistCnnError(
            f"{path}: the model takes {model_input.type} of shape "
            f"{tuple(model_input.shape)}, expected float (N, 28, 28, 1)"
        )
    shape = list(output.shape)
    if (
        output.type not in ("tensor(float)", "tensor(double)", "tensor(float16)")
        or len(shape) != 2
        or not isinstance(shape[1], int)
        or shape[1] < 2
    ):
        raise MnistCnnError(
            f"{path}: the model gives {output.type} of shape {tuple(shape)}, "
            "expected float probabilities of shape (N, classes)"
        )
    return model_input.name, shape[1]


def load_detector(
    run_or_model: str | os.PathLike[str],
    engine: str = "keras",
    class_names: Sequence[str] = DIGIT_CLASS_NAMES,
) -> DigitDetector | None:
    """The run's "not a digit" detector for ``engine``: its own, else the packaged one.

    ``run_or_model`` is a run folder or a model file inside one. A run's own
    detector (``mnist-cnn not-a-digit RUN``) is tuned with its classifier; a
    run without one uses the detector that ships with mnist-cnn
    (``rejection.PACKAGED_DETECTOR``), made for the digits 0-9, so a model of
    other classes gets None: ``prediction`` then falls back to the confidence
    detector. The ONNX engine, which never starts TensorFlow, uses the ``.onnx``
    file and falls back the same way without it. Damaged files are one line.
    """
    from mnist_cnn.run_folder import RunFolder

    path = Path(run_or_model)
    run = RunFolder(path if path.is_dir() else path.parent)
    if run.detector.settings.exists():
        return _detector_from(run.detector, engine)
    if tuple(class_names) != DIGIT_CLASS_NAMES or not PACKAGED_DETECTOR.settings.exists():
        return None
    return _detector_from(PACKAGED_DETECTOR, engine)


def _detector_from(files: DetectorFiles, engine: str) -> DigitDetector | None:
    threshold, uses_confidence = read_settings(files.settings)
    if engine == "onnx":
        if not files.onnx.exists():
            return None
        network = load_onnx_classifier(files.onnx).probabilities
    else:
        model = open_keras_file(files.keras, failure="not a loadable detector")
        network = keras_probability_function(model, compiled=True)
    return DigitDetector("learned", threshold, digit_network(network), uses_confidence)


def load_classifier(run_or_model: str | os.PathLike[str], engine: str = "keras") -> Classifier:
    """Load a run's model (or a model file) for the chosen engine: keras or onnx.

    The ONNX engine runs on ONNX Runtime and never imports TensorFlow.
    """
    from mnist_cnn.run_folder import RunFolder

    if engine == "onnx":
        onnx_classifier = load_onnx_classifier(run_or_model)
        detector = load_detector(onnx_classifier.name, "onnx", onnx_classifier.class_names)
        return replace(onnx_classifier, detector=detector)
    if engine != "keras":
        raise MnistCnnError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
    model_path = resolve_keras_path(run_or_model)
    model = load_model(model_path)
    classes = int(model.output_shape[-1])
    class_names = RunFolder(model_path.parent).read_class_names(classes)
    return Classifier(
        name=str(model_path),
        class_names=class_names,
        probabilities=keras_probability_function(model, compiled=True),
        detector=load_detector(model_path, "keras", class_names),
    )
