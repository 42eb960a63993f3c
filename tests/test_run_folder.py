"""A run folder belongs to one run: no mixing, no two writers, no stray temporaries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading

import pytest

from mnist_cnn.config import preset_config
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.pipeline import train_run
from mnist_cnn.run_folder import RunFolder
from tests.helpers import run_cli

TINY = ["--limit", "600", "--epochs", "2", "--validation-split", "0.2"]


def tiny_config(**overrides):
    return preset_config("fast", limit=600, epochs=1, validation_split=0.2, **overrides)


@pytest.fixture(scope="module")
def tiny_best_run(tmp_path_factory):
    """A finished run of ``train TINY --keep best``, trained once for the module's tests."""
    from mnist_cnn.cli import main

    run_dir = tmp_path_factory.mktemp("tiny-best") / "run"
    # In this process: what is tested is the folder it leaves, not the interpreter.
    assert main(["-q", "train", *TINY, "--keep", "best", "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture
def finished_run(tmp_path, tiny_best_run):
    """This test's own copy of the finished run, to refuse or resume."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_best_run, run_dir)
    return run_dir


@pytest.mark.slow
def test_a_fresh_run_refuses_a_folder_that_holds_another_run(finished_run, mnist):
    run_dir = finished_run
    model_before = (run_dir / "model.keras").read_bytes()
    metrics_before = (run_dir / "metrics.json").read_text()

    second = run_cli("train", *TINY, "--seed", "5", "--run-dir", str(run_dir))
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run_dir}: the folder already holds")
    assert f"mnist-cnn train --resume {run_dir}" in lines[0]
    # Nothing of the first run was touched.
    assert (run_dir / "model.keras").read_bytes() == model_before
    assert (run_dir / "metrics.json").read_text() == metrics_before

    # The library refuses it too.
    with pytest.raises(MnistCnnError, match="already holds files"):
        train_run(tiny_config(), mnist, run_dir, log=lambda line: None)


def test_a_file_in_the_folder_is_enough_to_refuse_it(tmp_path, mnist):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(MnistCnnError, match=r"already holds files \(notes\.txt\)"):
        train_run(tiny_config(), mnist, tmp_path, log=lambda line: None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_an_empty_existing_folder_is_fine(tmp_path, mnist):
    summary = train_run(tiny_config(), mnist, tmp_path, log=lambda line: None)
    assert summary.run_dir == tmp_path
    assert RunFolder(tmp_path).model_file.exists()


@pytest.mark.slow
def test_a_second_training_on_a_locked_folder_is_refused(tmp_path, mnist):
    run_dir = tmp_path / "run"
    with RunFolder(run_dir).owned(resume=False):
        # Another process...
        result = run_cli("train", *TINY, "--run-dir", str(run_dir))
        assert result.returncode == 2
        assert "another training is writing this run folder" in result.stderr
        assert "Traceback" not in result.stderr
        # ... and another thread of this one.
        errors = []

        def second_training() -> None:
            try:
                train_run(tiny_config(), mnist, run_dir, log=lambda line: None)
            except MnistCnnError as error:
                errors.append(str(error))

        thread = threading.Thread(target=second_training)
        thread.start()
        thread.join()
        assert errors and "another training is writing" in errors[0]
        assert not RunFolder(run_dir).config_file.exists()
    # Released: the folder (holding only the lock file) can now be trained into.
    train_run(tiny_config(), mnist, run_dir, log=lambda line: None)


def test_create_new_gives_distinct_folders_in_the_same_second(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 11, 26, 12, 0, 0)
    folders = [RunFolder.create_new(tmp_path, "fast", now).path for _ in range(3)]
    assert [folder.name for folder in folders] == [
        "20261126-120000-fast",
        "20261126-120000-fast-2",
        "20261126-120000-fast-3",
    ]


@pytest.mark.parametrize(
    "option",
    [
        ["--data", "other.npz"],
        ["--run-dir", "elsewhere"],
        ["--runs-root", "elsewhere"],
        ["--class-names", "a,b"],
        ["--preset", "accurate"],
        ["--seed", "3"],
    ],
)
def test_resume_refuses_options_it_cannot_honour(tmp_path, option):
    result = run_cli("train", "--resume", str(tmp_path), *option)
    assert result.returncode == 2
    assert f"drop {option[0]}" in result.stderr


@pytest.mark.slow
def test_resume_keeps_the_choice_of_model_and_clears_stray_temporaries(finished_run, capsys):
    from mnist_cnn.cli import main

    run_dir = finished_run
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["keep"] == "best" and stored["backend"] == "tensorflow"
    stray = run_dir / "checkpoints" / ".tmp-epoch-0003-abc.keras"
    stray.write_bytes(b"half a checkpoint")

    assert main(["train", "--resume", str(run_dir)]) == 0, capsys.readouterr().err
    assert not stray.exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["kept"] == "best"
    assert metrics["resumed_from_epoch"] == 2


def test_run_dir_that_is_a_file_is_one_line(tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    result = run_cli("train", *TINY, "--run-dir", str(not_a_folder))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {not_a_folder}: not a folder"


@pytest.mark.slow
def test_a_full_disk_while_writing_a_run_is_one_line(tmp_path):
    # RLIMIT_FSIZE makes every write past 200 kB fail with EFBIG ("File too large"),
    # as a full disk fails with ENOSPC: the first checkpoint is bigger than that.
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        "from mnist_cnn.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", code, "train", *TINY, "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "File too large" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert not (run_dir / "model.keras").exists()


@pytest.mark.parametrize("state", ["{}", '{"epoch": 1, "history": []}', "[1, 2]"])
def test_a_damaged_checkpoint_state_is_one_line(tmp_path, state):
    from mnist_cnn.config import PRESETS

    (tmp_path / "config.json").write_text(json.dumps({"config": PRESETS["fast"].to_dict()}))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "state.json").write_text(state)
    result = run_cli("train", "--resume", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith("and the history)")
    assert "Traceback" not in result.stderr


def test_latest_moves_between_runs_but_a_users_own_link_is_left_alone(tmp_path):
    first, second = RunFolder(tmp_path / "a"), RunFolder(tmp_path / "b")
    for run in (first, second):
        run.path.mkdir()
        run.config_file.write_text("{}")
    first.point_latest_at()
    assert (tmp_path / "latest").resolve() == first.path.resolve()
    second.point_latest_at()
    assert (tmp_path / "latest").resolve() == second.path.resolve()

    # The user's own "latest", to somewhere else entirely, is not ours to move.
    elsewhere = tmp_path / "my" / "data"
    elsewhere.mkdir(parents=True)
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").symlink_to(elsewhere)
    first.point_latest_at()
    assert (tmp_path / "latest").resolve() == elsewhere.resolve()
    # Nor is a link to a sibling that is not a run.
    (tmp_path / "notes").mkdir()
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").symlink_to("notes")
    first.point_latest_at()
    assert (tmp_path / "latest").resolve() == (tmp_path / "notes").resolve()
