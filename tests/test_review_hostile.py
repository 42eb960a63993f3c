"""Found by a hostile review of issue #18's parts: each test failed before its fix."""

from __future__ import annotations

import threading

from mnist_cnn.feedback import FeedbackStore
from mnist_cnn.feedback.store import SCHEMA_VERSION


def test_stores_opened_at_once_on_a_new_file_all_open_and_migrate_once(tmp_path):
    # Two servers on one --data-dir (or an import while serving) make the file at
    # the same moment; each must see the other's migration, not redo it.
    for trial in range(10):
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
