"""What several commands share: options, the quiet start of TensorFlow, output helpers."""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DATA_ENVIRONMENT_VARIABLE = "MNIST_CNN_DATA"
DEFAULT_RUN = Path("runs/latest")
# The package's logger: the library logs to it (or to children of it), the CLI shows it.
LOGGER_NAME = "mnist_cnn"
# What -q, nothing and -v show of the log; the command's answer (stdout) and errors always show.
VERBOSITY_LEVELS = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}


def add_verbosity_options(parser: argparse.ArgumentParser, default: Any = "normal") -> None:
    """-q and -v; the last one given wins.

    The top-level parser gets them with a real default, each command with
    ``argparse.SUPPRESS``, so that ``mnist-cnn -q train`` is not undone by the
    command's own default.
    """
    group = parser.add_argument_group("output")
    group.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const="quiet", default=default,
        help="print only the answer and errors: no progress, no log lines (default: off)",
    )  # fmt: skip
    group.add_argument(
        "-v", "--verbose", dest="verbosity", action="store_const", const="verbose",
        default=default, help="add debugging detail to the log lines (default: off)",
    )  # fmt: skip


class _LogFormatter(logging.Formatter):
    """The message alone, as the CLI always printed it; debug lines say what they are."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return f"debug: {message}" if record.levelno <= logging.DEBUG else message


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


@contextlib.contextmanager
def logging_configured(verbosity: str) -> Iterator[None]:
    """While a command runs, show the ``mnist_cnn`` logger on stderr at ``verbosity``'s level.

    Restored afterwards: ``main`` called in a process that goes on (a notebook,
    a test) leaves that process's logging as it found it.
    """
    logger = logging.getLogger(LOGGER_NAME)
    level, propagate = logger.level, logger.propagate
    handler = _StderrHandler()
    handler.setFormatter(_LogFormatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(VERBOSITY_LEVELS[verbosity])
    # The CLI's handler shows the records; the root logger's (if any) would repeat them.
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def showing(level: int) -> bool:
    """Whether the log shows records of ``level`` (e.g. whether -q was given)."""
    return logging.getLogger(LOGGER_NAME).isEnabledFor(level)


def quiet_tensorflow() -> None:
    """Have TensorFlow, whenever something imports it, start with its C++ notices silenced.

    TensorFlow prints oneDNN and absl notices straight to file descriptor 2 at
    import, whatever TF_CPP_MIN_LOG_LEVEL says; they are noise to a CLI user.
    Rather than importing TensorFlow here (seconds, and wasted on ``show`` or
    ``predict --engine onnx``), this installs an import hook: the import runs
    with file descriptor 2 pointed at /dev/null, whichever path leads to it
    (Keras, the data download, an export). So ``main`` calls it once, before
    any command. On the JAX or PyTorch backend it does nothing.
    """
    if keras_backend() != "tensorflow" or "tensorflow" in sys.modules:
        return
    # Notices TensorFlow logs after its import (CPU features at the first op) obey this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def keras_backend() -> str:
    """The backend Keras will choose, found as Keras finds it, without importing Keras."""
    import json

    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(keras_home, "keras.json")) as handle:
            return str(json.load(handle).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds the top-level ``tensorflow`` package as usual, with a loader that silences fd 2."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _SilencedLoader(spec.loader)
        return spec


class _SilencedLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` with file descriptor 2 on /dev/null."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        sys.stderr.flush()
        saved_stderr = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                self._loader.exec_module(module)
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)

    def __getattr__(self, name: str) -> Any:
        # Resource readers and the like are the wrapped loader's.
        return getattr(self._loader, name)


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


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``: where the feedback database lives (serve and the feedback commands)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "folder of the feedback database, feedback.sqlite3 (default: $XDG_DATA_HOME/mnist-cnn, "
            "else ~/.local/share/mnist-cnn)"
        ),
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
