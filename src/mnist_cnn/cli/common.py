"""What several commands share: options, the quiet start of TensorFlow, output helpers."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA_ENVIRONMENT_VARIABLE = "MNIST_CNN_DATA"
DEFAULT_RUN = Path("runs/latest")


def quiet_tensorflow() -> None:
    """Start TensorFlow, when it is the Keras backend, with its C++ notices silenced.

    TensorFlow prints oneDNN and absl notices straight to file descriptor 2 at
    import, whatever TF_CPP_MIN_LOG_LEVEL says; they are noise to a CLI user.
    On the JAX or PyTorch backend, or without TensorFlow, nothing is imported.
    """
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    if importlib.util.find_spec("tensorflow") is None:
        return  # Keras itself will say which backend is missing, as one line
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=(
            "a Keras-style .npz or a folder of the four IDX files "
            f"(default: ${DATA_ENVIRONMENT_VARIABLE}, else the cache, else the bundled MNIST)"
        ),
    )
    parser.add_argument(
        "--class-names",
        type=lambda text: [name.strip() for name in text.split(",")],
        default=None,
        help="comma-separated display names for the classes (default: 0, 1, 2, ...)",
    )


def data_path(arguments: argparse.Namespace) -> Path | None:
    """``--data``, else the environment's default, else None (the cache or bundled copy)."""
    if arguments.data is not None:
        return arguments.data
    from_environment = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    return Path(from_environment) if from_environment else None


def load_dataset(arguments: argparse.Namespace) -> Any:
    from mnist_cnn.data import load_mnist

    return load_mnist(data_path(arguments), class_names=arguments.class_names)


def add_run_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "run", nargs="?", type=Path, default=DEFAULT_RUN, help=f"{what} (default: {DEFAULT_RUN})"
    )


def add_inference_options(parser: argparse.ArgumentParser, engine_help: str) -> None:
    """--engine and --min-confidence, shared by predict and serve."""
    # The same number as prediction.DEFAULT_MIN_CONFIDENCE, which a test checks:
    # importing prediction here would put numpy and Pillow on the path of --help.
    default_min_confidence = 0.5
    parser.add_argument(
        "--engine", choices=("keras", "onnx"), default="keras",
        help=f"{engine_help} (default: keras)",
    )  # fmt: skip
    parser.add_argument(
        "--min-confidence", type=bounded(float, 0, 1), default=default_min_confidence,
        help=f"answers below this are marked uncertain (default: {default_min_confidence})",
    )  # fmt: skip


def load_classifier(run_or_model: Path, engine: str) -> Any:
    """Load the model for ``engine``; only the Keras engine starts Keras."""
    from mnist_cnn.engines import check_keras_archive, load_classifier, resolve_keras_path

    if engine == "keras":
        # A missing or malformed model is refused before Keras starts (a few seconds).
        check_keras_archive(resolve_keras_path(run_or_model))
        quiet_tensorflow()
    return load_classifier(run_or_model, engine)


def bounded(kind: type[float] | type[int], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` from ``low`` to ``high``, else a usage error."""
    noun = "whole number" if kind is int else "number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {noun}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return value

    return parse


def print_error(message: str) -> None:
    from mnist_cnn.errors import one_line

    print(f"error: {one_line(message)}", file=sys.stderr)
