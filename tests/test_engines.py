"""Loading models for inference: archives checked before Keras opens them, ONNX signatures
checked at load, paths given as text, and one-line errors for all of it."""

from __future__ import annotations

import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from mnist_cnn.engines import (
    MAX_ARCHIVE_BYTES,
    check_keras_archive,
    keras_probability_function,
    load_classifier,
    load_model,
    load_onnx_classifier,
    resolve_model_file,
)
from mnist_cnn.errors import MnistCnnError, first_line


def write_zip(path, members, *, declared=None, compression=zipfile.ZIP_DEFLATED):
    """A zip of ``members`` (name -> bytes); ``declared`` overrides the directory's sizes.

    Overriding the size in the central directory makes an archive that lies: it
    claims gigabytes while holding bytes, so the test needs no gigabytes of disk.
    """
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for info in archive.infolist():
            if declared and info.filename in declared:
                info.file_size = declared[info.filename]
    return path


KERAS_MEMBERS = {"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": b"\x89HDF"}


def refused_quickly(function, *arguments):
    """The one-line message ``function`` refuses with, its seconds and peak traced bytes."""
    import keras  # imported before timing: load_model imports it, and that takes seconds

    assert keras.__version__
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(MnistCnnError) as raised:
        function(*arguments)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    message = str(raised.value)
    assert "\n" not in message
    return message, seconds, peak


def test_first_line_keeps_one_short_line():
    assert first_line(ValueError("bad thing\n  at line 3\n  at line 4")) == "bad thing"
    assert first_line(RuntimeError("")) == "RuntimeError"
    assert first_line(OSError("  \n  spaced\nmore")) == "spaced"
    long = first_line(ValueError("x" * 500), limit=50)
    assert len(long) == 50 and long.endswith("…")


def test_archive_declaring_four_gibibytes_is_refused_from_its_directory(tmp_path):
    path = write_zip(tmp_path / "bomb.keras", KERAS_MEMBERS, declared={"model.weights.h5": 4 << 30})
    assert path.stat().st_size < 1000
    message, seconds, peak = refused_quickly(load_model, path)
    assert message.startswith(f"{path}: not a loadable Keras model (")
    assert "declares 4.0 GiB once unpacked, over the 1.0 GiB allowed" in message
    assert seconds < 1.0 and peak < 1 << 20


def test_real_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    # 64 MiB of zeros deflate to about 64 KB: over 1000:1, where weights barely compress.
    path = write_zip(
        tmp_path / "zeros.keras", {**KERAS_MEMBERS, "model.weights.h5": bytes(64 << 20)}
    )
    assert path.stat().st_size < 200_000
    message, seconds, peak = refused_quickly(load_model, path)
    assert "model.weights.h5 would inflate" in message and "64.0 MiB" in message
    assert "more than the 100:1" in message
    assert seconds < 1.0 and peak < 1 << 20


def test_config_bomb_is_refused(tmp_path):
    # 17 MiB of JSON whitespace: within the total and stored, so only the config bound sees it.
    config = b"{" + b" " * (17 << 20) + b"}"
    path = write_zip(
        tmp_path / "config.keras", {**KERAS_MEMBERS, "config.json": config},
        compression=zipfile.ZIP_STORED,
    )  # fmt: skip
    message, _, _ = refused_quickly(check_keras_archive, path)
    assert "its config.json declares 17.0 MiB, over the 16.0 MiB allowed" in message


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"\x89HDF\r\n\x1a\n" + bytes(100)])
def test_non_zip_files_are_refused(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    message, _, _ = refused_quickly(check_keras_archive, path)
    assert message == f"{path}: not a loadable Keras model (not a zip archive, as a .keras file is)"


def test_a_trained_model_passes_the_archive_check(trained_run):
    checked = check_keras_archive(str(trained_run.run_dir / "model.keras"))
    with zipfile.ZipFile(checked) as archive:
        assert sum(member.file_size for member in archive.infolist()) < MAX_ARCHIVE_BYTES


def test_paths_may_be_given_as_text(trained_run, mnist):
    # A str, as "runs/latest" arrives from a script, works everywhere a Path does.
    run = str(trained_run.run_dir)
    classifier = load_classifier(run)
    assert classifier.class_names == tuple("0123456789")
    assert classifier.probabilities(mnist.test_images[:3, :, :, None] / 255.0).shape == (3, 10)
    assert load_model(run).output_shape == (None, 10)
    assert resolve_model_file(run, "model.keras") == trained_run.run_dir / "model.keras"


def test_missing_file_in_a_run_folder_says_how_to_make_it(tmp_path):
    with pytest.raises(MnistCnnError) as raised:
        resolve_model_file(str(tmp_path), "model.onnx", "mnist-cnn export run --format onnx")
    assert str(raised.value) == (
        f"{tmp_path}: no model.onnx in this run folder; "
        "make it with 'mnist-cnn export run --format onnx'"
    )
    with pytest.raises(MnistCnnError, match="no such run folder or model file"):
        resolve_model_file(tmp_path / "absent.keras", "model.keras")


def test_keras_outputs_go_through_keras_convert_to_numpy(trained_run, monkeypatch, mnist):
    # np.asarray fails on device tensors of the PyTorch and JAX backends; keras.ops does not.
    import keras

    converted = []
    original = keras.ops.convert_to_numpy

    def spy(tensor):
        converted.append(type(tensor).__name__)
        return original(tensor)

    monkeypatch.setattr(keras.ops, "convert_to_numpy", spy)
    model = load_model(trained_run.run_dir)
    probabilities = keras_probability_function(model, batch_size=4)
    output = probabilities(mnist.test_images[:10, :, :, None].astype(np.float32) / 255)
    assert output.shape == (10, 10) and output.dtype == np.float32
    assert len(converted) == 3  # batches of 4, 4 and 2


# Tiny ONNX models built by hand, each with one thing wrong with its signature.


def onnx_model(path, inputs, outputs, nodes, initializers=()):
    import onnx
    from onnx import TensorProto, helper

    def value(name, element_type, shape):
        kind = {"float": TensorProto.FLOAT, "int64": TensorProto.INT64}[element_type]
        return helper.make_tensor_value_info(name, kind, shape)

    graph = helper.make_graph(
        nodes,
        "signature",
        [value(*spec) for spec in inputs],
        [value(*spec) for spec in outputs],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def linear_nodes(output="probabilities"):
    """(N, 28, 28, 1) -> flatten -> one 784 x 10 matrix -> softmax."""
    from onnx import helper, numpy_helper

    weights = numpy_helper.from_array(np.full((784, 10), 0.001, dtype=np.float32), "weights")
    shape = numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["images", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [output], axis=-1),
    ]
    return nodes, [weights, shape]


IMAGES = ("images", "float", ["N", 28, 28, 1])


def test_a_well_formed_onnx_model_loads(tmp_path):
    nodes, initializers = linear_nodes()
    path = onnx_model(
        tmp_path / "linear.onnx", [IMAGES], [("probabilities", "float", ["N", 10])],
        nodes, initializers,
    )  # fmt: skip
    classifier = load_onnx_classifier(str(path))
    output = classifier.probabilities(np.zeros((2, 28, 28, 1), dtype=np.float32))
    np.testing.assert_allclose(output, 0.1, rtol=1e-6)
    assert classifier.class_names == tuple("0123456789")


def bad_onnx_models():
    from onnx import helper

    nodes, initializers = linear_nodes()
    return {
        "images out": (
            [IMAGES], [("same", "float", ["N", 28, 28, 1])],
            [helper.make_node("Identity", ["images"], ["same"])], [],
            "gives tensor(float) of shape ('N', 28, 28, 1), expected float probabilities",
        ),
        "int64 classes out": (
            [IMAGES], [("digit", "int64", ["N", 1])],
            [*nodes, helper.make_node("ArgMax", ["probabilities"], ["digit"], axis=1)],
            initializers, "gives tensor(int64) of shape ('N', 1)",
        ),
        "one score": (
            [IMAGES], [("score", "float", ["N", 1])],
            [*nodes, helper.make_node("ReduceMax", ["probabilities"], ["score"], axes=[1])],
            initializers,
            "of shape ('N', 1), expected float probabilities of shape (N, classes)",
        ),
        "two outputs": (
            [IMAGES],
            [("probabilities", "float", ["N", 10]), ("logits", "float", ["N", 10])],
            nodes, initializers, "gives 2 outputs (probabilities, logits)",
        ),
        "two inputs": (
            [IMAGES, ("extra", "float", ["N", 10])],
            [("total", "float", ["N", 10])],
            [*nodes, helper.make_node("Add", ["probabilities", "extra"], ["total"])],
            initializers, "takes 2 inputs (images, extra), expected one image batch",
        ),
        "wrong input shape": (
            [("images", "float", ["N", 784])], [("probabilities", "float", ["N", 10])],
            [helper.make_node("Softmax", ["images"], ["probabilities"], axis=-1)], [],
            "takes tensor(float) of shape ('N', 784), expected float (N, 28, 28, 1)",
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["images out", "int64 classes out", "one score", "two outputs", "two inputs",
     "wrong input shape"],
)  # fmt: skip
def test_onnx_models_with_another_signature_are_refused_at_load(tmp_path, case):
    inputs, outputs, nodes, initializers, expected = bad_onnx_models()[case]
    path = onnx_model(tmp_path / "odd.onnx", inputs, outputs, nodes, initializers)
    with pytest.raises(MnistCnnError) as raised:
        load_onnx_classifier(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: the model ") and "\n" not in message
    assert expected in message
