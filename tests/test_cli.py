"""The CLI end to end, in a fresh interpreter, as a user runs it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from PIL import Image

import mnist_cnn
from tests.helpers import run_cli, run_cli_here

RUN_FILES = {
    # file: (width, height) for PNGs, None for others
    "model.keras": None,
    "config.json": None,
    "history.csv": None,
    "metrics.json": None,
    "samples.png": (800, 875),
    "predictions.png": (800, 875),
    "training_curves.png": (1000, 400),
}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``mnist-cnn train`` into a new runs root, in this process with its output captured
    (a module fixture cannot use capsys): (runs root, what it printed)."""
    import contextlib
    import io

    from mnist_cnn.cli import main

    runs_root = tmp_path_factory.mktemp("cli-runs")
    arguments = [
        "train", "--limit", "3000", "--epochs", "2", "--validation-split", "0.2",
        "--seed", "4", "--runs-root", str(runs_root),
    ]  # fmt: skip
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(arguments)
    result = subprocess.CompletedProcess(arguments, code, stdout.getvalue(), stderr.getvalue())
    assert result.returncode == 0, result.stderr
    return runs_root, result


@pytest.mark.slow
def test_train_writes_every_file_of_the_run_folder(cli_run):
    runs_root, _ = cli_run
    run_dir = runs_root / "latest"
    assert run_dir.is_symlink()
    for name, size in RUN_FILES.items():
        path = run_dir / name
        assert path.stat().st_size > 0, name
        if size is not None:
            with Image.open(path) as image:
                assert image.size == size, name
    assert not list(run_dir.glob(".tmp-*")), "no temporary files left behind"


@pytest.mark.slow
def test_train_records_settings_history_and_metrics(cli_run):
    runs_root, result = cli_run
    run_dir = runs_root / "latest"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["preset"] == "fast"
    assert config["config"]["limit"] == 3000
    assert config["config"]["seed"] == 4
    assert "keras" in config["versions"] and "tensorflow-cpu" in config["versions"]
    with open(run_dir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.8 < metrics["test_accuracy"] <= 1.0
    assert metrics["first_test_image"]["actual"] == "7"
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in result.stdout
    assert "first test image: predicted" in result.stdout
    # Not a terminal: one log line per epoch (on stderr, with the log), no progress bar.
    assert result.stderr.count("epoch 1/2 |") == 1 and "epoch 2/2 |" in result.stderr
    assert "epoch 1/2" not in result.stdout and "━" not in result.stdout


def test_show_writes_a_black_on_white_png(tmp_path):
    out = tmp_path / "digit.png"
    result = run_cli("show", "--index", "7", "--figure", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "label 3" in result.stdout  # MNIST's training image 7 is a 3
    with Image.open(out) as image:
        assert image.size == (300, 330)  # the Matplotlib figure, with its title
        gray = image.convert("L")
        # Mostly white paper with dark ink.
        histogram = gray.histogram()
        assert sum(histogram[200:]) > 0.6 * sum(histogram)
        assert sum(histogram[:60]) > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["show", "--index", "70000"], "--index 70000 is out of range"),
        (["train", "--epochs", "0"], "--epochs must be at least 1"),
        (["train", "--validation-split", "1"], "--validation-split must be in [0, 1)"),
        (["train", "--elastic-alpha", "-1"], "--elastic-alpha must be at least 0, got -1.0"),
        (["train", "--label-smoothing", "1"], "--label-smoothing must be in [0, 1), got 1.0"),
        (["train", "--pen-style-share", "2"], "--pen-style-share must be in [0, 1], got 2.0"),
        (["train", "--data", "/nonexistent/mnist.npz"], "/nonexistent/mnist.npz: no such file"),
        (["serve", "--port", "99999"], "argument --port: must be from 1 to 65535, got 99999"),
        (["serve", "--port", "http"], "argument --port: must be a whole number, got 'http'"),
        (
            ["predict", "--min-confidence", "2", "x.png"],
            "argument --min-confidence: must be from 0 to 1, got 2",
        ),
        # Values that pass a comparison but make no sense.
        (["train", "--elastic-alpha", "nan"], "error: --elastic-alpha must be a finite number"),
        (["export", "--check", "-1"], "argument --check: must be from 0 to"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(arguments, message):
    result = run_cli(*arguments)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_preset_is_an_argparse_error():
    result = run_cli("train", "--preset", "turbo")
    assert result.returncode == 2
    assert "invalid choice: 'turbo'" in result.stderr


def test_console_script_is_installed():
    script = Path(sysconfig.get_path("scripts")) / "mnist-cnn"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "train" in result.stdout and "show" in result.stdout


def test_version_and_help_start_without_tensorflow():
    code = (
        "import sys\n"
        "from mnist_cnn.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.splitlines() == [
        f"mnist-cnn {mnist_cnn.__version__}",
        "exit 0",
        "False False",
    ]


def test_the_tutorial_preset_keeps_its_old_name_with_a_note():
    from mnist_cnn.config import PRESETS, preset_config

    assert preset_config("seed") == PRESETS["tutorial"]
    result = run_cli("train", "--preset", "seed", "--epochs", "0")
    assert "note: the preset 'seed' is now called 'tutorial'" in result.stderr
    assert "--epochs must be at least 1" in result.stderr


def test_the_library_names_fields_and_the_cli_names_flags():
    from mnist_cnn.config import ConfigError, preset_config

    with pytest.raises(ConfigError, match=r"^batch_size must be at least 1, got 0$"):
        preset_config("fast", batch_size=0)
    result = run_cli("train", "--batch-size", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --batch-size must be at least 1, got 0"


@pytest.mark.slow
def test_a_newline_in_a_file_name_keeps_the_error_on_one_line(tmp_path, trained_run, capsys):
    missing = tmp_path / "two\nlines.png"
    result = run_cli_here(capsys, "predict", "--model", str(trained_run.run_dir), str(missing))
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: {tmp_path}/two\\nlines.png: no such file"]


@pytest.mark.slow
@pytest.mark.parametrize("option", ["--out", "--show-preprocessed"])
def test_an_output_path_that_is_a_folder_is_one_line(tmp_path, trained_run, option):
    picture = tmp_path / "seven.png"
    Image.fromarray(255 - trained_run_digit()).save(picture)
    if option == "--out":
        result = run_cli("show", "--out", str(tmp_path))
    else:
        arguments = ["--model", str(trained_run.run_dir), "--show-preprocessed", str(tmp_path)]
        result = run_cli("predict", *arguments, str(picture))
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and str(tmp_path) in error_lines[0]
    assert "Traceback" not in result.stderr


def trained_run_digit():
    from mnist_cnn.data import load_mnist

    return load_mnist(allow_download=False).test_images[0]


@pytest.mark.slow
def test_serve_on_a_taken_port_exits_with_3_and_one_line(trained_run):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", str(trained_run.run_dir), "--port", str(port), timeout=120)
    assert result.returncode == 3, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [
        f"error: port {port} on 127.0.0.1: already in use by another program; "
        "stop it or choose another --port"
    ]
    assert "Traceback" not in result.stderr


def test_the_cli_default_confidence_is_the_library_default():
    from mnist_cnn.cli import build_parser
    from mnist_cnn.prediction import DEFAULT_MIN_CONFIDENCE

    parsed = build_parser().parse_args(["predict", "x.png"])
    assert parsed.min_confidence == DEFAULT_MIN_CONFIDENCE


def test_the_cli_offers_every_export_format():
    from mnist_cnn.cli.run_commands import EXPORT_FORMATS
    from mnist_cnn.export import FORMATS

    assert EXPORT_FORMATS == FORMATS


def test_help_and_version_need_nothing_but_the_standard_library():
    # A wheel installed without its dependencies still answers --help and --version.
    code = (
        "import sys\n"
        "from mnist_cnn.cli import build_parser\n"
        "build_parser()\n"
        "heavy = {'numpy', 'keras', 'tensorflow', 'PIL', 'matplotlib'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_single_npy_given_as_data_is_one_line(tmp_path):
    import numpy as np

    path = tmp_path / "arr.npy"
    np.save(path, np.zeros((3, 28, 28), np.uint8))
    result = run_cli("data", "--data", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"{path}: a single array (.npy), not an .npz of x_train, y_train, x_test, y_test"
    )
