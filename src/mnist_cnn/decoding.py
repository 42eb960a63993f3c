"""Decoding pictures safely: image bytes or arrays to grayscale in [0, 1].

Everything a picture file can do to a reader is answered here, before any
pixel reaches preprocessing: pictures over the pixel limit are refused from
the header (decompression bombs), big ones are decoded reduced, EXIF
orientation is applied, 16-bit and float scans keep their grey levels, and
transparency is flattened onto the paper. Problems are ``MnistCnnError``
subclasses the API maps to 413, 415 and 422.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from mnist_cnn.errors import ImageTooLargeError, MnistCnnError, NotAnImageError

if TYPE_CHECKING:
    from PIL import Image

MAX_IMAGE_PIXELS = 50_000_000  # larger files are refused before decoding (decompression bombs)
# Longer side, in pixels, that decoding reduces big pictures to before any float
# copy: 4x preprocess.WORKING_SIZE, so cleaning sees the same picture, while a
# 49-megapixel file costs a few megabytes of floats instead of a gigabyte.
DECODE_SIZE = 1280

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

    alpha_channel = image.getchannel("A")
    # Premultiplied by alpha before averaging, so that the colour of fully
    # transparent pixels never bleeds into the reduced picture.
    covered_channel = ImageChops.multiply(image.convert("L"), alpha_channel)
    alpha = np.asarray(_reduce_image(alpha_channel), dtype=np.float32) / 255.0
    covered = np.asarray(_reduce_image(covered_channel), dtype=np.float32) / 255.0
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
    return (values - low) / max(high - low, float(np.finfo(np.float32).tiny))


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
