"""The SQLite file: its schema and migrations, and the store that reads and writes it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.errors import MnistCnnError, first_line
from mnist_cnn.feedback.records import (
    MAX_PICTURE_BYTES,
    SOURCES,
    Feedback,
    FeedbackRow,
    FeedbackStats,
    check_label,
    check_preprocessed,
)

# ---- The schema and its migrations ---------------------------------------------------


# "MNFB" in ASCII: marks the file as ours, so another program's database is refused.
APPLICATION_ID = 0x4D4E4642
BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's write


def _create_feedback_table(connection: sqlite3.Connection) -> None:
    # Labels and answers are integers: 0-9, or -1 for "not a digit"; a NULL answer
    # is "none recorded". The CHECKs keep another writer from storing nonsense.
    connection.execute(
        """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('page', 'api', 'import')),
            answer INTEGER CHECK (answer BETWEEN -1 AND 9),
            label INTEGER NOT NULL CHECK (label BETWEEN -1 AND 9),
            model TEXT,
            preprocessed BLOB NOT NULL CHECK (length(preprocessed) = 784),
            picture BLOB
        )
        """
    )


def _index_labels(connection: sqlite3.Connection) -> None:
    # labelled_digits and stats read by label; the index keeps them quick on big stores.
    connection.execute("CREATE INDEX feedback_label ON feedback (label)")


# In order: MIGRATIONS[i] takes a store from version i to version i + 1. Never
# edit one that has shipped; add the next.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_feedback_table,
    _index_labels,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection, *, to_version: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the store lacks, each in its own transaction; return the version."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for index in range(version, to_version):
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process (two servers, or an
            # import while serving) may have made this migration while we waited.
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > index:
                connection.execute("COMMIT")
                continue
            MIGRATIONS[index](connection)
            if index == 0:
                connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version = {index + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        version = index + 1
    return version


# ---- The store ----------------------------------------------------------------------


class FeedbackStore:
    """An open feedback database; safe to share between threads (one lock, one connection).

    Other processes may write the same file at once: SQLite's WAL and a busy
    timeout take turns between them.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> FeedbackStore:
        """Open (or, with ``create``, make) the database at ``path`` and bring it up to date.

        Raises ``MnistCnnError`` naming the file when it is missing (without
        ``create``), damaged, another program's database, or from a newer
        mnist-cnn. Nothing is written to a file that fails these checks.
        """
        path = Path(path)
        if path.is_dir():
            raise MnistCnnError(f"{path}: is a folder, expected a feedback database file")
        if not path.exists() and not create:
            raise MnistCnnError(
                f"{path}: no feedback database (nothing stored yet: the page's Right/Wrong "
                "buttons, POST /api/feedback or 'mnist-cnn feedback import' add rows)"
            )
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise MnistCnnError(
                    f"{path.parent}: cannot make the data folder ({error.strerror or error})"
                ) from None
        mode = "rwc" if create else "rw"
        try:
            # Autocommit: every transaction here is begun and ended explicitly.
            connection = sqlite3.connect(
                f"file:{_uri_path(path)}?mode={mode}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as error:
            raise MnistCnnError(f"{path}: cannot open the feedback database ({error})") from None
        try:
            _check_and_migrate(connection, path)
        except BaseException:
            connection.close()
            raise
        return cls(path, connection)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def add(self, feedback: Feedback, *, now: datetime | None = None) -> FeedbackRow:
        """Store one row; return it as stored (with its id and time)."""
        (row,) = self.add_many([feedback], now=now)
        return row

    def add_many(
        self, rows: Iterable[Feedback], *, now: datetime | None = None
    ) -> list[FeedbackRow]:
        """Store rows in one transaction: all of them, or (on any error) none."""
        created_at = _timestamp(now)
        values = [_row_values(feedback, created_at) for feedback in rows]
        with self._lock, self._errors_named():
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                stored = []
                for value in values:
                    cursor = self._connection.execute(
                        "INSERT INTO feedback (created_at, source, answer, label, model, "
                        "preprocessed, picture) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        value,
                    )
                    stored.append((cursor.lastrowid, value))
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        return [
            FeedbackRow(
                id=int(row_id or 0),
                created_at=value[0],
                source=value[1],
                answer=value[2],
                label=value[3],
                model=value[4],
                picture_bytes=len(value[6] or b""),
            )
            for row_id, value in stored
        ]

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM feedback")[0][0])

    def recent(self, limit: int = 20) -> list[FeedbackRow]:
        """The newest ``limit`` rows, newest first."""
        rows = self._query(
            "SELECT id, created_at, answer, label, model, source, "
            "coalesce(length(picture), 0) FROM feedback ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [FeedbackRow(*row) for row in rows]

    def images(self, row_id: int) -> tuple[np.ndarray, bytes | None]:
        """The (28, 28) uint8 image and the PNG picture (or None) of one row."""
        rows = self._query("SELECT preprocessed, picture FROM feedback WHERE id = ?", (row_id,))
        if not rows:
            raise MnistCnnError(f"{self.path}: no feedback row {row_id}")
        preprocessed, picture = rows[0]
        return _image_from_blob(preprocessed), picture

    def labelled(self, *, digits_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Images (N, 28, 28) uint8 and labels (N,) int64 in insertion order.

        ``digits_only`` leaves out the rows labelled NOT_A_DIGIT.
        """
        where = "WHERE label >= 0 " if digits_only else ""
        rows = self._query(f"SELECT preprocessed, label FROM feedback {where}ORDER BY id")
        images = np.zeros((len(rows), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        for index, (blob, _) in enumerate(rows):
            images[index] = _image_from_blob(blob)
        labels = np.array([label for _, label in rows], dtype=np.int64)
        return images, labels

    def statistics(self) -> FeedbackStats:
        rows = self._query("SELECT answer, label, count(*) FROM feedback GROUP BY answer, label")
        confirmed = corrected = without_answer = 0
        per_label: dict[int, list[int]] = {}
        mistakes = []
        for answer, label, count in rows:
            if answer is None:
                without_answer += count
                continue
            judged, right = per_label.setdefault(label, [0, 0])
            per_label[label] = [judged + count, right + (count if answer == label else 0)]
            if answer == label:
                confirmed += count
            else:
                corrected += count
                mistakes.append((answer, label, count))
        mistakes.sort(key=lambda mistake: (-mistake[2], mistake[0], mistake[1]))
        return FeedbackStats(
            rows=confirmed + corrected + without_answer,
            confirmed=confirmed,
            corrected=corrected,
            without_answer=without_answer,
            per_label={
                label: (counts[0], counts[1]) for label, counts in sorted(per_label.items())
            },
            mistakes=mistakes,
        )

    def _query(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple]:
        with self._lock, self._errors_named():
            return self._connection.execute(sql, parameters).fetchall()

    def _errors_named(self) -> contextlib.AbstractContextManager[None]:
        return _errors_named(self.path)


class FeedbackStoreError(MnistCnnError):
    """The store failed while in use (a full disk, a damaged page): the API answers 503."""


@contextlib.contextmanager
def _errors_named(path: Path) -> Iterator[None]:
    """SQLite's errors during use, as one line naming the database (a full disk, damage)."""
    try:
        yield
    except sqlite3.Error as error:
        raise FeedbackStoreError(f"{path}: feedback database error ({first_line(error)})") from None


def _uri_path(path: Path) -> str:
    # In a URI, "?" and "#" (and "%") in a file name would be read as syntax.
    from urllib.parse import quote

    return quote(str(path.absolute()), safe="/")


def _check_and_migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not ours or is damaged, before writing anything; then migrate."""
    try:
        # One read transaction, so the answers come from one moment even while another
        # process makes the store. Reading the header first: a file that is not
        # SQLite fails here, untouched.
        connection.execute("BEGIN")
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        connection.execute("COMMIT")
    except sqlite3.DatabaseError as error:
        raise MnistCnnError(
            f"{path}: not a readable feedback database ({first_line(error)}); "
            "it was left as it is: move it away to start a new one"
        ) from None
    if problems != ["ok"]:
        raise MnistCnnError(
            f"{path}: the feedback database is damaged ({first_line(Exception(problems[0]))}); "
            "it was left as it is: move it away to start a new one"
        )
    if version == 0 and tables:
        raise MnistCnnError(
            f"{path}: another program's SQLite database (tables {', '.join(sorted(tables))}), "
            "not a feedback database; choose another --data-dir"
        )
    if version > 0 and application_id != APPLICATION_ID:
        raise MnistCnnError(f"{path}: another program's SQLite database, not a feedback database")
    if version > SCHEMA_VERSION:
        raise MnistCnnError(
            f"{path}: feedback database of schema version {version}, made by a newer mnist-cnn "
            f"(this one knows up to version {SCHEMA_VERSION}); upgrade mnist-cnn"
        )
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            migrate(connection)
            return
        except sqlite3.OperationalError as error:
            # Switching a new file to WAL while another process does the same can
            # fail at once with "locked" (SQLite skips the busy handler where
            # waiting could deadlock): try again until the busy timeout.
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise MnistCnnError(
                    f"{path}: cannot update the feedback database ({first_line(error)})"
                ) from None
            time.sleep(0.01)
        except sqlite3.Error as error:
            raise MnistCnnError(
                f"{path}: cannot update the feedback database ({first_line(error)})"
            ) from None


def _timestamp(now: datetime | None) -> str:
    moment = now or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row_values(feedback: Feedback, created_at: str) -> tuple:
    check_label(feedback.label, "label")
    check_label(feedback.answer, "answer", allow_none=True)
    if feedback.source not in SOURCES:
        raise MnistCnnError(f"source: {feedback.source!r} is not one of {', '.join(SOURCES)}")
    if feedback.picture is not None and len(feedback.picture) > MAX_PICTURE_BYTES:
        raise MnistCnnError(
            f"picture: {len(feedback.picture)} bytes, over the {MAX_PICTURE_BYTES} byte cap"
        )
    image = check_preprocessed(feedback.preprocessed)
    return (
        created_at,
        feedback.source,
        None if feedback.answer is None else int(feedback.answer),
        int(feedback.label),
        feedback.model,
        np.ascontiguousarray(image).tobytes(),
        feedback.picture,
    )


def _image_from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE).copy()


class LazyFeedbackStore:
    """A store opened at first use, so serving makes no file until feedback arrives.

    A file already there is opened (and so checked) at once: a damaged store
    stops the server before it starts, not at the first feedback.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._store = FeedbackStore.open(self.path, create=False) if self.path.exists() else None

    def get(self) -> FeedbackStore:
        with self._lock:
            if self._store is None:
                self._store = FeedbackStore.open(self.path, create=True)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
