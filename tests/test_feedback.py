"""The feedback store, its API on a real server, and ``mnist-cnn feedback``.

The store is a real SQLite file in a temporary folder; the API is served by
uvicorn on a loopback port; the CLI runs as ``main([...])`` or, where a
process exit matters, as a fresh interpreter.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.errors import MnistCnnError
from mnist_cnn.feedback import (
    APPLICATION_ID,
    MAX_PICTURE_BYTES,
    NOT_A_DIGIT,
    PICTURE_SIDE,
    SCHEMA_VERSION,
    Feedback,
    FeedbackStore,
    LazyFeedbackStore,
    database_path,
    default_data_dir,
    labelled_digits,
    migrate,
    stored_picture,
)

SERVED_MODEL = "feedback-test-run"


def feedback(image, label, answer, source="page", picture=None):
    return Feedback(
        preprocessed=image, label=label, answer=answer, model="m", source=source, picture=picture
    )


@pytest.fixture
def digits(mnist):
    """Twenty real MNIST training digits and their labels."""
    return mnist.train_images[:20], mnist.train_labels[:20].astype(int)


@pytest.fixture
def store_with_rows(tmp_path, digits):
    """A store of 20 real digits: every third answer wrong, the last two 'not a digit'."""
    images, labels = digits
    path = database_path(tmp_path)
    with FeedbackStore.open(path) as store:
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            answer = (label + 1) % 10 if index % 3 == 0 else label
            if index >= 18:
                label = NOT_A_DIGIT
            store.add(feedback(image, int(label), int(answer)))
    return path


# ---- The store ---------------------------------------------------------------------


def test_the_data_dir_follows_xdg_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert database_path() == tmp_path / "mnist-cnn" / "feedback.sqlite3"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir().parts[-3:] == (".local", "share", "mnist-cnn")


def test_a_new_store_has_the_latest_schema_in_wal_mode(tmp_path):
    path = database_path(tmp_path / "new" / "folder")
    FeedbackStore.open(path).close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_a_version_1_store_is_migrated_and_keeps_its_rows(tmp_path, digits):
    images, _ = digits
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    assert migrate(connection, to_version=1) == 1
    connection.execute(
        "INSERT INTO feedback (created_at, source, answer, label, model, preprocessed) "
        "VALUES ('2024-01-01T00:00:00Z', 'page', 3, 5, 'old', ?)",
        (images[0].tobytes(),),
    )
    connection.close()
    with FeedbackStore.open(path) as store:
        (row,) = store.recent()
        assert (row.answer, row.label, row.model, row.created_at) == (
            3, 5, "old", "2024-01-01T00:00:00Z"
        )  # fmt: skip
        assert np.array_equal(store.images(row.id)[0], images[0])
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    assert ("feedback_label",) in indexes
    connection.close()


def test_a_row_round_trips_with_its_picture(tmp_path, digits):
    images, _ = digits
    photo = np.random.default_rng(0).random((900, 600))  # a big grey picture, noise
    picture = stored_picture(photo)
    with FeedbackStore.open(database_path(tmp_path)) as store:
        stored = store.add(feedback(images[0], 5, 3, picture=picture))
        assert store.recent()[0] == stored
        preprocessed, png = store.images(stored.id)
    assert stored.confirmed is False and stored.source == "page" and stored.model == "m"
    assert preprocessed.dtype == np.uint8 and np.array_equal(preprocessed, images[0])
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == "PNG" and decoded.mode == "L"
    assert max(decoded.size) == PICTURE_SIDE and decoded.size == (85, PICTURE_SIDE)
    assert len(png) <= MAX_PICTURE_BYTES


def test_pictures_over_the_cap_and_bad_values_store_nothing(tmp_path, digits):
    images, _ = digits
    good = feedback(images[0], 1, 1)
    bad = [
        feedback(images[0], 1, 1, picture=b"x" * (MAX_PICTURE_BYTES + 1)),
        feedback(images[0], 10, 1),
        feedback(images[0], 1, -2),
        feedback(images[0], True, 1),
        feedback(images[0][:27], 1, 1),
        feedback(images[0], 1, 1, source="email"),
    ]
    with FeedbackStore.open(database_path(tmp_path)) as store:
        for row in bad:
            with pytest.raises(MnistCnnError):
                store.add_many([good, row])  # all or nothing
        assert store.count() == 0


def test_labelled_digits_gives_digit_rows_in_insertion_order(store_with_rows, digits):
    images, labels = labelled_digits(store_with_rows)
    assert images.shape == (18, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.array_equal(labels, digits[1][:18]) and np.array_equal(images, digits[0][:18])


def test_labelled_digits_of_a_missing_file_or_another_database_is_one_line(tmp_path):
    with pytest.raises(MnistCnnError, match="no feedback database"):
        labelled_digits(tmp_path / "missing.sqlite3")
    assert not (tmp_path / "missing.sqlite3").exists()  # asking never makes one
    other = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE notes (text)")
    connection.commit()
    connection.close()
    with pytest.raises(MnistCnnError, match="another program's SQLite database"):
        labelled_digits(other)


def test_a_store_from_a_newer_mnist_cnn_is_refused(tmp_path):
    path = database_path(tmp_path)
    FeedbackStore.open(path).close()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(MnistCnnError, match="newer mnist-cnn"):
        FeedbackStore.open(path)


def _damaged(path, how):
    data = path.read_bytes()
    if how == "not sqlite":
        return b"my shopping list, not a database\n" * 200
    if how == "truncated":
        return data[: len(data) // 2]
    return data[:4096] + b"\xff" * 4096 + data[8192:]  # page 2, the table's root, overwritten


@pytest.mark.parametrize("how", ["not sqlite", "truncated", "overwritten page"])
def test_a_damaged_store_is_one_line_and_left_byte_for_byte(store_with_rows, tmp_path, how, capsys):
    from mnist_cnn.cli import main

    damaged = _damaged(store_with_rows, how)
    store_with_rows.write_bytes(damaged)
    folder = str(store_with_rows.parent)
    with pytest.raises(MnistCnnError, match=r"feedback\.sqlite3: not a readable feedback database"):
        FeedbackStore.open(store_with_rows)
    rows = tmp_path / "rows.npz"
    np.savez(rows, x_train=np.zeros((1, 28, 28), np.uint8), y_train=np.array([0]),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.array([0]))  # fmt: skip
    commands = [
        ["feedback", "list", "--data-dir", folder],
        ["feedback", "import", str(rows), "--data-dir", folder],
        # The server refuses to start before it loads a model (so no model is needed here).
        ["serve", str(tmp_path / "no-model"), "--data-dir", folder],
    ]
    for command in commands:
        capsys.readouterr()
        assert main(command) == 2, command
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: {store_with_rows}: not a readable feedback database")
        assert "left as it is" in line
    assert store_with_rows.read_bytes() == damaged
    # No journal beside it either: nothing was written.
    assert [path.name for path in store_with_rows.parent.glob("feedback*")] == ["feedback.sqlite3"]


# ---- The API, on a real server -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """uvicorn on loopback, serving the app with a feedback store in a temporary folder.

    The feedback route never runs the model, so the app gets a classifier that
    answers nothing useful (and would fail a test that asked it).
    """
    import uvicorn

    from mnist_cnn.engines import Classifier
    from mnist_cnn.serve import create_app

    data_dir = tmp_path_factory.mktemp("feedback-api")
    unused = Classifier(
        name=f"{SERVED_MODEL}/model.keras",
        class_names=tuple(str(digit) for digit in range(10)),
        probabilities=lambda images: np.full((len(images), 10), 0.1, dtype=np.float32),
    )
    store = LazyFeedbackStore(database_path(data_dir))
    app = create_app(unused, {"name": SERVED_MODEL}, feedback_store=store)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", database_path(data_dir)
    server.should_exit = True
    thread.join(timeout=30)


def post(url, body, *, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/api/feedback", data=data, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def png_data_url(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_feedback_is_stored_and_answered_with_201(api, mnist):
    url, path = api
    image = mnist.test_images[0]
    drawing = np.full((200, 160), 255, dtype=np.uint8)
    drawing[40:160, 60:100] = 0  # a black bar on white paper
    status, row = post(
        url,
        {
            "preprocessed": image.tolist(),
            "answer": 1,
            "label": 7,
            "model": SERVED_MODEL,
            "picture": png_data_url(drawing),
            "source": "page",
        },
    )
    assert status == 201, row
    assert row["answer"] == 1 and row["label"] == 7 and row["confirmed"] is False
    assert row["model"] == SERVED_MODEL and row["source"] == "page"
    assert 0 < row["picture_bytes"] <= MAX_PICTURE_BYTES
    with FeedbackStore.open(path, create=False) as store:
        preprocessed, picture = store.images(row["id"])
    assert np.array_equal(preprocessed, image)
    stored = Image.open(io.BytesIO(picture))
    assert stored.mode == "L" and stored.size == (102, PICTURE_SIDE)
    status, row = post(url, {"preprocessed": image.tolist(), "answer": 7, "label": "not a digit"})
    assert status == 201 and row["label"] == "not a digit" and row["source"] == "api"
    assert row["model"] == SERVED_MODEL  # the served model, when none is named


SEVEN = np.zeros((28, 28), dtype=int).tolist()
BAD_FEEDBACK = [
    ({"answer": 7, "label": 12}, "label: 12 is not a digit 0-9 or 'not a digit'"),
    ({"answer": 7, "label": "7"}, "label: \"7\" is not a digit 0-9 or 'not a digit'"),
    ({"answer": 7, "label": True}, "label: true is not a digit 0-9 or 'not a digit'"),
    ({"answer": "nine", "label": 7}, "answer: \"nine\" is not a digit 0-9 or 'not a digit'"),
    ({"answer": 7}, "label: missing"),
    ({"answer": 7, "label": 7, "preprocessed": SEVEN[:27]},
     "preprocessed: 27 rows, expected 28 rows of 28 numbers"),
    ({"answer": 7, "label": 7, "preprocessed": [[0] * 27, *SEVEN[1:]]},
     "preprocessed[0]: 27 numbers, expected 28 rows of 28 numbers"),
    ({"answer": 7, "label": 7, "preprocessed": [[256] + [0] * 27, *SEVEN[1:]]},
     "preprocessed[0][0]: 256 is not a number in [0, 255]"),
    ({"answer": 7, "label": 7, "model": "someone-else"},
     f"model 'someone-else': not the served model ('{SERVED_MODEL}')"),
    ({"answer": 7, "label": 7, "picture": "%%%"}, "picture: not valid base64"),
    ({"answer": 7, "label": 7, "picture": base64.b64encode(b"not a picture").decode()},
     "picture: not an image file"),
    ({"answer": 7, "label": 7, "picture": base64.b64encode(bytes(40_000)).decode()},
     "picture: about 40002 bytes, over the 32 KB limit"),
    ({"answer": 7, "label": 7, "source": "import"}, "source: Input should be 'page' or 'api'"),
]  # fmt: skip


@pytest.mark.parametrize("change,message", BAD_FEEDBACK, ids=[m for _, m in BAD_FEEDBACK])
def test_malformed_feedback_is_a_json_422_with_one_line(api, change, message):
    url, path = api
    with FeedbackStore.open(path) as store:
        before = store.count()
    status, answer = post(url, {"preprocessed": SEVEN, **change})
    assert status == 422
    assert list(answer) == ["detail"] and answer["detail"].startswith(message), answer
    assert "\n" not in answer["detail"]
    with FeedbackStore.open(path) as store:
        assert store.count() == before


def test_feedback_that_is_not_json_or_too_big_is_refused(api):
    url, _ = api
    assert post(url, None, raw=b"{not json")[0] == 422
    status, answer = post(url, None, raw=b" " * (65 * 1024))
    assert status == 413 and "64 KB" in answer["detail"]


@pytest.mark.slow
def test_eight_clients_posting_50_rows_each_store_all_400(api, mnist):
    url, path = api
    with FeedbackStore.open(path) as store:
        before = store.count()

    def client(number: int) -> list[int]:
        ids = []
        for index in range(50):
            image = mnist.test_images[number * 50 + index]
            label = int(mnist.test_labels[number * 50 + index])
            status, row = post(url, {"preprocessed": image.tolist(), "answer": 0, "label": label})
            assert status == 201, row
            ids.append(row["id"])
        return ids

    with ThreadPoolExecutor(8) as pool:
        ids = [row_id for batch in pool.map(client, range(8)) for row_id in batch]
    assert len(set(ids)) == 400
    with FeedbackStore.open(path) as store:
        assert store.count() == before + 400
    images, labels = labelled_digits(path)
    stored = {(image.tobytes(), int(label)) for image, label in zip(images, labels, strict=True)}
    sent = {
        (mnist.test_images[index].tobytes(), int(mnist.test_labels[index])) for index in range(400)
    }
    assert sent <= stored


def test_a_server_without_a_store_or_with_an_unwritable_one_answers_503(tmp_path):
    from fastapi.testclient import TestClient

    from mnist_cnn.engines import Classifier
    from mnist_cnn.serve import create_app

    unused = Classifier("m.keras", ("0", "1"), lambda images: np.zeros((len(images), 2)))
    body = {"preprocessed": SEVEN, "answer": 1, "label": 1}
    with TestClient(create_app(unused)) as client:
        response = client.post("/api/feedback", json=body)
    assert response.status_code == 503 and "keeps no feedback" in response.json()["detail"]
    a_file = tmp_path / "a-file"
    a_file.write_text("a file where the data folder should be")
    store = LazyFeedbackStore(database_path(a_file))
    with TestClient(create_app(unused, feedback_store=store)) as client:
        response = client.post("/api/feedback", json=body)
    assert response.status_code == 503, response.text
    assert response.json()["detail"].startswith(f"{a_file}: cannot make the data folder")


# ---- The command line -------------------------------------------------------------------


def test_list_and_stats_show_what_was_right_and_the_mistakes(store_with_rows, capsys):
    from mnist_cnn.cli import main

    folder = str(store_with_rows.parent)
    assert main(["feedback", "list", "--limit", "5", "--data-dir", folder]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "time", "(UTC)", "answer", "label", "model"]
    assert [line.split()[0] for line in lines[1:6]] == ["20", "19", "18", "17", "16"]
    assert "not a digit" in lines[1] and "corrected" in lines[1]
    assert lines[-1] == "5 of 20 rows, newest first"

    assert main(["feedback", "stats", "--data-dir", folder]) == 0
    out = capsys.readouterr().out
    # 20 rows: every third answer wrong (6 of the first 18), and the last two labelled
    # "not a digit" though a digit was answered: 12 confirmed, 8 corrected.
    assert "confirmed 12, corrected 8, imported without an answer 0" in out
    assert "the answer was right 60.0% of the time" in out
    assert "most frequent mistakes (answer -> what it was):" in out
    assert " -> not a digit" in out


def test_export_then_import_round_trips_and_train_data_accepts_it(store_with_rows, tmp_path):
    from mnist_cnn.cli import main
    from mnist_cnn.data import load_mnist

    out = tmp_path / "exported" / "corrections.npz"
    folder = str(store_with_rows.parent)
    args = ["feedback", "export", str(out), "--test-fraction", "0.25", "--seed", "3"]
    assert main([*args, "--data-dir", folder]) == 0
    first = out.read_bytes()
    assert main([*args, "--data-dir", folder]) == 0
    assert out.read_bytes() == first  # the split is seeded
    assert [path.name for path in out.parent.iterdir()] == ["corrections.npz"]  # no temporary
    digits = [str(digit) for digit in range(10)]
    dataset = load_mnist(out, class_names=digits)  # what train --data reads, with its checks
    assert len(dataset.train_labels) + len(dataset.test_labels) == 18
    assert len(dataset.test_labels) >= 1
    images, labels = labelled_digits(store_with_rows)
    exported = np.concatenate([dataset.train_images, dataset.test_images])
    assert sorted(image.tobytes() for image in exported) == sorted(i.tobytes() for i in images)

    other = tmp_path / "other-store"
    assert main(["feedback", "import", str(out), "--data-dir", str(other)]) == 0
    imported_images, imported_labels = labelled_digits(database_path(other))

    def pairs(images, labels):
        return sorted(zip((image.tobytes() for image in images), labels.tolist(), strict=True))

    assert pairs(imported_images, imported_labels) == pairs(images, labels)
    with FeedbackStore.open(database_path(other)) as store:
        assert {row.source for row in store.recent(100)} == {"import"}
        assert store.statistics().without_answer == 18


def test_feedback_commands_give_one_line_for_bad_input(tmp_path, capsys):
    from mnist_cnn.cli import main

    empty = str(tmp_path / "empty")
    assert main(["feedback", "stats", "--data-dir", empty]) == 2
    assert "no feedback database" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()
    labels_200 = tmp_path / "labels.npz"
    np.savez(
        labels_200,
        x_train=np.zeros((3, 28, 28), np.uint8),
        y_train=np.array([200, 201, 202]),
        x_test=np.zeros((1, 28, 28), np.uint8),
        y_test=np.array([200]),
    )
    assert main(["feedback", "import", str(labels_200), "--data-dir", empty]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {labels_200}: labels out of range")
    assert not (tmp_path / "empty").exists()  # nothing stored, nothing made


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
