"""Turning pixels into what the network takes.

Two jobs live here:

* ``to_model_input``: MNIST arrays to the float tensors Keras trains on.
* ``prepare_digit`` / ``prepare_digits``: a person's photo or drawing to an
  image made the way MNIST was made. MNIST scaled each digit to fit a 20x20
  box keeping its aspect ratio (anti-aliased), then placed it in 28x28 with
  its centre of mass at the centre, light ink on black. A model trained on
  that gets people's digits wrong when they are dark on white, off-centre, the
  wrong size, too thin, or on shaded paper; these functions undo each of those.

Everything here is a pure function of arrays: no files, no model.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.errors import ImageTooLargeError, MnistCnnError, NotAnImageError

if TYPE_CHECKING:
    from PIL import Image

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)  # what the network takes: one grey channel
BOX_SIZE = 20  # MNIST's digits fit a 20x20 box inside the 28x28 image
MAX_IMAGE_PIXELS = 50_000_000  # larger files are refused before decoding (decompression bombs)
WORKING_SIZE = 320  # longer side, in pixels, that cleaning reduces pictures to
# Longer side, in pixels, that decoding reduces big pictures to before any float
# copy: 4x WORKING_SIZE, so cleaning sees the same picture, while a 49-megapixel
# file costs a few megabytes of floats instead of a gigabyte.
DECODE_SIZE = 4 * WORKING_SIZE
MNIST_CENTRE = 14.0  # MNIST's mean centre of mass, (row, column), measured on its test set
MNIST_STROKE_WIDTH = 2.6  # median stroke width in MNIST pixels (2 x ink area / outline)
THIN_STROKE_WIDTH = 1.8  # strokes thinner than this at 28x28 are thickened to the above
MIN_CONTRAST = 0.12  # ink must differ from the paper by this much (of full scale)
LOCAL_PEAK_FLOOR = 0.35  # ink is stretched to its local peak, but never past 1/0.35 times
NOISE_FLOOR = 0.2  # after stretching, values below this are paper texture, not ink
MIN_COMPONENT_FRACTION = 0.08  # ink blobs smaller than this share of the largest are specks


@dataclass(frozen=True)
class PreparedDigit:
    """A digit ready for the model, or the reason there is none."""

    image: np.ndarray | None  # (28, 28) uint8, light ink on black, as MNIST; None if no digit
    reason: str | None = None  # why there is no image, e.g. "no digit found"
    # (top, left, bottom, right) of the digit in the picture, after big pictures
    # are reduced to WORKING_SIZE; None for a single digit.
    box: tuple[int, int, int, int] | None = None


NO_DIGIT = "no digit found"


def to_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 in [0, 255] -> (N, 28, 28, 1) float32 in [0, 1].

    Steps 3 and 6 of the tutorial: convert to float32, divide by 255, and add
    the channel axis that Conv2D expects.
    """
    images = np.asarray(images)
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


# Reading pictures -----------------------------------------------------------

IMAGE_FORMATS = "PNG, JPEG, BMP, GIF, TIFF or WebP"  # what users are told this tool reads
# Pillow's own decompression-bomb check names the pixels in its message.
_PILLOW_PIXEL_COUNT = re.compile(r"\((\d+) pixels\)")
# Full scale of Pillow's 16-bit grey modes (PNG and TIFF scans).
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def decode_image(source: bytes | BinaryIO, name: str = "image") -> np.ndarray:
    """Image file bytes (or an open binary file) -> (H, W) float32 grayscale in [0, 1].

    The picture is turned upright (EXIF orientation), transparency is flattened
    onto the paper, and pictures longer than ``DECODE_SIZE`` come back reduced
    (area-averaged) to at most that, which is all cleaning looks at.

    Refuses, with ``MnistCnnError`` naming ``name``: what is no image file
    (``NotAnImageError``), damaged or truncated files, and images over
    ``MAX_IMAGE_PIXELS`` (``ImageTooLargeError``), the last from the header,
    before anything is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    file = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        # Pillow warns of, then refuses, images over its own limit (89 and 179
        # megapixels) while reading the header. Both are ours to refuse (ours is
        # lower), so the warning is raised here rather than printed. Before Python
        # 3.14 this filter is process-wide: a thread racing it can at worst leave
        # it in place, and this function handles the error it then raises.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                _check_pixel_count(image.size, name)
                image.seek(0)  # the first frame of a GIF, TIFF or WebP animation
                _check_pixel_count(image.size, name)  # that frame's own size
                return _decode_reduced(image)
    except MnistCnnError:
        raise
    except UnidentifiedImageError:
        raise NotAnImageError(
            f"{name}: not an image file this tool can read ({IMAGE_FORMATS})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(name, error) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise MnistCnnError(f"{name}: damaged or truncated image ({error})") from None


def _check_pixel_count(size: tuple[int, int], name: str) -> None:
    width, height = size  # read from the header; nothing decoded yet
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(
            f"{name}: image of {width}x{height} = {width * height / 1e6:.0f} megapixels "
            f"is over the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixel limit; refused"
        )


def _too_large(name: str, error: Exception) -> ImageTooLargeError:
    """Pillow's own refusal, in the words of ``_check_pixel_count``."""
    limit = f"the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixel limit; refused"
    found = _PILLOW_PIXEL_COUNT.search(str(error))
    if found is None:
        return ImageTooLargeError(f"{name}: image is over {limit}")
    return ImageTooLargeError(
        f"{name}: image of {int(found.group(1)) / 1e6:.0f} megapixels is over {limit}"
    )


def _decode_reduced(image: Image.Image) -> np.ndarray:
    """An opened Pillow image -> upright grayscale in [0, 1], at most ``DECODE_SIZE`` long.

    Float copies of a full-size photo cost 4 bytes a pixel each, so the picture
    is reduced while it is still 8-bit (or 16-bit) Pillow data: JPEGs are
    decoded at a reduced scale to begin with (``draft``), other formats are
    decoded whole and then area-averaged (``reduce``) before any float copy.
    """
    from PIL import ImageOps

    longer = max(image.size)
    if longer > DECODE_SIZE:
        factor = longer / DECODE_SIZE
        # JPEG's decoder scales by 1/2, 1/4 or 1/8 for free; other formats ignore this.
        image.draft("L", (math.ceil(image.size[0] / factor), math.ceil(image.size[1] / factor)))
    image.load()
    # A damaged EXIF block leaves the pixels readable: they are used as stored.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        return _numeric_to_gray(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        gray = image if image.mode == "L" else image.convert("L")
        return np.asarray(_reduce_image(gray), dtype=np.float32) / 255.0
    if image.mode not in ("RGBA", "LA"):
        image = image.convert("RGBA")  # palette transparency becomes an alpha channel
    from PIL import ImageChops

    alpha = image.getchannel("A")
    # Premultiplied by alpha before averaging, so that the colour of fully
    # transparent pixels never bleeds into the reduced picture.
    covered = ImageChops.multiply(image.convert("L"), alpha)
    alpha = np.asarray(_reduce_image(alpha), dtype=np.float32) / 255.0
    covered = np.asarray(_reduce_image(covered), dtype=np.float32) / 255.0
    return _flatten_onto_paper(covered, alpha)


def _reduce_image(image: Image.Image) -> Image.Image:
    """Area-average an 8-bit or 32-bit Pillow image by a whole factor to ``DECODE_SIZE`` or less."""
    factor = math.ceil(max(image.size) / DECODE_SIZE)
    return image if factor == 1 else image.reduce(factor)


def _numeric_to_gray(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer and float pictures -> [0, 1] by their full scale.

    Pillow's conversion of these to 8 bits clips at 255 instead of scaling, so
    a mid-grey 16-bit scan would read as white: they are scaled here instead.
    """
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(_reduce_image(image.convert("I")), dtype=np.float32)
        return values / 65535.0
    values = np.asarray(_reduce_image(image), dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError("pixel values that are not finite numbers")
    low, high = float(values.min()), float(values.max())
    # The file does not say its full scale: take the smallest usual one that
    # holds the values (1, 8 or 16 bits), else stretch the values' own range.
    if low >= 0:
        for full_scale in (1.0, 255.0, 65535.0):
            if high <= full_scale:
                return values / full_scale
    return (values - low) / max(high - low, np.finfo(np.float32).tiny)


def _flatten_onto_paper(covered: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Grayscale in [0, 1] from gray x alpha and alpha; transparent areas become the paper.

    Where a picture has transparency, the opaque part is the ink (a drawing on a
    transparent canvas), so the paper is the opposite of the ink: white under
    dark ink, black under light ink.
    """
    if alpha.min() > 0.99:
        return covered / alpha
    opaque = alpha > 0.5
    ink_level = float(np.mean(covered[opaque] / alpha[opaque])) if opaque.any() else 0.0
    paper = 1.0 if ink_level < 0.5 else 0.0
    return covered + (1.0 - alpha) * paper


def check_gray_dtype(dtype: np.dtype, name: str = "array") -> None:
    """Refuse dtypes that are not grey levels: anything but uint8 and real floats."""
    if dtype.fields is not None or dtype.subdtype is not None:
        raise MnistCnnError(
            f"{name}: structured dtype {dtype} is not supported, expected uint8 or float"
        )
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise MnistCnnError(f"{name}: dtype {dtype} is not supported, expected uint8 or float")


def check_gray_values(array: np.ndarray, name: str = "array") -> None:
    """Refuse float grey levels that are not finite or not in [0, 255]."""
    if (
        np.issubdtype(array.dtype, np.floating)
        and array.size
        and (not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255)
    ):
        raise MnistCnnError(f"{name}: float values must be finite and in [0, 255]")


def array_to_gray(array: np.ndarray, name: str = "array") -> np.ndarray:
    """One (28, 28) array (uint8 0-255, or float in 0-1 or 0-255) -> float32 in [0, 1]."""
    check_gray_dtype(array.dtype, name)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    check_gray_values(array, name)
    scale = 1.0 if array.max() <= 1.0 else 255.0
    return (array / scale).astype(np.float32)


# Cleaning the page ------------------------------------------------------------


def clean_ink(gray: np.ndarray) -> np.ndarray | None:
    """(H, W) grayscale in [0, 1] -> ink map in [0, 1] (light ink on black), or None if blank.

    Detects polarity from the paper (the median: ink is a minority of pixels),
    removes uneven lighting and paper texture by subtracting a background
    estimated with a grey-scale opening wider than any stroke, then stretches
    the contrast and zeroes what is left of the paper.
    """
    from scipy import ndimage

    gray = _reduce(gray)
    if float(np.median(gray)) > 0.5:
        gray = 1.0 - gray  # dark ink on light paper: invert to MNIST's light on dark
    if float(np.percentile(gray, 99.9) - np.median(gray)) < MIN_CONTRAST:
        return None
    # The opening removes everything narrower than the window (the strokes)
    # and keeps the slowly varying paper and shading.
    window = max(9, min(gray.shape) // 6)
    background = ndimage.grey_opening(gray, size=(window, window))
    background = ndimage.uniform_filter(background, size=window)
    ink = np.clip(gray - background, 0.0, None)
    peak = float(np.percentile(ink, 99.9))
    if peak < MIN_CONTRAST:
        return None
    # Stretch each stroke to full brightness against its own neighbourhood, so
    # ink in the shadow of a page matches ink in the light; the floor at a
    # share of the global peak keeps empty paper from being stretched into ink.
    local_peak = ndimage.maximum_filter(ink, size=window)
    ink = np.clip(ink / np.maximum(local_peak, LOCAL_PEAK_FLOOR * peak), 0.0, 1.0)
    ink[ink < NOISE_FLOOR] = 0.0
    mask = _without_specks(ink > 0.5)
    if not mask.any():
        return None
    # Keep the anti-aliased edges next to the kept strokes, drop isolated texture.
    near_strokes = ndimage.binary_dilation(mask, iterations=2)
    return np.where(near_strokes, ink, 0.0).astype(np.float32)


def _reduce(gray: np.ndarray) -> np.ndarray:
    """Shrink big pictures (area-averaging) so cleaning costs the same for any size."""
    longer = max(gray.shape)
    if longer <= WORKING_SIZE:
        return gray.astype(np.float32)
    from PIL import Image

    scale = WORKING_SIZE / longer
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    reduced = Image.fromarray(gray.astype(np.float32), mode="F").resize(size, Image.Resampling.BOX)
    return np.asarray(reduced, dtype=np.float32)


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """Drop connected blobs much smaller than the largest one (dust, paper grain)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= MIN_COMPONENT_FRACTION * sizes.max()) + 1
    return np.isin(labels, keep)


# Making one digit MNIST-like --------------------------------------------------


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the ink area over its outline length."""
    from scipy import ndimage

    mask = ink > 0.5
    outline = int((mask & ~ndimage.binary_erosion(mask)).sum())
    return 2.0 * float(mask.sum()) / max(outline, 1)


def fit_digit(ink: np.ndarray) -> np.ndarray:
    """An ink map holding one digit -> (28, 28) uint8, made the way MNIST was.

    Thicken strokes that would be too thin at 28x28, crop to the ink, scale to
    fit 20x20 keeping the aspect ratio (area-averaged, so anti-aliased), and
    place it so that its centre of mass is MNIST's.
    """
    from PIL import Image
    from scipy import ndimage

    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    scale = BOX_SIZE / max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    # The outline and area do not depend on the empty paper around the ink, so
    # the width is measured on the whole map and the map is cropped once, after.
    width_now = stroke_width(ink)
    if width_now * scale < THIN_STROKE_WIDTH:
        radius = (MNIST_STROKE_WIDTH / scale - width_now) / 2
        size = 2 * max(1, round(radius)) + 1
        ink = np.pad(ink, size)  # room to grow
        ink = ndimage.grey_dilation(ink, footprint=_disc(size))
        rows = np.flatnonzero(ink.any(axis=1))
        columns = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    height, width = ink.shape
    scale = BOX_SIZE / max(height, width)

    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    boxed = Image.fromarray(ink.astype(np.float32), mode="F").resize(new_size, resample)
    boxed = np.clip(np.asarray(boxed, dtype=np.float32), 0.0, 1.0)

    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    top = (IMAGE_SIZE - boxed.shape[0]) // 2
    left = (IMAGE_SIZE - boxed.shape[1]) // 2
    canvas[top : top + boxed.shape[0], left : left + boxed.shape[1]] = boxed
    centre_row, centre_column = ndimage.center_of_mass(canvas)
    # Whole-pixel shifts, as MNIST did: no extra blur, centre within half a pixel.
    shift_row = _clamped_shift(round(MNIST_CENTRE - centre_row), top, boxed.shape[0])
    shift_column = _clamped_shift(round(MNIST_CENTRE - centre_column), left, boxed.shape[1])
    canvas = np.roll(canvas, (shift_row, shift_column), axis=(0, 1))
    return np.round(canvas * 255).astype(np.uint8)


def _clamped_shift(shift: int, start: int, length: int) -> int:
    """Limit a shift so the digit never wraps around the canvas edge."""
    return int(np.clip(shift, -start, IMAGE_SIZE - (start + length)))


def _disc(size: int) -> np.ndarray:
    radius = (size - 1) / 2
    grid = np.arange(size) - radius
    return (grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2 + 0.5


def prepare_digit(gray: np.ndarray) -> PreparedDigit:
    """A grayscale picture of one digit -> the 28x28 MNIST-style image, or "no digit found"."""
    ink = clean_ink(gray)
    if ink is None:
        return PreparedDigit(image=None, reason=NO_DIGIT)
    return PreparedDigit(image=fit_digit(ink))


# Several digits -----------------------------------------------------------------


def prepare_digits(gray: np.ndarray) -> list[PreparedDigit]:
    """A picture of a number -> one MNIST-style image per digit, left to right.

    Digits are the connected blobs of ink; blobs that overlap a lot in their
    horizontal extent are pieces of one digit (a 5 whose bar is detached, the
    dot-like end of a 9) and are merged. Returns [] when there is no ink.
    """
    from scipy import ndimage

    ink = clean_ink(gray)
    if ink is None:
        return []
    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(labels)
    groups: list[dict] = []
    order = sorted(range(count), key=lambda index: boxes[index][1].start)
    for index in order:
        rows, columns = boxes[index]
        for group in groups:
            overlap = min(group["right"], columns.stop) - max(group["left"], columns.start)
            narrower = min(group["right"] - group["left"], columns.stop - columns.start)
            if overlap > 0.5 * narrower:
                group["labels"].append(index + 1)
                group["left"] = min(group["left"], columns.start)
                group["right"] = max(group["right"], columns.stop)
                group["top"] = min(group["top"], rows.start)
                group["bottom"] = max(group["bottom"], rows.stop)
                break
        else:
            groups.append(
                {"labels": [index + 1], "left": columns.start, "right": columns.stop,
                 "top": rows.start, "bottom": rows.stop}
            )  # fmt: skip
    sizes = [int(np.isin(labels, group["labels"]).sum()) for group in groups]
    largest = max(sizes, default=0)
    digits = []
    for group, size in sorted(zip(groups, sizes, strict=True), key=lambda pair: pair[0]["left"]):
        if size < MIN_COMPONENT_FRACTION * largest:
            continue  # a speck beside the number
        only_this = np.where(np.isin(labels, group["labels"]), ink, 0.0)
        box = (group["top"], group["left"], group["bottom"], group["right"])
        digits.append(PreparedDigit(image=fit_digit(only_this), box=box))
    return digits
