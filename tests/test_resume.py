"""Training survives crashes: kill -9, resume, and files that are whole or absent."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from mnist_cnn.engines import load_model
from mnist_cnn.errors import MnistCnnError
from tests.helpers import run_cli, run_cli_here

# Four epochs of about a second each on two CPU cores: a kill after the second epoch's
# checkpoint lands well before the last one, and whole runs stay short.
EPOCHS = 4
TRAIN_ARGUMENTS = [
    "--limit", "3000", "--epochs", str(EPOCHS), "--validation-split", "0.2", "--seed", "11",
]  # fmt: skip


def start_training(run_dir, arguments=TRAIN_ARGUMENTS):
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn", "train", *arguments, "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def saved_epoch(run_dir):
    try:
        return json.loads((run_dir / "checkpoints" / "state.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def epochs_in_history(run_dir):
    with open(run_dir / "history.csv") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from mnist_cnn.cli import main

    run_dir = tmp_path_factory.mktemp("whole") / "run"
    # In this process: only the interrupted run needs one of its own, to be killed.
    assert main(["-q", "train", *TRAIN_ARGUMENTS, "--run-dir", str(run_dir)]) == 0
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_killed_after_epoch_two_then_resumed_matches_an_uninterrupted_run(
    tmp_path, uninterrupted, capsys
):
    run_dir = tmp_path / "run"
    process = start_training(run_dir)
    deadline = time.monotonic() + 240
    while saved_epoch(run_dir) < 2:
        assert process.poll() is None, "training ended before the second epoch was saved"
        assert time.monotonic() < deadline, "no second epoch within 4 minutes"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = saved_epoch(run_dir)
    assert 2 <= killed_at < EPOCHS, "the kill must land before training finished"
    assert not (run_dir / "metrics.json").exists()

    result = run_cli_here(capsys, "train", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert epochs_in_history(run_dir) == list(range(1, EPOCHS + 1))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == killed_at
    load_model(run_dir)  # the final model loads
    # The same batches from the same state: the numbers came out bit-identical here. One
    # test image (0.0001) of slack allows for float sums reordered by multi-threaded kernels.
    assert abs(metrics["test_accuracy"] - uninterrupted["test_accuracy"]) <= 0.0001
    assert metrics["test_loss"] == pytest.approx(uninterrupted["test_loss"], abs=1e-4)


def test_resume_refuses_new_settings_and_missing_checkpoints(tmp_path):
    result = run_cli("train", "--resume", str(tmp_path), "--epochs", "3")
    assert result.returncode == 2
    assert "drop --epochs" in result.stderr
    from mnist_cnn.config import PRESETS

    config = {"config": PRESETS["fast"].to_dict(), "data": {}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = run_cli("train", "--resume", str(tmp_path))
    assert result.returncode == 2
    assert "no checkpoint to resume from" in result.stderr
    (tmp_path / "config.json").write_text(json.dumps({"config": {"preset": "x"}}))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "state.json").write_text("{}")
    result = run_cli("train", "--resume", str(tmp_path))
    assert result.returncode == 2
    assert "incomplete training settings" in result.stderr


def check_whole_or_absent(run_dir):
    """Every file under its final name is complete; returns how many were checked."""
    from PIL import Image

    checked = 0
    for path in run_dir.rglob("*"):
        if path.is_dir() or path.name.startswith(".tmp-"):
            continue
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, path
            load_model(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert all(len(row) == 6 and None not in row.values() for row in rows), path
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".html":
            assert path.read_text().rstrip().endswith("</html>"), path
        checked += 1
    return checked


# A small run (two epochs on 1,000 images) whose every phase is reached within seconds.
SHORT_TRAIN_ARGUMENTS = ["--limit", "1000", "--epochs", "2", "--validation-split", "0.2"]
# Each kill is timed from a file the run has just finished, so that every phase is hit
# whatever the machine's speed: (the file, then seconds more, the phase it lands in).
KILL_MOMENTS = [
    ("config.json", 0.3, "drawing samples.png, building the model, the first epoch"),
    ("checkpoints/state.json", 0.0, "the second epoch and its checkpoint"),
    ("model.keras", 0.0, "evaluating, writing metrics.json"),
    ("evaluation.json", 0.1, "drawing the evaluation figures, writing report.html"),
]


@pytest.mark.slow
def test_runs_killed_at_many_moments_leave_only_whole_files(tmp_path):
    # Kill runs across training, saving and reporting; each kill waits for the file
    # that ends the phase before, so that a slow start (a loaded machine) shifts nothing.
    checked = 0
    for index, (anchor, delay, phase) in enumerate(KILL_MOMENTS):
        run_dir = tmp_path / f"killed-{index}"
        process = start_training(run_dir, SHORT_TRAIN_ARGUMENTS)
        deadline = time.monotonic() + 120
        while not (run_dir / anchor).exists():
            assert process.poll() is None and time.monotonic() < deadline, (anchor, phase)
            time.sleep(0.01)
        time.sleep(delay)
        assert process.poll() is None, f"the run ended before the kill while {phase}"
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not (run_dir / "report.html").exists(), f"the kill while {phase} came too late"
        checked += check_whole_or_absent(run_dir)
    assert checked > 10


def test_a_write_killed_midway_leaves_no_file_under_the_final_name(tmp_path):
    target = tmp_path / "big.bin"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mnist_cnn.atomic_files import atomic_path\n"
        "with atomic_path(Path(sys.argv[1])) as temporary:\n"
        "    with open(temporary, 'wb') as handle:\n"
        "        for _ in range(1000):\n"
        "            handle.write(b'x' * 100_000); handle.flush(); time.sleep(0.01)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(target)])
    deadline = time.monotonic() + 30
    while sum(part.stat().st_size for part in tmp_path.glob(".tmp-big-*")) < 1_000_000:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not target.exists()
    assert list(tmp_path.glob(".tmp-big-*")), "the partial write stayed under a temporary name"


def test_lambda_layer_model_is_refused_by_safe_mode(tmp_path):
    import keras

    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(),
         keras.layers.Dense(10, activation="softmax")]
    )  # fmt: skip
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(MnistCnnError, match=r"lambda\.keras: not a loadable Keras model"):
        load_model(path)


@pytest.mark.parametrize("content", [b"PK\x03\x04 broken zip", b"not a zip at all"])
def test_malformed_archive_is_refused(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(MnistCnnError, match="not a loadable Keras model"):
        load_model(path)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn", "train", *TRAIN_ARGUMENTS, "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while saved_epoch(run_dir) < 1:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"mnist-cnn train --resume {run_dir}" in stderr
    assert "Traceback" not in stderr
    assert epochs_in_history(run_dir) == list(range(1, saved_epoch(run_dir) + 1))


@pytest.mark.slow
def test_keep_best_uses_the_best_validation_epoch(tmp_path):
    from mnist_cnn.cli import main

    run_dir = tmp_path / "run"
    # In this process: the command's options are the point, not a fresh interpreter.
    code = main([
        "-q", "train", "--limit", "2000", "--epochs", "3", "--validation-split", "0.2",
        "--keep", "best", "--run-dir", str(run_dir),
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "history.csv") as handle:
        accuracies = [float(row["val_accuracy"]) for row in csv.DictReader(handle)]
    assert metrics["kept"] == "best"
    assert metrics["best_validation_epoch"] == 1 + accuracies.index(max(accuracies))
    assert (run_dir / "best.keras").exists()


def test_a_stop_request_interrupts_fit_after_the_current_batch():
    import keras
    import numpy as np

    from mnist_cnn.training import StopWhenAsked

    stopper = StopWhenAsked()
    finished_batches = []

    class AskDuringBatchTwo(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                stopper.asked = True  # what the Ctrl-C handler does

        def on_train_batch_end(self, batch, logs=None):
            finished_batches.append(batch)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = np.zeros((80, 4), dtype="float32")
    labels = np.zeros(80, dtype="int32")
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            images, labels, batch_size=8, epochs=3, verbose=0,
            callbacks=[AskDuringBatchTwo(), stopper],
        )  # fmt: skip
    assert finished_batches == [0, 1, 2]


def test_ctrl_c_outside_fit_interrupts_at_once_and_inside_fit_waits_for_the_batch():
    """After the last epoch (evaluation, figures) no batch end would see the request."""
    import os

    from mnist_cnn.cli.train_command import _ctrl_c_asks
    from mnist_cnn.training import StopWhenAsked

    stopper = StopWhenAsked()
    with _ctrl_c_asks(stopper):
        stopper.on_train_begin()
        os.kill(os.getpid(), signal.SIGINT)  # inside fit: only asks
        assert stopper.asked
        stopper.on_train_end()
        stopper.asked = False
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # after fit: at once
            time.sleep(1)  # the handler runs between bytecodes; never reached


@pytest.mark.slow
def test_keep_best_keeps_each_ensemble_member_at_its_best_epoch(tmp_path, mnist):
    """An ensemble kept at "best" averages its members' best.keras, not their last epochs."""
    import dataclasses

    import numpy as np

    from mnist_cnn.config import preset_config
    from mnist_cnn.engines import load_model
    from mnist_cnn.models import average_over_shifts, ensemble_model
    from mnist_cnn.pipeline import train_run

    small = dataclasses.replace(
        mnist.limited(1500),
        test_images=mnist.test_images[:200],
        test_labels=mnist.test_labels[:200],
    )
    config = preset_config("fast", epochs=3, ensemble=2, validation_split=0.3, seed=3)
    run_dir = tmp_path / "run"
    train_run(config, small, run_dir, keep="best", log=lambda line: None)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["kept"] == "best"
    member_bests = []
    for member in (0, 1):
        state_file = run_dir / f"member-{member}" / "checkpoints" / "state.json"
        member_bests.append(json.loads(state_file.read_text())["best_epoch"])
    assert metrics["best_validation_epoch"] == member_bests
    members = [load_model(run_dir / f"member-{member}" / "best.keras") for member in (0, 1)]
    expected_model = average_over_shifts(ensemble_model(members), config.test_time_views)
    images = small.test_images[:50, ..., None] / 255.0
    expected = expected_model.predict(images, verbose=0)
    kept = load_model(run_dir / "model.keras").predict(images, verbose=0)
    np.testing.assert_allclose(kept, expected, atol=1e-5)
