"""People's pictures at their worst: huge, many, sideways, 16-bit, lying headers, special files.

Every case is a real file written in tmp_path. Memory is measured in a fresh
interpreter (peak resident memory from /proc), so the test process's own
history does not blur the figures.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageDraw

from mnist_cnn.decoding import DECODE_SIZE, decode_image
from mnist_cnn.engines import Classifier
from mnist_cnn.errors import ImageTooLargeError
from mnist_cnn.prediction import answer_pictures
from mnist_cnn.preprocess import prepare_digit
from mnist_cnn.reading import Picture, read_pictures

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="peak memory is read from Linux's /proc"
)


def seven_photo(width: int, height: int) -> Image.Image:
    """A thick dark 7 on white paper, filling the middle of a width x height picture."""
    photo = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(photo)
    size = min(width, height) * 0.6
    left, top = (width - size * 0.6) / 2, (height - size) / 2
    stroke = max(2, round(size / 12))
    draw.line([(left, top), (left + size * 0.6, top)], fill="black", width=stroke)
    draw.line(
        [(left + size * 0.6, top), (left + size * 0.15, top + size)], fill="black", width=stroke
    )
    return photo


def peak_memory(script: str, *arguments: str) -> dict:
    """Run ``script`` in a fresh interpreter; it prints one JSON line of figures."""
    prelude = (
        "import json, sys\n"
        "def megabytes(key):\n"
        "    with open('/proc/self/status') as status:\n"
        "        for line in status:\n"
        "            if line.startswith(key):\n"
        "                return int(line.split()[1]) / 1024\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + script, *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# 4. Big pictures are decoded reduced ------------------------------------------------

DECODE_ONE = """
from mnist_cnn.decoding import decode_image
before = megabytes("VmRSS:")
with open(sys.argv[1], "rb") as file:
    data = file.read()  # 0.2 MB: the picture is a drawing, so it compresses well
gray = decode_image(data, "big.png")
print(json.dumps({"extra": megabytes("VmHWM:") - before, "shape": gray.shape}))
"""


@needs_proc
def test_a_49_megapixel_png_is_decoded_within_twice_its_raw_size(tmp_path):
    side = 7000  # 49 megapixels, just under the 50 megapixel limit
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))  # a drawing on a transparent canvas
    draw = ImageDraw.Draw(canvas)
    draw.line([(1500, 1500), (5000, 1500)], fill=(0, 0, 0, 255), width=400)
    draw.line([(5000, 1500), (2500, 6000)], fill=(0, 0, 0, 255), width=400)
    canvas.save(tmp_path / "big.png")
    del canvas, draw
    figures = peak_memory(DECODE_ONE, str(tmp_path / "big.png"))
    # Pillow holds the decoded RGBA (4 bytes a pixel, 196 MB) whatever we do; the
    # float copies made at full size on top of it cost 1372 MB more before.
    raw_megabytes = side * side * 4 / 2**20
    assert figures["extra"] < 2 * raw_megabytes, figures
    assert max(figures["shape"]) <= DECODE_SIZE


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_big_pictures_come_back_reduced_and_read_as_small_ones_do(image_format):
    def prepared(width, height):
        buffer = io.BytesIO()
        seven_photo(width, height).save(buffer, format=image_format)
        gray = decode_image(buffer.getvalue(), f"seven.{image_format.lower()}")
        return gray, prepare_digit(gray).image

    big_gray, big = prepared(4000, 3000)  # a phone photo
    _, small = prepared(800, 600)
    assert max(big_gray.shape) <= DECODE_SIZE
    assert big_gray.shape[0] / big_gray.shape[1] == pytest.approx(0.75, abs=0.01)
    assert np.abs(big.astype(int) - small.astype(int)).mean() < 6


# 7. Reading streams: one decoded photo at a time -------------------------------------

ANSWER_FOLDERS = """
from pathlib import Path

import numpy as np
from mnist_cnn.engines import Classifier
from mnist_cnn.prediction import answer_pictures
from mnist_cnn.reading import read_pictures

classifier = Classifier(
    name="uniform",
    class_names=tuple("0123456789"),
    probabilities=lambda batch: np.full((len(batch), 10), 0.1, np.float32),
)
answer_pictures(read_pictures([Path(sys.argv[1])]), classifier)  # warm-up: scipy, Pillow plugins
before = megabytes("VmRSS:")
one = answer_pictures(read_pictures([Path(sys.argv[2])]), classifier)
after_one = megabytes("VmHWM:") - before
many = answer_pictures(read_pictures([Path(sys.argv[3])]), classifier)
after_many = megabytes("VmHWM:") - before
print(json.dumps({
    "one": after_one, "many": after_many,
    # The best guess: a uniform 10% is under min_confidence, so each answer is "not a digit".
    "names": [answer.name for answer in many],
    "read": [answer.digits[0].digit if answer.digits else "" for answer in many],
}))
"""


@needs_proc
def test_a_folder_of_20_photos_costs_about_what_one_photo_costs(tmp_path):
    width, height, count = 3000, 2000, 20  # 6 megapixels each
    folders = {name: tmp_path / name for name in ("warm-up", "one", "many")}
    for folder in folders.values():
        folder.mkdir()
    seven_photo(300, 200).save(folders["warm-up"] / "small.png")
    seven_photo(width, height).save(folders["one"] / "photo.png")
    for index in range(count):
        shutil.copy(folders["one"] / "photo.png", folders["many"] / f"photo{index:02}.png")
    figures = peak_memory(ANSWER_FOLDERS, *(str(folder) for folder in folders.values()))
    # Holding every photo as floats cost 20 x 23 MB more before (560 MB in all).
    float_megabytes = width * height * 4 / 2**20
    assert figures["many"] < 2 * figures["one"], figures
    assert figures["many"] < 4 * float_megabytes, figures
    assert figures["names"] == sorted(figures["names"]) and len(figures["names"]) == count
    assert figures["read"] == ["0"] * count  # every photo held a digit


def test_read_pictures_is_lazy_and_takes_str_paths(tmp_path):
    seven_photo(300, 200).save(tmp_path / "seven.png")
    pictures = read_pictures([str(tmp_path / "seven.png"), str(tmp_path / "missing.png")])
    assert isinstance(pictures, Iterator)
    first = next(pictures)
    assert first.name == str(tmp_path / "seven.png") and first.gray is not None
    assert next(pictures).error == f"{tmp_path / 'missing.png'}: no such file"
    assert [picture.name for picture in read_pictures(tmp_path / "seven.png")] == [first.name]


def ink_counting_classifier() -> Classifier:
    """Says the digit is the number of ink pixels modulo 10: an answer that follows its image."""

    def probabilities(batch: np.ndarray) -> np.ndarray:
        classes = (batch[..., 0] > 0.5).sum(axis=(1, 2)) % 10
        return np.eye(10, dtype=np.float32)[classes]

    return Classifier(name="ink", class_names=tuple("0123456789"), probabilities=probabilities)


def test_batches_keep_every_answer_and_error_in_place(mnist):
    pictures = []
    for index in range(7):
        pictures.append(Picture(f"digit{index}", gray=mnist.test_images[index] / 255))
        if index % 3 == 0:
            pictures.append(Picture(f"bad{index}", error=f"bad{index}: damaged"))
    pictures.append(Picture("blank", gray=np.zeros((50, 50), np.float32)))
    classifier = ink_counting_classifier()
    whole = answer_pictures(pictures, classifier)
    for batch_size in (1, 2, 3):
        in_batches = answer_pictures(iter(pictures), classifier, batch_size=batch_size)
        assert [answer.to_dict() for answer in in_batches] == [answer.to_dict() for answer in whole]
    assert [answer.name for answer in whole] == [picture.name for picture in pictures]
    assert all(answer.error for answer in whole if answer.name.startswith("bad"))
    assert whole[-1].reason == "no digit found"
    # Each answer is its own image's: the ink count of what the model saw.
    for answer in whole:
        for digit in answer.digits:
            assert digit.digit == str((digit.image > 127).sum() % 10)


# 8. .npy files whose header lies, or that hold nothing to read -------------------------


def npy_with_header(path: Path, shape: tuple, descr: str, data: bytes = b"") -> None:
    from numpy.lib import format as npy_format

    with path.open("wb") as file:
        npy_format.write_array_header_1_0(
            file, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        file.write(data)


def only_picture(path: Path) -> Picture:
    pictures = list(read_pictures([path]))
    assert len(pictures) == 1, pictures
    return pictures[0]


def test_a_header_claiming_a_billion_images_is_one_bad_file(tmp_path):
    npy_with_header(tmp_path / "huge.npy", (10**9, 28, 28), "|u1", bytes(784 * 2))
    picture = only_picture(tmp_path / "huge.npy")
    assert picture.error.startswith(
        f"{tmp_path / 'huge.npy'}: header promises (1000000000, 28, 28)"
    )
    assert "damaged or truncated" in picture.error and "\n" not in picture.error


@pytest.mark.parametrize(
    "array, message",
    [
        (np.empty((28, 28), dtype=object), "dtype object is not supported"),
        (np.zeros((28, 28), np.complex64), "dtype complex64 is not supported"),
        (np.zeros((2, 28, 28), dtype=[("ink", "u1"), ("x", "f4")]), "structured dtype"),
        (np.zeros((0, 28, 28), np.uint8), "shape (0, 28, 28) holds no images"),
        (np.zeros((3, 28, 28, 1), np.uint8), "shape (3, 28, 28, 1), expected (28, 28)"),
    ],
    ids=["object", "complex", "structured", "empty", "four-axes"],
)
def test_arrays_that_are_not_grey_images_are_one_bad_file(tmp_path, array, message):
    np.save(tmp_path / "digits.npy", array, allow_pickle=array.dtype == object)
    picture = only_picture(tmp_path / "digits.npy")
    assert picture.error.startswith(f"{tmp_path / 'digits.npy'}: ")
    assert message in picture.error


def test_a_nan_in_a_stack_is_one_bad_file_not_one_line_per_image(tmp_path):
    stack = np.zeros((3000, 28, 28), np.float32)
    stack[2500, 3, 3] = np.nan
    np.save(tmp_path / "floats.npy", stack)
    picture = only_picture(tmp_path / "floats.npy")
    assert "float values must be finite and in [0, 255]" in picture.error


def test_a_big_stack_is_read_one_image_at_a_time(tmp_path, mnist):
    np.save(tmp_path / "many.npy", mnist.test_images[:500])
    np.save(tmp_path / "fortran.npy", np.asfortranarray(mnist.test_images[:3]))
    pictures = read_pictures([tmp_path / "many.npy", tmp_path / "fortran.npy"])
    first = next(pictures)
    assert first.name == f"{tmp_path / 'many.npy'}[0]"
    np.testing.assert_array_equal(first.gray, mnist.test_images[0] / np.float32(255))
    rest = list(pictures)
    assert len(rest) == 499 + 3
    np.testing.assert_array_equal(rest[-1].gray, mnist.test_images[2] / np.float32(255))


# 9. Pipes, devices and sockets are refused without being opened ------------------------


def read_within(paths: list, seconds: float = 20) -> list[Picture]:
    """read_pictures in a thread: a reader stuck opening a pipe fails the test, not hangs."""
    pictures: list[Picture] = []
    reader = threading.Thread(target=lambda: pictures.extend(read_pictures(paths)), daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        for path in paths:  # a writer that comes and goes releases a reader stuck in open()
            if Path(path).is_fifo():
                with open(path, "wb"):
                    pass
        reader.join(seconds)
        pytest.fail("reading blocked on a named pipe")
    return pictures


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")
def test_a_named_pipe_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")
    (picture,) = read_within([tmp_path / "fifo.png"])
    assert (
        picture.error == f"{tmp_path / 'fifo.png'}: is a named pipe, not a regular file; not read"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")
def test_a_folder_holding_a_pipe_reads_the_rest(tmp_path):
    seven_photo(300, 200).save(tmp_path / "a-seven.png")
    os.mkfifo(tmp_path / "b-fifo.png")
    pictures = read_within([tmp_path])
    assert pictures[0].gray is not None
    assert "is a named pipe, not a regular file" in pictures[1].error
    assert len(pictures) == 2


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs a device file")
def test_a_device_is_refused():
    (picture,) = read_within(["/dev/null"])
    assert picture.error == "/dev/null: is a device, not a regular file; not read"


# 10. EXIF orientation -------------------------------------------------------------------


def jpeg_bytes(image: Image.Image, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_a_phone_photo_stored_sideways_is_turned_upright(mnist):
    upright = Image.fromarray(255 - mnist.test_images[0]).resize((280, 280))  # a 7
    # Orientation 6: the camera stored the picture turned a quarter anticlockwise,
    # and viewers turn it a quarter clockwise to show it.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    expected = prepare_digit(decode_image(jpeg_bytes(upright))).image
    tagged = prepare_digit(decode_image(jpeg_bytes(stored, orientation=6))).image
    untagged = prepare_digit(decode_image(jpeg_bytes(stored))).image
    assert np.abs(tagged.astype(int) - expected.astype(int)).mean() < 3
    assert np.abs(untagged.astype(int) - expected.astype(int)).mean() > 20


# 11. 16-bit, 32-bit and float pictures ----------------------------------------------------


def scan(mnist, low: int, high: int) -> np.ndarray:
    """A scan of MNIST's first digit (a 7): dark ink at ``low`` on paper at ``high``, 16-bit."""
    photo = np.asarray(Image.fromarray(255 - mnist.test_images[0]).resize((140, 140)))
    return np.round(low + (high - low) * (photo / 255.0)).astype(np.uint16)


def encoded(array: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.mark.parametrize("low, high", [(0, 65535), (16384, 49151)], ids=["full-range", "mid-grey"])
@pytest.mark.parametrize(
    "image_format, as_type",
    [("PNG", np.uint16), ("TIFF", np.uint16), ("TIFF", np.int32), ("TIFF", np.float32)],
    ids=["png-16", "tiff-16", "tiff-32", "tiff-float"],
)
def test_deep_pictures_read_like_their_8_bit_versions(mnist, low, high, image_format, as_type):
    sixteen = scan(mnist, low, high)
    deep = sixteen.astype(as_type)
    if as_type == np.float32:
        deep = deep / np.float32(65535)  # a float scan in [0, 1]
    eight = np.round(sixteen / 257).astype(np.uint8)
    from_deep = prepare_digit(decode_image(encoded(deep, image_format), "scan"))
    from_eight = prepare_digit(decode_image(encoded(eight, "PNG"), "scan"))
    assert from_deep.image is not None, from_deep.reason
    assert np.abs(from_deep.image.astype(int) - from_eight.image.astype(int)).mean() < 1.0


# 12b. Over Pillow's own limits: 413, not "damaged", from the header, every format ------


def small_file(image_format: str, frames: int = 1, **options) -> bytearray:
    images = [Image.new("L", (16, 16), 255 - 40 * index) for index in range(frames)]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format=image_format, save_all=frames > 1, append_images=images[1:], **options
    )
    return bytearray(buffer.getvalue())


def with_size(image_format: str, width: int, height: int) -> bytes:
    """A tiny real file whose header claims width x height (nothing behind it to decode)."""
    if image_format == "PNG":
        data = small_file("PNG")
        data[16:24] = struct.pack(">II", width, height)  # IHDR, then its checksum
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif image_format == "BMP":
        data = small_file("BMP")
        data[18:26] = struct.pack("<ii", width, height)
    elif image_format == "GIF":  # an animation: the first frame's screen is huge
        data = small_file("GIF", frames=2)
        data[6:10] = struct.pack("<HH", width, height)
    elif image_format == "JPEG":
        data = small_file("JPEG")
        frame = data.index(b"\xff\xc0")  # start of frame: precision, height, width
        data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    elif image_format == "TIFF":  # two pages: the first one is huge
        data = small_file("TIFF", frames=2)
        directory = struct.unpack_from("<I", data, 4)[0]
        for entry in range(struct.unpack_from("<H", data, directory)[0]):
            at = directory + 2 + 12 * entry
            tag, kind = struct.unpack_from("<HH", data, at)
            if tag in (256, 257):  # ImageWidth, ImageLength
                struct.pack_into("<H" if kind == 3 else "<I", data, at + 8,
                                 width if tag == 256 else height)  # fmt: skip
    else:  # WebP lossless: 14 bits each of width - 1 and height - 1
        data = small_file("WEBP", lossless=True)
        bits = struct.unpack_from("<I", data, 21)[0] & ~((1 << 28) - 1)
        struct.pack_into("<I", data, 21, bits | (width - 1) | ((height - 1) << 14))
    return bytes(data)


@pytest.mark.parametrize("image_format", ["PNG", "BMP", "GIF", "JPEG", "TIFF", "WEBP"])
@pytest.mark.parametrize(
    "side",
    [7200, 10000, 16000],
    ids=["over-ours-52MP", "over-pillows-warning-100MP", "over-pillows-error-256MP"],
)
def test_images_over_any_limit_are_too_large_not_damaged(image_format, side):
    data = with_size(image_format, side, side)
    assert len(data) < 10_000
    with pytest.raises(ImageTooLargeError, match="megapixel limit; refused") as raised:
        decode_image(data, "huge")
    assert str(raised.value).startswith("huge: image of ")
    assert f"{side * side / 1e6:.0f} megapixels" in str(raised.value)


def test_an_animation_is_read_from_its_first_frame():
    frames = [seven_photo(200, 200).convert("L"), Image.new("L", (200, 200), 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert prepare_digit(decode_image(buffer.getvalue(), "seven.gif")).image is not None
