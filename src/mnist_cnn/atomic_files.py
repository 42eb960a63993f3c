"""Atomic file writing: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Every temporary file starts so, and is never a whole file: a resume may delete them.
TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(final_path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; rename it into place on success.

    The temporary name keeps the final suffix, because some writers (Keras's
    ``model.save``, Matplotlib's ``savefig``) choose the format by suffix. The
    rename is atomic on POSIX, so a crash (even ``kill -9``) at any moment
    leaves either the old file, the complete new file, or a stray temporary
    whose name starts with ``.tmp-``, never a half-written final file.
    """
    final_path = Path(final_path)
    if final_path.is_dir():
        # Said of the name the user gave, not of the temporary file beside it.
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", str(final_path))
    final_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor, temporary_name = tempfile.mkstemp(
            prefix=f"{TEMPORARY_PREFIX}{final_path.stem}-",
            suffix=final_path.suffix,
            dir=final_path.parent,
        )
    except OSError as error:
        raise _about(error, final_path) from None
    os.close(descriptor)
    temporary_path = Path(temporary_name)
    # mkstemp makes the file private (0600); give it the mode a plain open() would.
    os.chmod(temporary_path, 0o666 & ~_current_umask())
    try:
        yield temporary_path
        with open(temporary_path, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary_path, final_path)
    except OSError as error:
        if error.filename not in (str(temporary_path), temporary_path):
            raise
        raise _about(error, final_path) from None
    finally:
        temporary_path.unlink(missing_ok=True)


def _about(error: OSError, final_path: Path) -> OSError:
    """The same error, said of the file the user named rather than of its temporary."""
    return type(error)(error.errno, error.strerror, str(final_path))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as temporary_path:
        temporary_path.write_text(text, encoding="utf-8")


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a finished file to ``target``, which appears whole or not at all."""
    with atomic_path(target) as temporary_path:
        shutil.copyfile(source, temporary_path)


def write_json_atomic(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")
