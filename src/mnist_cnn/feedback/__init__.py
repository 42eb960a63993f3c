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

from mnist_cnn.feedback.exchange import (
    ExportSummary,
    export_digits,
    labelled_digits,
    read_import,
    split_for_export,
)
from mnist_cnn.feedback.records import (
    DATABASE_NAME,
    DIGITS,
    MAX_PICTURE_BYTES,
    NOT_A_DIGIT,
    NOT_A_DIGIT_TEXT,
    PICTURE_SIDE,
    SOURCES,
    Feedback,
    FeedbackRow,
    FeedbackStats,
    check_label,
    check_preprocessed,
    database_path,
    default_data_dir,
    label_text,
    stored_picture,
)
from mnist_cnn.feedback.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    FeedbackStore,
    FeedbackStoreError,
    LazyFeedbackStore,
    migrate,
)

__all__ = [
    "APPLICATION_ID",
    "DATABASE_NAME",
    "DIGITS",
    "MAX_PICTURE_BYTES",
    "MIGRATIONS",
    "NOT_A_DIGIT",
    "NOT_A_DIGIT_TEXT",
    "PICTURE_SIDE",
    "SCHEMA_VERSION",
    "SOURCES",
    "ExportSummary",
    "Feedback",
    "FeedbackRow",
    "FeedbackStats",
    "FeedbackStore",
    "FeedbackStoreError",
    "LazyFeedbackStore",
    "check_label",
    "check_preprocessed",
    "database_path",
    "default_data_dir",
    "export_digits",
    "label_text",
    "labelled_digits",
    "migrate",
    "read_import",
    "split_for_export",
    "stored_picture",
]
