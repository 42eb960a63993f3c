"""Reading people's pictures: files, folders and ``.npy`` arrays to ``Picture`` values.

Reading streams: ``read_pictures`` is a generator, so a folder of phone photos
is decoded one picture at a time. Only regular files are opened (a named pipe
would block for ever), and every problem becomes a ``Picture`` with an
``error``, so one bad file never stops the others.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.decoding import array_to_gray, check_gray_dtype, check_gray_values, decode_image
from mnist_cnn.errors import MnistCnnError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIX = ".npy"
READABLE_SUFFIXES = (*IMAGE_SUFFIXES, ARRAY_SUFFIX)  # what a folder is searched for
# Images of a float .npy checked together, so that a big array is checked
# without a float copy of all of it (1024 x 28 x 28 float64 = 6.4 MB).
ARRAY_CHECK_CHUNK = 1024


@dataclass(frozen=True)
class Picture:
    """One input to answer: a grayscale picture, or the problem that stopped it."""

    name: str  # the file, with [i] for one image of an array
    gray: np.ndarray | None = None  # (H, W) float32 in [0, 1]
    error: str | None = None


def read_pictures(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Picture]:
    """Expand folders (recursively) and read every image and .npy array, one at a time.

    A generator: each picture is decoded only when it is asked for, so a
    folder of photos is never held in memory at once. Problems become
    ``Picture(error=...)`` entries in place, so one bad file never stops the
    others. A single path (not in a list) is taken as one path, not as letters.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    for path in map(Path, paths):
        if path.is_dir():
            files, problems = _files_in(path)
            yield from problems
            if not files and not problems:
                yield Picture(name=str(path), error=f"{path}: folder holds no images")
            for file in files:
                yield from _read_file(file)
        else:
            yield from _read_file(path)


def _files_in(folder: Path) -> tuple[list[Path], list[Picture]]:
    """The readable files under ``folder``, sorted, and the subfolders that could not be read.

    Symbolic links to folders are not followed (they could loop); special
    files with a picture's suffix are listed, so that they are refused by name.
    """
    files: list[Path] = []
    problems: list[Picture] = []

    def unreadable(error: OSError) -> None:
        name = str(error.filename)
        problems.append(Picture(name=name, error=f"{name}: cannot read folder ({error.strerror})"))

    for root, _, names in os.walk(folder, onerror=unreadable):
        files.extend(
            Path(root, name) for name in names if Path(name).suffix.lower() in READABLE_SUFFIXES
        )
    return sorted(files), problems


def _read_file(path: Path) -> Iterator[Picture]:
    name = str(path)
    try:
        with _open_regular_file(path, name) as file:
            if path.suffix.lower() == ARRAY_SUFFIX:
                images = _open_array(file, name)
            else:
                gray = decode_image(file, name)
    except MnistCnnError as error:
        yield Picture(name=name, error=str(error))
        return
    except OSError as error:
        yield Picture(name=name, error=f"{name}: cannot read ({error.strerror or error})")
        return
    if path.suffix.lower() == ARRAY_SUFFIX:
        yield from _array_pictures(images, name)
    else:
        yield Picture(name=name, gray=gray)


def _open_regular_file(path: Path, name: str) -> BinaryIO:
    """Open a regular file for reading; refuse pipes, devices and sockets without opening them.

    Opening a named pipe waits for a writer, forever if none comes, so the kind
    of file is checked first; the open itself does not wait (``O_NONBLOCK``),
    and the kind is checked again on what was opened, in case it was swapped.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MnistCnnError(f"{name}: no such file") from None
    _refuse_special_file(mode, name)
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _refuse_special_file(os.fstat(descriptor).st_mode, name)
    except MnistCnnError:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _refuse_special_file(mode: int, name: str) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    kind = next((kind for test, kind in kinds if test(mode)), "a special file")
    raise MnistCnnError(f"{name}: is {kind}, not a regular file; not read")


def _open_array(file: BinaryIO, name: str) -> np.ndarray:
    """Check a .npy file's header against its size, then map it (nothing is loaded yet).

    A header can claim any shape: (10**9, 28, 28) would have ``np.load`` ask for
    784 GB. The shape, dtype and size are checked from the header first, and the
    data is memory-mapped, so only the images being prepared are ever read.
    Returns a (28, 28) or (N, 28, 28) uint8 or float array with N >= 1, values checked.
    """
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_2_0(file)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
    except (ValueError, OSError, EOFError) as error:
        raise MnistCnnError(f"{name}: not a readable .npy array ({error})") from None
    expected = "(28, 28) or (N, 28, 28)"
    image_shape = (IMAGE_SIZE, IMAGE_SIZE)
    if not (shape == image_shape or (len(shape) == 3 and shape[1:] == image_shape)):
        raise MnistCnnError(f"{name}: array of shape {shape}, expected {expected}")
    if shape[0] < 0:
        raise MnistCnnError(f"{name}: not a readable .npy array (negative size in {shape})")
    if shape[0] == 0:
        raise MnistCnnError(f"{name}: array of shape {shape} holds no images, expected {expected}")
    check_gray_dtype(dtype, name)
    data_start = file.tell()
    needed = int(np.prod(shape)) * dtype.itemsize
    present = os.fstat(file.fileno()).st_size - data_start
    if present < needed:
        raise MnistCnnError(
            f"{name}: header promises {shape} {dtype} ({needed:,} bytes of data) but the file "
            f"holds {present:,}; damaged or truncated"
        )
    order = "F" if fortran_order else "C"
    # numpy maps the open file; its stubs ask for write methods a read-only map never uses.
    images = np.memmap(  # type: ignore[call-overload]
        file, dtype=dtype, mode="r", offset=data_start, shape=shape, order=order
    )
    if images.dtype.kind == "f":
        stack = images if images.ndim == 3 else images[np.newaxis]
        for start in range(0, len(stack), ARRAY_CHECK_CHUNK):
            check_gray_values(np.asarray(stack[start : start + ARRAY_CHECK_CHUNK]), name)
    return images


def _array_pictures(images: np.ndarray, name: str) -> Iterator[Picture]:
    if images.ndim == 2:
        yield Picture(name=name, gray=array_to_gray(np.asarray(images), name))
        return
    for index in range(len(images)):
        yield Picture(name=f"{name}[{index}]", gray=array_to_gray(np.asarray(images[index]), name))
