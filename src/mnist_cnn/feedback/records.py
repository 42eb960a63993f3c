"""What the feedback store holds: its rows, their checks, and where it lives."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.errors import MnistCnnError

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
