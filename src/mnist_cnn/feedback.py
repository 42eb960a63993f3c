"""The feedback store: people's confirmations and corrections of answers, in SQLite.

One file, ``feedback.sqlite3`` in the data directory (``--data-dir``, default
``default_data_dir()``), in WAL mode so that the server's writes and a
command's reads never block each other. The schema has a version
(``PRAGMA user_version``) and an ordered list of migrations; a file made by a
newer mnist-cnn, a file of another program and a damaged file are each refused
with one line, and never replaced or repaired.

A row holds the 28x28 image the model saw (784 bytes), the picture it came
from (grey, at most ``PICTURE_SIDE`` pixels a side, PNG, at most
``MAX_PICTURE_BYTES``), the answer given and the correct label (a digit, or
``NOT_A_DIGIT``), the model, the time and the source. Nothing leaves the
machine: the store is a local file, and nothing here opens a connection.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnist_cnn.data import IMAGE_SIZE, load_mnist, write_npz_atomic
from mnist_cnn.errors import MnistCnnError, first_line

DATABASE_NAME = "feedback.sqlite3"
DIGITS = 10  # labels 0-9; the feedback store is for digits
NOT_A_DIGIT = -1  # the label (or answer) "this is not a digit"
NOT_A_DIGIT_TEXT = "not a digit"  # how the API, the page and the CLI write it
SOURCES = ("page", "api", "import")
# The stored picture: enough to see what was drawn or photographed, small enough
# that 10,000 rows stay well under 200 MB. A grey PNG of 128 x 128 is at most
# 16.5 KB even for noise, so the cap is never reached by a picture we encode;
# it is checked anyway, so the promise holds whatever the encoder does.
PICTURE_SIDE = 128
MAX_PICTURE_BYTES = 32 * 1024
# "MNFB" in ASCII: marks the file as ours, so another program's database is refused.
APPLICATION_ID = 0x4D4E4642
BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's write


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/mnist-cnn``, defaulting to ``~/.local/share/mnist-cnn``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mnist-cnn"


def database_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The feedback database in ``data_dir`` (default ``default_data_dir()``)."""
    return Path(data_dir if data_dir is not None else default_data_dir()) / DATABASE_NAME


def label_text(label: int | None) -> str:
    """7 -> "7", NOT_A_DIGIT -> "not a digit", None (no answer recorded) -> "-"."""
    if label is None:
        return "-"
    return NOT_A_DIGIT_TEXT if label == NOT_A_DIGIT else str(label)


@dataclass(frozen=True)
class Feedback:
    """One confirmation or correction, before it is stored.

    ``answer`` is what the model said (a digit, ``NOT_A_DIGIT``, or None when
    no answer is known, as for imported rows); ``label`` what it really is.
    """

    preprocessed: np.ndarray  # (28, 28) uint8 in [0, 255]: the image the model saw
    label: int  # 0-9 or NOT_A_DIGIT
    answer: int | None  # 0-9, NOT_A_DIGIT, or None
    model: str | None  # the model's name, as /api/model reports it
    source: str  # one of SOURCES
    picture: bytes | None = None  # PNG from stored_picture, or None


@dataclass(frozen=True)
class FeedbackRow:
    """A stored row, without its images: what ``list`` shows and the API answers."""

    id: int
    created_at: str  # ISO 8601, UTC, to the second
    answer: int | None
    label: int
    model: str | None
    source: str
    picture_bytes: int  # 0 when the row has no picture

    @property
    def confirmed(self) -> bool | None:
        """True: the answer was right; False: corrected; None: no answer was recorded."""
        return None if self.answer is None else self.answer == self.label


@dataclass(frozen=True)
class FeedbackStats:
    """Counts over every row of a store."""

    rows: int
    confirmed: int  # the answer was right
    corrected: int  # the answer was wrong, and the row says what it is
    without_answer: int  # imported rows: no answer to judge
    per_label: dict[int, tuple[int, int]]  # label -> (rows with an answer, right answers)
    mistakes: list[tuple[int, int, int]]  # (answer, label, count), most frequent first

    @property
    def accuracy(self) -> float | None:
        """How often the answer was right, over the rows that have one."""
        judged = self.confirmed + self.corrected
        return self.confirmed / judged if judged else None


# ---- Pictures and values --------------------------------------------------------------


def check_label(value: int | None, what: str = "label", *, allow_none: bool = False) -> None:
    """Refuse anything but a digit 0-9 or NOT_A_DIGIT (and None where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise MnistCnnError(f"{what}: {value!r} is not a digit 0-9 or {NOT_A_DIGIT_TEXT!r}")
    if not (0 <= value < DIGITS or value == NOT_A_DIGIT):
        raise MnistCnnError(f"{what}: {value} is not a digit 0-9 or {NOT_A_DIGIT_TEXT!r}")


def check_preprocessed(image: np.ndarray, what: str = "preprocessed") -> np.ndarray:
    """A (28, 28) array of whole numbers in [0, 255] -> (28, 28) uint8; one line otherwise."""
    array = np.asarray(image)
    if array.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise MnistCnnError(f"{what}: shape {array.shape}, expected 28 rows of 28 numbers")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise MnistCnnError(f"{what}: dtype {array.dtype}, expected whole numbers in [0, 255]")
    if array.min() < 0 or array.max() > 255:
        raise MnistCnnError(f"{what}: values {array.min()}..{array.max()}, expected 0..255")
    return array.astype(np.uint8)


def stored_picture(gray: np.ndarray) -> bytes:
    """(H, W) float grey in [0, 1] -> grey PNG bytes, at most PICTURE_SIDE a side."""
    from PIL import Image

    levels = np.clip(np.rint(np.asarray(gray, dtype=np.float32) * 255.0), 0, 255)
    image = Image.fromarray(levels.astype(np.uint8), mode="L")
    image.thumbnail((PICTURE_SIDE, PICTURE_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    encoded = buffer.getvalue()
    if len(encoded) > MAX_PICTURE_BYTES:  # cannot happen at 128 px; kept as the promise
        raise MnistCnnError(
            f"picture: {len(encoded)} bytes once shrunk, over the {MAX_PICTURE_BYTES} byte cap"
        )
    return encoded


# ---- The schema and its migrations ---------------------------------------------------


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
        # Reading the header first: a file that is not SQLite fails here, untouched.
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
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
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        migrate(connection)
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


# ---- What other stages ask for ---------------------------------------------------------


def labelled_digits(database: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every row labelled with a digit, confirmations and corrections, in insertion order.

    Returns images (N, 28, 28) uint8 in [0, 255] and labels (N,) int64 in
    [0, 9]. Rows labelled "not a digit" are left out. Raises ``MnistCnnError``
    (one line naming the file) when it is missing or not a feedback database.
    """
    with FeedbackStore.open(database, create=False) as store:
        return store.labelled(digits_only=True)


@dataclass(frozen=True)
class ExportSummary:
    train_rows: int
    test_rows: int
    left_out: int  # rows labelled "not a digit"
    missing_digits: tuple[int, ...]  # digits with no training row


def split_for_export(
    images: np.ndarray, labels: np.ndarray, *, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Images and labels -> the four arrays of an MNIST-style ``.npz``, split per digit.

    Each digit's rows are shuffled (seeded) and ``test_fraction`` of them,
    rounded down, go to the test set; a digit with one row keeps it for
    training. The training rows are shuffled as a whole, since training holds
    its validation split out from the end.
    """
    if not 0.0 < test_fraction < 1.0:
        raise MnistCnnError(f"test fraction: must be between 0 and 1, got {test_fraction}")
    generator = np.random.default_rng(seed)
    train_indices: list[int] = []
    test_indices: list[int] = []
    for digit in np.unique(labels):
        indices = generator.permutation(np.flatnonzero(labels == digit))
        test_count = int(len(indices) * test_fraction)
        test_indices.extend(indices[:test_count].tolist())
        train_indices.extend(indices[test_count:].tolist())
    if not test_indices:
        raise MnistCnnError(
            f"{len(labels)} digit rows are too few to hold out a test set at "
            f"--test-fraction {test_fraction} (a digit needs {int(np.ceil(1 / test_fraction))} "
            "rows for one to go to the test set)"
        )
    train_order = generator.permutation(np.array(train_indices, dtype=np.int64))
    test_order = np.sort(np.array(test_indices, dtype=np.int64))
    return {
        "x_train": images[train_order],
        "y_train": labels[train_order].astype(np.uint8),
        "x_test": images[test_order],
        "y_test": labels[test_order].astype(np.uint8),
    }


def export_digits(
    store: FeedbackStore, out: Path, *, test_fraction: float = 0.2, seed: int = 0
) -> ExportSummary:
    """Write the digit rows of ``store`` to ``out`` as an MNIST-style ``.npz``, atomically."""
    images, labels = store.labelled(digits_only=True)
    if not len(labels):
        raise MnistCnnError(f"{store.path}: no rows labelled with a digit to export")
    arrays = split_for_export(images, labels, test_fraction=test_fraction, seed=seed)
    write_npz_atomic(out, arrays)
    present = set(np.unique(arrays["y_train"]).tolist())
    return ExportSummary(
        train_rows=len(arrays["y_train"]),
        test_rows=len(arrays["y_test"]),
        left_out=store.count() - len(labels),
        missing_digits=tuple(digit for digit in range(DIGITS) if digit not in present),
    )


def read_import(path: Path) -> list[Feedback]:
    """The rows of an MNIST-style ``.npz`` (train, then test), as feedback to store.

    Labels must be digits 0-9; the images are stored as the 28x28 images, with
    no picture, answer or model (source "import").
    """
    dataset = load_mnist(path, class_names=[str(digit) for digit in range(DIGITS)])
    images = np.concatenate([dataset.train_images, dataset.test_images])
    labels = np.concatenate([dataset.train_labels, dataset.test_labels])
    return [
        Feedback(preprocessed=image, label=int(label), answer=None, model=None, source="import")
        for image, label in zip(images, labels, strict=True)
    ]
