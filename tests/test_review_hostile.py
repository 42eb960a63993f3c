"""Found by a hostile review of issue #18's parts: each test failed before its fix."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.feedback import FeedbackStore
from mnist_cnn.feedback.store import SCHEMA_VERSION


def test_stores_opened_at_once_on_a_new_file_all_open_and_migrate_once(tmp_path):
    # Two servers on one --data-dir (or an import while serving) make the file at
    # the same moment; each must see the other's migration, not redo it.
    for trial in range(25):
        path = tmp_path / f"store-{trial}" / "feedback.sqlite3"
        barrier = threading.Barrier(4)
        errors: list[Exception] = []

        def open_store(path=path, barrier=barrier, errors=errors) -> None:
            barrier.wait()
            try:
                FeedbackStore.open(path, create=True).close()
            except Exception as error:  # collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=open_store) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with FeedbackStore.open(path, create=False) as store:
            assert store.count() == 0
            version = store._connection.execute("PRAGMA user_version").fetchone()[0]
            assert version == SCHEMA_VERSION


@pytest.mark.parametrize("option", ["--explain", "--show-preprocessed"])
@pytest.mark.parametrize("where", ["a folder", "a missing parent", "a file as parent"])
def test_predict_output_paths_are_refused_before_any_work(tmp_path, capsys, option, where):
    from mnist_cnn.cli import main

    picture = tmp_path / "seven.png"
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(picture)
    out = {
        "a folder": tmp_path,
        "a missing parent": tmp_path / "missing" / "deeper" / "why.png",
        "a file as parent": picture / "why.png",
    }[where]
    # The model does not exist: refusing the output first proves no work was done.
    no_model = tmp_path / "no-such-run"
    assert main(["predict", "-q", "--model", str(no_model), option, str(out), str(picture)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err.strip()
    assert error.startswith("error: ") and "\n" not in error and option in error
    assert "no-such-run" not in error
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_predict_explain_captions_a_refused_picture_not_a_digit(trained_run, tmp_path, monkeypatch):
    import mnist_cnn.plots
    from mnist_cnn.cli import main

    dot = np.full((100, 100), 255, np.uint8)
    dot[45:55, 45:55] = 0  # the packaged detector refuses a dot
    Image.fromarray(dot).save(tmp_path / "dot.png")
    drawn = mnist_cnn.plots.saliency_figure
    captions: list[str] = []

    def recording(images, saliency, titles, **options):
        captions.extend(titles)
        return drawn(images, saliency, titles, **options)

    monkeypatch.setattr(mnist_cnn.plots, "saliency_figure", recording)
    out = tmp_path / "why.png"
    arguments = ["predict", "--json", "-q", "--model", str(trained_run.run_dir)]
    assert main([*arguments, "--explain", str(out), str(tmp_path / "dot.png")]) == 0
    assert out.exists()
    # The figure says what predict says: not a digit, the map explaining the best guess.
    assert len(captions) == 1 and captions[0].startswith("dot.png: not a digit")
