"""Pens and paper that MNIST never saw: thick markers, broken strokes, small digits on big
canvases, and the benchmark's generator of every kind of picture people make.

The pictures are drawn here with PIL (a round pen of a known width) or made by
`benchmarks/handwriting.py` from real MNIST digits, and go through `prepare_digit`
as `predict` and the drawing page send them.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_cnn.decoding import decode_image
from mnist_cnn.preprocess import (
    MNIST_STROKE_WIDTH,
    THICK_STROKE_WIDTH,
    THIN_STROKE_WIDTH,
    clean_ink,
    prepare_digit,
    stroke_width,
)


def drawn(strokes: list[list[tuple[float, float]]], size: int = 400, pen: int = 8) -> np.ndarray:
    """Dark strokes on white paper, a round pen ``pen`` px wide, as (H, W) gray in [0, 1]."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        draw.line(stroke, fill=0, width=pen, joint="curve")
        for x, y in (stroke[0], stroke[-1]):  # round ends, as a felt-tip leaves them
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=0)
    return np.asarray(image, dtype=np.float32) / 255


def seven(top: float, left: float, height: float) -> list[tuple[float, float]]:
    return [(left, top), (left + 0.6 * height, top), (left + 0.2 * height, top + height)]


def width_of(image: np.ndarray) -> float:
    return stroke_width(image.astype(np.float32) / 255)


def pieces_of(image: np.ndarray) -> int:
    return ndimage.label(image > 127, structure=np.ones((3, 3)))[1]


@pytest.mark.parametrize("pen", [60, 80, 100])
def test_a_thick_marker_one_stays_a_thin_bar(pen):
    # A vertical 1, 200 px long plus its round ends, with a felt-tip 20-33% of its height:
    # before thinning it filled a third of the 20 px box and read as a 0 or an 8.
    gray = drawn([[(200, 100), (200, 300)]], pen=pen)
    image = prepare_digit(gray).image
    columns = np.flatnonzero(image.max(axis=0) > 127)
    assert columns[-1] - columns[0] + 1 <= 5  # MNIST's 1s are 2-4 px wide
    assert THIN_STROKE_WIDTH <= width_of(image) <= THICK_STROKE_WIDTH  # MNIST's range


def test_a_thick_marker_seven_is_thinned_to_mnists_width():
    # A felt-tip a third of the 7's height: 5.2 px at 28x28 left alone, wider than 99% of
    # MNIST's digits.
    image = prepare_digit(drawn([seven(60, 80, 280)], pen=100)).image
    assert abs(width_of(image) - MNIST_STROKE_WIDTH) <= 0.5
    assert pieces_of(image) == 1  # thinning never cuts the digit


def test_a_felt_tip_loop_filled_in_is_not_hollowed():
    # A 6 whose loop the felt-tip filled: a disc 130 px wide under a stem 50 px wide, on
    # a 320 px picture (cleaning's own scale). Cleaning's window was 1.5 median pens
    # (75 px), so it took the disc's middle for paper and left a ring, read as an 8.
    gray = drawn([[(140, 40), (125, 190)]], size=320, pen=50)
    image = Image.fromarray(np.round(gray * 255).astype(np.uint8))
    ImageDraw.Draw(image).ellipse((80, 150, 210, 280), fill=0)
    ink = clean_ink(np.asarray(image, dtype=np.float32) / 255)
    assert ink[215, 145] > 0.5  # the disc's centre
    assert ink[10, 10] == 0.0


@pytest.mark.parametrize("ruled", [False, True])
def test_a_felt_tip_one_nearly_as_tall_as_the_picture_is_not_hollowed(ruled):
    # A 1 spanning 94% of a tight crop (320 px, cleaning's own scale), clear of its edges,
    # is as long as a ruled line, so the window's measure of the widest ink left it out and
    # took the default, narrower than this 60 px pen: its middle became paper, a ring read
    # as a 0. On ruled paper the lines across it must not carry it to the border.
    gray = drawn([[(160, 40), (160, 280)]], size=320, pen=60)
    if ruled:
        for top in range(20, 320, 40):  # grey printed lines 3 px high across the page
            gray[top : top + 3] = np.minimum(gray[top : top + 3], 0.45)
    ink = clean_ink(gray)
    assert ink[160, 160] > 0.5  # the bar's middle
    assert ink[160, 60] == 0.0
    if not ruled:  # on ruled paper such a 1 still keeps the lines: it hides the pen's width
        image = prepare_digit(gray).image
        assert pieces_of(255 - image) == 1  # no hole inside: all the paper is one piece


def test_widths_mnist_already_has_are_left_alone():
    # A 7 whose pen is 3.5 px at 28x28 is within MNIST's range: neither thinned nor thickened.
    gray = drawn([seven(60, 80, 280)], pen=round(3.5 * 280 / 20))
    image = prepare_digit(gray).image
    assert 3.0 <= width_of(image) <= THICK_STROKE_WIDTH


def test_a_broken_thin_seven_becomes_one_stroke():
    # A thin pen that skipped: the bar and the diagonal each have a gap of two pens.
    pen = 6
    strokes = [
        [(80, 60), (150, 60)],
        [(162, 60), (248, 60)],  # the gap in the bar
        [(248, 60), (200, 150)],
        [(194, 162), (136, 300)],  # the gap in the diagonal
    ]
    gray = drawn(strokes, pen=pen)
    assert ndimage.label(gray < 0.5, structure=np.ones((3, 3)))[1] == 3  # broken as drawn
    # Joined in the ink before it is cropped (thickening in the 28x28 would join it too).
    joined = clean_ink(gray, rejoin=True)
    assert ndimage.label(joined > 0.5, structure=np.ones((3, 3)))[1] == 1
    assert ndimage.label(clean_ink(gray) > 0.5, structure=np.ones((3, 3)))[1] == 3
    assert pieces_of(prepare_digit(gray).image) == 1


def test_rejoining_leaves_a_four_open():
    # A 4 drawn in one stroke with its top open by three pens: only gaps between pieces are
    # closed, never a bay inside one piece.
    strokes = [[(120, 60), (80, 220), (300, 220)], [(200, 120), (200, 340)]]
    image = prepare_digit(drawn(strokes, pen=10)).image
    top_rows = image[: np.flatnonzero(image.max(axis=1) > 127)[0] + 6]
    assert pieces_of(top_rows) == 2  # the two arms stay apart at the top


@pytest.mark.parametrize("canvas, height, pen", [(1200, 110, 3), (1000, 90, 2)])
def test_a_small_digit_on_a_big_canvas_is_read_from_its_own_detail(canvas, height, pen):
    # A 7 a tenth of a big photo, drawn with a ballpoint: at the 320 px that cleaning
    # works at, the pen is under a pixel; the picture is decoded at more than that.
    small = drawn([seven(canvas * 0.6, canvas * 0.3, height)], size=canvas, pen=pen)
    large = drawn([seven(60, 80, 280)], size=400, pen=round(pen * 280 / height))
    from_small, from_large = prepare_digit(small).image, prepare_digit(large).image
    assert pieces_of(from_small) == 1
    assert np.abs(from_small.astype(int) - from_large.astype(int)).mean() < 15


@pytest.mark.slow
def test_the_benchmark_draws_every_kind(handwriting, mnist):
    digits = mnist.test_images[:1]
    for kind in handwriting.KINDS:
        pictures = handwriting.render_kind(digits, kind, seed=7)
        assert len(pictures) == len(digits)
        for data, picture_format in pictures:
            assert picture_format in ("png", "jpeg")
            gray = decode_image(data, kind)
            assert min(gray.shape) >= 100
            assert prepare_digit(gray).image is not None, kind


def test_the_benchmark_draws_the_same_pictures_for_a_seed(handwriting, mnist):
    digits = mnist.test_images[:1]
    first = handwriting.render_kind(digits, "JPEG", 3)
    assert first == handwriting.render_kind(digits, "JPEG", 3)
    assert first != handwriting.render_kind(digits, "JPEG", 4)


def test_the_paper_edge_kind_writes_the_digit_on_the_sheet(handwriting, mnist, monkeypatch):
    # Ink on the table band, as dark as the table, cannot be seen: when the generator put
    # digits anywhere, 61 of the 300 test pictures lost part of their strokes that way.
    drawn_on = []
    photograph = handwriting._photograph

    def recording(page, placed, generator, *arguments, **keywords):
        drawn_on.append((page, placed[0]))
        return photograph(page, placed, generator, *arguments, **keywords)

    monkeypatch.setattr(handwriting, "_photograph", recording)
    handwriting.render_kind(mnist.test_images[:40], "paper edge", seed=0)
    assert len(drawn_on) == 40
    for page, (ink, top, left) in drawn_on:
        corners = [page[0, 0], page[0, -1], page[-1, 0], page[-1, -1]]
        # The table is one flat colour darker than any paper, which has grain.
        table = np.zeros(page.shape[:2], dtype=bool)
        for colour in corners:
            if (colour < 0.6).all():
                table |= (page == colour).all(axis=-1)
        assert table.sum() >= 3 * max(page.shape[:2])  # a band at least 3 px wide
        strokes = np.zeros_like(table)
        strokes[top : top + ink.shape[0], left : left + ink.shape[1]] = ink > 0.05
        assert not (strokes & table).any()
