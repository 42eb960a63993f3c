"""MNIST-faithful preprocessing, step by step, on small synthetic pictures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_cnn.errors import MnistCnnError
from mnist_cnn.preprocess import (
    MAX_IMAGE_PIXELS,
    NO_DIGIT,
    array_to_gray,
    decode_image,
    prepare_digit,
    prepare_digits,
    stroke_width,
)


def page(height=200, width=160, paper=1.0):
    return np.full((height, width), paper, dtype=np.float32)


def draw_seven(gray, top, left, size, ink=0.0, width=6):
    """A 7: a bar and a diagonal, drawn with PIL at the given place and size."""
    image = Image.fromarray(np.round(gray * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    colour = round(ink * 255)
    draw.line([(left, top), (left + size * 0.6, top)], fill=colour, width=width)
    draw.line(
        [(left + size * 0.6, top), (left + size * 0.15, top + size)], fill=colour, width=width
    )
    return np.asarray(image, dtype=np.float32) / 255


def bounding_box(image):
    rows = np.flatnonzero(image.max(axis=1) > 0)
    columns = np.flatnonzero(image.max(axis=0) > 0)
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_dark_ink_on_light_paper_is_inverted():
    result = prepare_digit(draw_seven(page(), 40, 50, 100)).image
    assert result.shape == (28, 28) and result.dtype == np.uint8
    assert result[0, 0] == 0 and result[-1, -1] == 0  # black paper
    assert result.max() == 255  # light ink


def test_light_ink_on_dark_paper_is_kept():
    dark = draw_seven(page(paper=0.0), 40, 50, 100, ink=1.0)
    light = draw_seven(page(), 40, 50, 100)
    np.testing.assert_array_equal(prepare_digit(dark).image, prepare_digit(light).image)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) weighted by grey level, written out here rather than taken from scipy."""
    weights = image.astype(np.float64)
    rows, columns = np.indices(image.shape)
    return (rows * weights).sum() / weights.sum(), (columns * weights).sum() / weights.sum()


@pytest.mark.parametrize("top, left", [(5, 5), (90, 60), (30, 100)])
def test_centre_of_mass_lands_on_mnist_centre_within_half_a_pixel(top, left):
    result = prepare_digit(draw_seven(page(260, 220), top, left, 100)).image
    row, column = centre_of_mass(result)
    assert abs(row - 14.0) <= 0.5 and abs(column - 14.0) <= 0.5


def test_an_l_of_known_centre_is_placed_where_worked_out_by_hand():
    # An L exactly 20x20 (so it is not rescaled), bars 5 pixels thick: a stem of
    # 100 pixels (centre row 9.5, column 2) and a foot of 75 (row 17, column 12).
    # Its centre of mass is (12.71, 6.29); centred in 28x28 it starts at (4, 4), so
    # the centre sits at (16.71, 10.29) and whole-pixel shifts of (-3, +4) bring it
    # to (13.71, 14.29), within half a pixel of MNIST's (14, 14).
    gray = page(300, 300)
    gray[100:120, 150:155] = 0.0  # the stem
    gray[115:120, 155:170] = 0.0  # the foot
    expected = np.zeros((28, 28), dtype=np.uint8)
    expected[1:21, 8:13] = 255
    expected[16:21, 13:28] = 255
    np.testing.assert_array_equal(prepare_digit(gray).image, expected)
    assert centre_of_mass(expected) == pytest.approx((13.714, 14.286), abs=1e-3)


@pytest.mark.parametrize(
    "height, width, expected",
    [(120, 30, (20, 5)), (30, 120, (5, 20)), (80, 80, (20, 20))],
    ids=["tall", "wide", "square"],
)
def test_scaled_into_a_20_by_20_box_keeping_aspect_ratio(height, width, expected):
    gray = page(300, 300)
    gray[50 : 50 + height, 70 : 70 + width] = 0.0  # a solid block of ink
    result = prepare_digit(gray).image
    box = bounding_box(result)
    assert max(box) == 20
    assert abs(box[0] - expected[0]) <= 1 and abs(box[1] - expected[1]) <= 1


def test_already_mnist_like_images_come_back_unchanged(mnist):
    differences = []
    for image in mnist.test_images[:50]:
        prepared = prepare_digit(array_to_gray(image)).image
        differences.append(np.abs(prepared.astype(int) - image.astype(int)).mean())
    # Mean absolute difference in grey levels (0-255): almost all images identical.
    assert np.median(differences) < 2.0
    assert np.mean(np.array(differences) < 4.0) >= 0.9


def test_idempotent_on_its_own_output():
    once = prepare_digit(draw_seven(page(), 40, 50, 100)).image
    twice = prepare_digit(array_to_gray(once)).image
    assert np.abs(once.astype(int) - twice.astype(int)).mean() < 2.0


@pytest.mark.parametrize(
    "gray",
    [
        page(),
        page(paper=0.0),
        page(paper=0.6),
        np.clip(page() - np.random.default_rng(0).random((200, 160)) * 0.05, 0, 1),
        np.linspace(0.5, 1.0, 200 * 160, dtype=np.float32).reshape(200, 160),
    ],
    ids=["white", "black", "grey", "paper-grain", "shading-only"],
)
def test_blank_pages_have_no_digit(gray):
    result = prepare_digit(gray)
    assert result.image is None and result.reason == NO_DIGIT
    assert prepare_digits(gray) == []


def test_a_speck_of_dust_is_not_a_digit():
    gray = page(500, 500)
    gray[250:252, 250:252] = 0.0
    assert prepare_digit(gray).reason == NO_DIGIT


def test_thin_pen_strokes_are_thickened():
    thin = draw_seven(page(600, 600), 50, 100, 480, width=2)
    result = prepare_digit(thin).image
    assert stroke_width(result.astype(np.float32) / 255) >= 1.8


def test_uneven_lighting_is_removed():
    flat = draw_seven(page(), 40, 50, 100, ink=0.1)
    rows = np.linspace(0.45, 1.0, 200, dtype=np.float32)[:, None]
    shaded = flat * rows  # the page darkens towards the top, ink and all
    clean, from_shade = prepare_digit(flat).image, prepare_digit(shaded).image
    assert from_shade[:3].max() == 0 and from_shade[:, :3].max() == 0
    assert np.abs(clean.astype(int) - from_shade.astype(int)).mean() < 6


def test_transparency_is_flattened_onto_the_paper():
    rgba = np.zeros((120, 120, 4), dtype=np.uint8)  # fully transparent canvas
    stroke = draw_seven(page(120, 120), 10, 30, 90) < 0.5
    rgba[stroke] = (0, 0, 0, 255)  # black, opaque strokes
    opaque = np.where(stroke, 0, 255).astype(np.uint8)
    from_alpha = prepare_digit(decode_image(png_bytes(rgba, "RGBA"))).image
    from_opaque = prepare_digit(decode_image(png_bytes(opaque))).image
    np.testing.assert_array_equal(from_alpha, from_opaque)


def test_three_digit_number_is_split_left_to_right(mnist):
    indices = [0, 1, 2]  # MNIST's first test digits: 7, 2, 1
    strip = np.concatenate(
        [np.pad(mnist.test_images[index], ((4, 4), (6, 6))) for index in indices], axis=1
    )
    big = np.asarray(Image.fromarray(255 - strip).resize((strip.shape[1] * 6, strip.shape[0] * 6)))
    digits = prepare_digits(big.astype(np.float32) / 255)
    assert len(digits) == 3
    lefts = [digit.box[1] for digit in digits]
    assert lefts == sorted(lefts)
    for digit, index in zip(digits, indices, strict=True):
        # Each piece is its own MNIST digit again.
        difference = np.abs(digit.image.astype(int) - mnist.test_images[index].astype(int)).mean()
        assert difference < 12


def test_pieces_of_one_broken_digit_are_merged():
    gray = page(200, 300)
    gray[40:50, 60:120] = 0.0  # the detached top bar of a 5
    gray[60:160, 60:72] = 0.0  # its stem and belly, a separate blob
    gray[150:160, 60:120] = 0.0
    gray[100:160, 110:120] = 0.0
    gray[60:160, 200:212] = 0.0  # a 1 beside it
    digits = prepare_digits(gray)
    assert len(digits) == 2


NOISE_PNG = png_bytes(np.random.default_rng(0).integers(0, 256, (80, 80), dtype=np.uint8))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"hello, I am text", "not an image file this tool can read"),
        (NOISE_PNG[: len(NOISE_PNG) // 2], "damaged or truncated image"),
    ],
    ids=["text", "truncated"],
)
def test_bad_files_are_refused_with_the_name(data, message):
    with pytest.raises(MnistCnnError, match=message) as raised:
        decode_image(data, "scan.png")
    assert str(raised.value).startswith("scan.png: ")


def test_decompression_bomb_is_refused_before_decoding():
    side = int(np.sqrt(MAX_IMAGE_PIXELS)) + 100
    bomb = io.BytesIO()
    Image.new("1", (side, side)).save(bomb, format="PNG")  # tiny file, huge image
    assert len(bomb.getvalue()) < 1_000_000
    with pytest.raises(MnistCnnError, match="megapixel limit; refused"):
        decode_image(bomb.getvalue(), "bomb.png")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((28, 28), dtype=np.int64), "dtype int64 is not supported"),
        (np.full((28, 28), 300.0), "must be finite and in"),
        (np.full((28, 28), np.nan), "must be finite and in"),
    ],
)
def test_arrays_of_wrong_dtype_or_range(array, message):
    with pytest.raises(MnistCnnError, match=message):
        array_to_gray(array, "digits.npy")
