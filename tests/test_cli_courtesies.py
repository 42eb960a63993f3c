"""What Keras and Python users expect of a CLI: -q and -v, quiet TensorFlow, the model
summary, TensorBoard logs, progress bars on a terminal, a plain ``show``, completion."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.cli import build_parser, main
from tests.helpers import run_cli, run_cli_here

COMMANDS = (
    "data", "show", "train", "finetune", "evaluate", "report", "compare", "export", "predict",
    "serve",
)  # fmt: skip
# What TensorFlow's C++ start-up writes to file descriptor 2 when nothing silences it.
TENSORFLOW_NOTICES = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000")


def run_cli_with_terminal_stderr(*arguments: str, timeout: float = 300) -> tuple[str, str]:
    """Run ``mnist-cnn`` with stderr on a pseudo-terminal and stdout on a pipe.

    Returns (stdout, what the terminal received).
    """
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn", *arguments],
        stdout=subprocess.PIPE,
        stderr=terminal,
        stdin=subprocess.DEVNULL,
    )
    os.close(terminal)
    received = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed its end of the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(controller)
    stdout = process.stdout.read().decode()
    process.stdout.close()
    assert process.wait(timeout=60) == 0, received.decode(errors="replace")
    return stdout, received.decode(errors="replace")


# -q and -v ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, verbosity",
    [
        (["data"], "normal"),
        (["-q", "data"], "quiet"),
        (["data", "-q"], "quiet"),
        (["--verbose", "train"], "verbose"),
        (["evaluate", "-v"], "verbose"),
        (["-q", "predict", "x.png", "-v"], "verbose"),  # the last one wins
    ],
)
def test_quiet_and_verbose_go_before_or_after_the_command(arguments, verbosity):
    assert build_parser().parse_args(arguments).verbosity == verbosity


def test_every_command_takes_quiet_and_verbose():
    parser = build_parser()
    required = {
        "compare": ["run"], "predict": ["x.png"], "completion": ["bash"],
        "finetune": ["--feedback", "x.npz"],
    }  # fmt: skip
    for command in (*COMMANDS, "completion"):
        parsed = parser.parse_args([command, "-q", *required.get(command, [])])
        assert parsed.verbosity == "quiet", command


@pytest.mark.slow
def test_verbose_adds_debug_lines_and_quiet_keeps_only_the_answer(tmp_path):
    out = tmp_path / "digit.png"
    normal = run_cli("show", "--out", str(out))
    verbose = run_cli("-v", "show", "--out", str(out))
    quiet = run_cli("show", "--out", str(out), "-q")
    for result in (normal, verbose, quiet):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wrote {out}")  # the answer, whatever the verbosity
    assert "debug: mnist-cnn" in verbose.stderr
    assert "debug:" not in normal.stderr
    assert quiet.stderr == ""


def test_no_command_prints_the_usage_and_exits_2():
    result = run_cli()
    assert result.returncode == 2
    assert result.stderr.startswith("usage: mnist-cnn")
    assert "-q" in result.stderr and "--version" in result.stderr


# TensorFlow's start-up notices ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_quiet_tensorflow_does_nothing_on_other_backends(backend):
    code = (
        "import sys\n"
        "from mnist_cnn.cli.common import quiet_tensorflow\n"
        "before = list(sys.meta_path)\n"
        "quiet_tensorflow()\n"
        "print('tensorflow' in sys.modules, sys.meta_path == before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_the_keras_backend_is_read_from_keras_json_as_keras_does(tmp_path, monkeypatch):
    from mnist_cnn.cli.common import keras_backend

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_backend() == "tensorflow"  # no keras.json: Keras's default
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert keras_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert keras_backend() == "torch"


@pytest.mark.slow
def test_tensorflow_imported_after_quiet_tensorflow_says_nothing():
    code = (
        "from mnist_cnn.cli.common import quiet_tensorflow\n"
        "quiet_tensorflow()\n"
        "import keras\n"
        "import numpy as np\n"
        "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
        "model.predict(np.zeros((1, 3)), verbose=0)\n"
        "print(keras.backend.backend())\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment["KERAS_BACKEND"] = "tensorflow"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment
    )
    assert result.stdout.strip() == "tensorflow", result.stderr
    assert result.stderr == ""


@pytest.fixture
def run_copy(tmp_path, trained_run):
    """A copy of the trained run, for commands that write into their run folder."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, copy)
    return copy


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments",
    [
        ["data"],
        ["show", "--out", "{tmp}/digit.png"],
        ["evaluate", "{run}", "--out-dir", "{tmp}/evaluation"],
        ["report", "{run}"],
        ["report", "{run}", "--reevaluate"],
        ["compare", "{run}", "{run}", "--out", "{tmp}/comparison.png"],
        ["predict", "--model", "{run}", "{tmp}/digit.png"],
    ],
    ids=lambda arguments: "-".join(word for word in arguments if not word.startswith("{")),
)
def test_no_command_shows_tensorflow_notices(arguments, tmp_path, run_copy):
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(tmp_path / "digit.png")
    filled = [word.format(tmp=tmp_path, run=run_copy) for word in arguments]
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "mnist_cnn", *filled],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for notice in TENSORFLOW_NOTICES:
        assert notice not in result.stderr


# train: the model summary, -q, TensorBoard ---------------------------------------------


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory):
    """A tiny run (600 images, 2 epochs, a validation split) with --tensorboard."""
    root = tmp_path_factory.mktemp("tensorboard-run")
    result = run_cli(
        "train", "--limit", "600", "--epochs", "2", "--validation-split", "0.2",
        "--run-dir", str(root / "run"), "--tensorboard", str(root / "logs"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root, result


@pytest.mark.slow
def test_train_logs_the_model_summary_and_epochs_and_answers_on_stdout(tensorboard_run):
    _, result = tensorboard_run
    log = result.stderr
    assert "data: " in log and "training preset 'fast'" in log
    assert 'Model: "mnist_cnn_fast"' in log and "Total params:" in log
    assert log.index("Total params:") < log.index("epoch 1/2 |") < log.index("epoch 2/2 |")
    assert result.stdout.startswith("test accuracy ")
    assert "Model:" not in result.stdout and "epoch 1/2" not in result.stdout


@pytest.mark.slow
def test_train_quiet_prints_only_the_answer(tmp_path):
    result = run_cli(
        "train", "-q", "--limit", "600", "--epochs", "1", "--run-dir", str(tmp_path / "run")
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("test accuracy ")
    assert "report: " in result.stdout


@pytest.mark.slow
def test_tensorboard_logs_every_epoch_once(tensorboard_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util.tensor_util import make_ndarray

    root, _ = tensorboard_run
    logs = root / "logs"
    assert list((logs / "train").glob("events.out.tfevents.*"))
    assert list((logs / "validation").glob("events.out.tfevents.*"))
    with open(root / "run" / "history.csv") as handle:
        history = list(csv.DictReader(handle))

    for folder, tag, column in [
        ("train", "epoch_loss", "loss"),
        ("validation", "epoch_loss", "val_loss"),
        ("validation", "epoch_accuracy", "val_accuracy"),
    ]:
        accumulator = EventAccumulator(str(logs / folder), size_guidance={"tensors": 0})
        accumulator.Reload()
        events = accumulator.Tensors(tag)
        assert [event.step for event in events] == [0, 1], (folder, tag)
        logged = [float(make_ndarray(event.tensor_proto)) for event in events]
        assert logged == pytest.approx([float(row[column]) for row in history], rel=1e-4)
    train_tags = EventAccumulator(str(logs / "train"), size_guidance={"tensors": 0})
    train_tags.Reload()
    histograms = [tag for tag in train_tags.Tags()["tensors"] if tag.endswith("/histogram")]
    assert histograms, "histogram_freq=1 logs the weights"
    # The model (Keras's "keras" summary, TensorBoard's graph) once, not once per fit call.
    model_records = [
        value.tag
        for path in sorted((logs / "train").glob("events.out.tfevents.*"))
        for event in EventFileLoader(str(path)).Load()
        for value in event.summary.value
        if value.tag == "keras"
    ]
    assert len(model_records) == 1


def test_tensorboard_without_the_package_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    code = main(["train", "--tensorboard", str(tmp_path / "logs"), "--run-dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err == (
        "error: --tensorboard needs the tensorboard package (not installed): "
        "pip install 'mnist-cnn[tensorboard]'\n"
    )


# Progress bars ---------------------------------------------------------------------------


def test_the_progress_bar_rewrites_one_line_and_clears_it():
    from mnist_cnn.cli.progress import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar("evaluate", stream)
    for done in range(1, 5):
        bar(done, 4)
    bar.close()
    text = stream.getvalue()
    assert "\n" not in text
    assert "\revaluate [" in text and "] 4/4" in text
    assert text.endswith("\r\033[K")
    counting = ProgressBar("pictures read", io.StringIO())
    counting(12, None)
    assert counting.stream.getvalue() == "\rpictures read 12\033[K"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "predict", "compare"])
def test_long_commands_show_a_bar_on_a_terminal_only(command, tmp_path, run_copy, mnist, capsys):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for index in range(5):
        Image.fromarray(255 - mnist.test_images[index]).save(pictures / f"{index}.png")
    arguments, label = {
        "evaluate": (["evaluate", str(run_copy), "--out-dir", str(tmp_path / "out")], "evaluate ["),
        "predict": (["predict", "--model", str(run_copy), str(pictures)], "\rpictures read "),
        "compare": (
            ["compare", str(run_copy), str(run_copy), "--out", str(tmp_path / "c.png")],
            "compare [",
        ),
    }[command]
    stdout, terminal = run_cli_with_terminal_stderr(*arguments)
    assert label in terminal
    assert "\r" not in stdout  # the answer stays clean
    piped = run_cli_here(capsys, *arguments)  # captured: no terminal either
    assert piped.returncode == 0, piped.stderr
    assert label not in piped.stderr and "\r" not in piped.stderr
    _, quiet_terminal = run_cli_with_terminal_stderr("-q", *arguments)
    assert label not in quiet_terminal


# show and predict -----------------------------------------------------------------------


def test_show_writes_the_image_itself_ten_times_larger(tmp_path, mnist):
    out = tmp_path / "digit.png"
    result = run_cli("show", "--split", "test", "--index", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (280, 280)
        pixels = np.asarray(image.convert("L"))
    # Each pixel a 10x10 square of the inverted image: black ink on white, no frame.
    expected = np.repeat(np.repeat(255 - mnist.test_images[0], 10, axis=0), 10, axis=1)
    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.slow
def test_predict_reads_the_digits_that_show_wrote(tmp_path, trained_run, mnist, capsys):
    paths = []
    for index in range(4):  # MNIST's first test digits: 7, 2, 1, 0
        path = tmp_path / f"test-{index}.png"
        arguments = ["show", "--split", "test", "--index", str(index), "--out", str(path)]
        result = run_cli_here(capsys, *arguments)
        assert result.returncode == 0, result.stderr
        paths.append(str(path))
    result = run_cli_here(capsys, "predict", "--json", "--model", str(trained_run.run_dir), *paths)
    assert result.returncode == 0, result.stderr
    read = [answer["name"] for answer in json.loads(result.stdout)]
    assert read == ["7", "2", "1", "0"]
    assert [int(label) for label in mnist.test_labels[:4]] == [7, 2, 1, 0]


# serve's log level -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, uvicorn_level", [([], "info"), (["-q"], "warning"), (["-v"], "debug")]
)
def test_uvicorn_logs_at_the_cli_level(monkeypatch, flags, uvicorn_level):
    import mnist_cnn.serve
    from mnist_cnn.cli import serve_command

    given = {}
    classifier = types.SimpleNamespace(name="model.keras")
    monkeypatch.setattr(serve_command, "load_classifier", lambda run, engine: classifier)
    monkeypatch.setattr(mnist_cnn.serve, "model_metadata", lambda classifier, engine: {})
    monkeypatch.setattr(mnist_cnn.serve, "create_app", lambda *args, **kwargs: None)
    monkeypatch.setattr(mnist_cnn.serve, "run_server", lambda app, **options: given.update(options))
    assert main([*flags, "serve", "--port", "8123"]) == 0
    assert given["log_level"] == uvicorn_level


# completion ----------------------------------------------------------------------------------


def test_bash_completion_knows_every_command_and_preset(capsys):
    from mnist_cnn.config import PRESETS

    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    for command in (*COMMANDS, "completion"):
        assert command in script
    assert "--preset" in script
    assert all(preset in script for preset in PRESETS)
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_zsh_completion_is_written(capsys):
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef mnist-cnn")


def test_completion_without_shtab_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "shtab", None)  # as if it were not installed
    assert main(["completion", "bash"]) == 2
    assert capsys.readouterr().err == (
        "error: shell completion needs the shtab package (not installed): "
        "pip install 'mnist-cnn[completion]'\n"
    )


def test_main_in_process_leaves_logging_as_it_found_it(tmp_path, caplog):
    """A notebook or a test calls main and goes on: its log records must still reach it."""
    import logging

    from mnist_cnn.cli import main

    package_logger = logging.getLogger("mnist_cnn")
    before = (package_logger.level, package_logger.propagate, list(package_logger.handlers))
    assert main(["-q", "data", "--data", str(tmp_path / "absent.npz")]) == 2
    assert (package_logger.level, package_logger.propagate, package_logger.handlers) == before
    with caplog.at_level(logging.INFO):
        logging.getLogger("mnist_cnn.serve").info("still heard")
    assert "still heard" in caplog.text
