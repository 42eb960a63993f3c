"""Lines that are not the digit's: a plot's frame and title, ruled and squared paper, a
frame drawn around the digit, the edge of a sheet; and the tall 1s that must survive.

Every picture is made here from real MNIST test digits, written dark on white the
way a person's picture is, and read by the trained model as `predict` reads it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_cnn import preprocess
from mnist_cnn.decoding import array_to_gray, decode_image
from mnist_cnn.engines import load_classifier
from mnist_cnn.plots import sample_figure
from mnist_cnn.prediction import answer_pictures
from mnist_cnn.preprocess import prepare_digit
from mnist_cnn.reading import Picture

SIDE = 280  # px: MNIST's 28 px drawn ten times larger, a small photo's size
PEN = 26  # px: MNIST's 2.6 px stroke at ten times the size
FIRST_OF_EACH_CLASS = [3, 2, 1, 18, 4, 8, 11, 0, 61, 7]  # MNIST test indices of 0..9


@pytest.fixture(scope="module")
def classifier(trained_run):
    return load_classifier(trained_run.run_dir)


def read(classifier, grays: list[np.ndarray]) -> list[str]:
    answers = answer_pictures(
        [Picture(name=str(index), gray=gray) for index, gray in enumerate(grays)], classifier
    )
    # The best guess: an unsure one is "not a digit" (not in answer.text) for a run
    # without a learned detector, and these tests are about what preprocessing keeps.
    return [answer.digits[0].digit if answer.digits else "" for answer in answers]


def on_paper(digit: np.ndarray, height: float = 1.0) -> np.ndarray:
    """An MNIST digit drawn dark on white on a SIDE x SIDE page, as a (H, W) gray in [0, 1].

    ``height`` is the ink's height as a share of the page; 1.0 keeps MNIST's own
    layout (a 20 px box in 28 px) at ten times the size.
    """
    if height == 1.0:
        ink = Image.fromarray(digit).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        return 1.0 - np.asarray(ink, dtype=np.float32) / 255
    rows = np.flatnonzero(digit.any(axis=1))
    columns = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    scale = height * SIDE / crop.shape[0]
    size = (max(1, round(crop.shape[1] * scale)), round(crop.shape[0] * scale))
    ink = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC))
    page = np.zeros((SIDE, SIDE), dtype=np.float32)
    top, left = (SIDE - size[1]) // 2, (SIDE - size[0]) // 2
    page[top : top + size[1], left : left + size[0]] = ink / 255
    return 1.0 - page


def ruled(gray: np.ndarray, squared: bool = False) -> np.ndarray:
    """Printed lines every eighth of the page, 3 px (a ninth of the pen), mid grey."""
    lined = gray.copy()
    for position in range(SIDE // 16, SIDE, SIDE // 8):
        lined[position : position + 3] = np.minimum(lined[position : position + 3], 0.45)
        if squared:
            lined[:, position : position + 3] = np.minimum(lined[:, position : position + 3], 0.45)
    return lined


def framed(gray: np.ndarray, pen: int) -> np.ndarray:
    """A rectangle drawn by hand around a digit drawn 0.6 of the page high, clear of its ink."""
    image = Image.fromarray(np.round(gray * 255).astype(np.uint8))
    outside = round(0.2 * SIDE) - 10  # 10 px of paper between the ink's box and the frame
    box = (outside - pen, outside - pen, SIDE - outside + pen, SIDE - outside + pen)
    ImageDraw.Draw(image).rectangle(box, outline=0, width=pen)  # PIL draws the width inwards
    return np.asarray(image, dtype=np.float32) / 255


def sheet_edge(
    gray: np.ndarray, side: str, band: int = round(0.12 * SIDE), level: float = 0.3
) -> np.ndarray:
    """The table beside the sheet: a band ``band`` px wide (12% of the photo), darker
    than the paper (``level``, 0 black to 1 white)."""
    edged = gray.copy()
    region = {
        "top": np.s_[:band],
        "bottom": np.s_[-band:],
        "left": np.s_[:, :band],
        "right": np.s_[:, -band:],
    }[side]
    edged[region] = level
    return edged


def labels_of(mnist, indices) -> list[str]:
    return [str(mnist.test_labels[index]) for index in indices]


# (a) The figure that `mnist-cnn show` writes --------------------------------------


def test_the_figure_that_show_writes_is_read_as_its_digit_not_its_frame(mnist, classifier):
    indices = [0, 1, 2, 3]  # MNIST's first test digits: 7, 2, 1, 0
    grays = []
    for index in indices:
        figure = sample_figure(mnist.test_images[index], f"test[{index}]: 0")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        grays.append(decode_image(buffer.getvalue(), f"sample-test-{index}.png"))
    # The title says 0 on purpose: text above the digit must not be read either.
    assert read(classifier, grays) == labels_of(mnist, indices)


# (b) Ruled and squared paper ---------------------------------------------------------


@pytest.mark.parametrize("squared", [False, True], ids=["ruled", "squared"])
def test_digits_on_ruled_and_squared_paper_read_as_on_plain_paper(mnist, classifier, squared):
    plain = [on_paper(mnist.test_images[index]) for index in FIRST_OF_EACH_CLASS]
    lined = [ruled(gray, squared) for gray in plain]
    assert (
        read(classifier, lined) == read(classifier, plain) == labels_of(mnist, FIRST_OF_EACH_CLASS)
    )


@pytest.mark.parametrize("squared", [False, True], ids=["ruled", "squared"])
@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_printed_lines_are_gone_from_the_prepared_digit(mnist, squared, index):
    digit = mnist.test_images[index]  # 7, 2, 1, 0: lines cross every one of them
    # Where a line crossed a stroke the stroke is kept, so the two differ by a few grey
    # levels.
    assert prepared_difference(on_paper(digit), ruled(on_paper(digit), squared)) < 6


def prepared_difference(plain: np.ndarray, lined: np.ndarray) -> float:
    """Mean grey-level difference of the two pictures' prepared digits, once the centre
    of mass (moved by a pixel at most by what was taken away) is lined up again."""
    plain_image = prepare_digit(plain).image.astype(int)
    lined_image = prepare_digit(lined).image.astype(int)
    return min(
        float(np.abs(plain_image - np.roll(lined_image, (rows, columns), axis=(0, 1))).mean())
        for rows in (-1, 0, 1)
        for columns in (-1, 0, 1)
    )


def fading(gray: np.ndarray) -> np.ndarray:
    """Squared paper whose printed lines fade into gaps: a worn or shaded sheet, where
    the lines break every 40 px for 10 px (under LINE_GAP of the page)."""
    lined = ruled(gray, squared=True)
    breaks = (np.arange(SIDE) % 40) >= 30
    lined[:, breaks] = np.maximum(lined[:, breaks], gray[:, breaks])  # rows break...
    lined[breaks, :] = np.maximum(lined[breaks, :], gray[breaks, :])  # ... and columns
    return np.minimum(lined, gray)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_broken_printed_lines_are_gone_from_the_prepared_digit(mnist, index):
    digit = mnist.test_images[index]
    difference = prepared_difference(on_paper(digit), fading(on_paper(digit)))
    assert difference < 8  # lines left in: 15 to 19 grey levels; a line inside a 0: 6


# (c) A frame drawn around the digit ---------------------------------------------------


@pytest.mark.parametrize("pen", [4, PEN // 2, PEN], ids=["thin-pen", "half-pen", "same-pen"])
def test_a_frame_drawn_around_the_digit_is_not_read(mnist, classifier, pen):
    plain = [on_paper(mnist.test_images[index], height=0.6) for index in FIRST_OF_EACH_CLASS]
    boxed = [framed(gray, pen) for gray in plain]
    assert read(classifier, boxed) == labels_of(mnist, FIRST_OF_EACH_CLASS)


def touching_frame(gray: np.ndarray, pen: int) -> np.ndarray:
    """A frame whose inner edge runs along the ink's box, so it touches the digit."""
    rows = np.flatnonzero((gray < 0.5).any(axis=1))
    columns = np.flatnonzero((gray < 0.5).any(axis=0))
    page = Image.fromarray((gray * 255).astype(np.uint8))
    box = (columns[0] - pen, rows[0] - pen, columns[-1] + pen, rows[-1] + pen)
    ImageDraw.Draw(page).rectangle(box, outline=0, width=pen)
    return np.asarray(page, dtype=np.float32) / 255


@pytest.mark.parametrize("pen", [6, PEN // 2], ids=["thin-pen", "half-pen"])
def test_a_frame_that_touches_the_digit_is_not_read(mnist, classifier, pen):
    # The frame and the digit are one blob: its sides go, the digit stays.
    plain = [on_paper(mnist.test_images[index], height=0.6) for index in FIRST_OF_EACH_CLASS]
    boxed = [touching_frame(gray, pen) for gray in plain]
    assert read(classifier, boxed) == labels_of(mnist, FIRST_OF_EACH_CLASS)


def close_frame(gray: np.ndarray, pen: int) -> np.ndarray:
    """A frame drawn close around the digit, 10 px clear of its ink's box: around a
    narrow 1 it holds less paper than ink."""
    rows = np.flatnonzero((gray < 0.5).any(axis=1))
    columns = np.flatnonzero((gray < 0.5).any(axis=0))
    page = Image.fromarray((gray * 255).astype(np.uint8))
    margin = 10 + pen
    box = (columns[0] - margin, rows[0] - margin, columns[-1] + margin, rows[-1] + margin)
    ImageDraw.Draw(page).rectangle(box, outline=0, width=pen)
    return np.asarray(page, dtype=np.float32) / 255


@pytest.mark.parametrize("pen", [PEN // 2, PEN], ids=["half-pen", "same-pen"])
def test_a_frame_drawn_close_around_the_digit_is_not_read(mnist, classifier, pen):
    # A frame's hole had to hold twice its ink: these frames around a 1 hold 1.4 and
    # 0.6 times theirs, and were read as 8s. Square corners tell them from a 0.
    plain = [on_paper(mnist.test_images[index], height=0.6) for index in FIRST_OF_EACH_CLASS]
    boxed = [close_frame(gray, pen) for gray in plain]
    assert read(classifier, boxed) == labels_of(mnist, FIRST_OF_EACH_CLASS)


def test_a_touching_frame_with_a_stroke_along_one_side_is_still_a_frame():
    # A 9's stem along the frame's right side makes that side look 3 pens thick; the
    # three other sides say the pen, so the frame goes and the stem, inside it, stays.
    blob = np.zeros((160, 86), dtype=bool)
    blob[:13], blob[-13:], blob[:, :13], blob[:, -36:] = True, True, True, True
    blob[30:70, 30:50] = True  # the rest of the digit, touching nothing
    sides = preprocess._touching_frame(blob)
    assert sides[:13].all() and sides[-13:].all() and sides[:, :13].all()
    assert not sides[30:70, 30:50].any()
    assert not sides[20:140, 60:70].any()  # the stem's inner part is the digit's


@pytest.mark.parametrize("size", [16, 40, 120])
def test_round_digits_in_a_small_box_are_never_taken_for_a_touching_frame(mnist, size):
    # In a strip of digits (--multi) each digit is its own blob, often small and
    # dense, so its rows and columns cover most of its box: only square corners
    # tell a frame from it.
    for index in (61, 7, 11, 3, 18):  # an 8, a 9, a 6, a 0, a 3
        digit = Image.fromarray(mnist.test_images[index]).resize((size, size))
        blob = np.asarray(digit) > 100
        assert not preprocess._touching_frame(blob).any(), index


# (d) The edge of the sheet in a photo ------------------------------------------------


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_the_edge_of_the_sheet_is_not_read(mnist, classifier, side):
    plain = [on_paper(mnist.test_images[index], height=0.6) for index in FIRST_OF_EACH_CLASS]
    edged = [sheet_edge(gray, side) for gray in plain]
    assert read(classifier, edged) == labels_of(mnist, FIRST_OF_EACH_CLASS)


def against_the_table(gray: np.ndarray, side: str, band: int, level: float = 0.3) -> np.ndarray:
    """The digit moved against one side of the page until its ink reaches into a band of
    table ``band`` px wide there (dark ink stays darker than the table)."""
    rows = np.flatnonzero((gray < 0.5).any(axis=1))
    columns = np.flatnonzero((gray < 0.5).any(axis=0))
    into = band - 3  # the ink's box starts 3 px inside the table
    shift = {
        "top": (into - rows[0], 0),
        "bottom": (SIDE - 1 - into - rows[-1], 0),
        "left": (0, into - columns[0]),
        "right": (0, SIDE - 1 - into - columns[-1]),
    }[side]
    moved = np.roll(gray, shift, axis=(0, 1))
    return np.minimum(moved, sheet_edge(np.ones_like(moved), side, band, level))


@pytest.mark.parametrize(
    ("band", "level"),
    [(8, 0.3), (18, 0.5), (34, 0.3)],
    ids=["under-a-pen", "lighter-than-the-pen", "wider-than-cleaning"],
)
def test_the_edge_of_the_sheet_that_the_digit_touches_is_not_read(mnist, classifier, band, level):
    # A band under a pen thick joins the digit. One nearly a pen thick, touching the
    # digit, has no shape to tell it from a stroke: it goes because the table is not the
    # pen's grey (_outside_the_sheet; before it, 17 of these 40 were read right, now 40;
    # bands of 14-22 px at greys 0.4-0.6 gave 12-28 then, 40 now). A band wider than
    # cleaning's window is taken for background, and smoothing it used to leave a line
    # along its edge (24 of the 40 wide-band pictures were read right then, 39 now).
    # Ink inside the table is fainter against it, and a 5's loose bar inside the outer
    # fifth goes with the band.
    plain = [on_paper(mnist.test_images[index], height=0.6) for index in FIRST_OF_EACH_CLASS]
    edged = [
        against_the_table(gray, side, band, level)
        for side in ("top", "bottom", "left", "right")
        for gray in plain
    ]
    right = np.equal(read(classifier, edged), labels_of(mnist, FIRST_OF_EACH_CLASS) * 4)
    assert right.sum() >= 36, right.reshape(4, 10)


def at_an_angle(gray: np.ndarray, far_side: int) -> np.ndarray:
    """The page photographed leaning away from the camera: the corners of its far side
    (0 top, 1 right, 2 bottom, 3 left) drawn in by 30%, a mid-grey table around it."""
    corners = np.array([[0, 0], [SIDE, 0], [SIDE, SIDE], [0, SIDE]], dtype=float)
    outwards = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    stretch = np.zeros((4, 2))
    stretch[[far_side, (far_side + 1) % 4]] = 0.3
    sources = corners + stretch * outwards * SIDE  # where each corner of the photo looks
    equations, values = [], []
    for (x, y), (u, v) in zip(corners, sources, strict=True):
        equations += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        values += [u, v]
    coefficients = tuple(np.linalg.solve(np.array(equations), np.array(values)))
    image = Image.fromarray(np.round(gray * 255).astype(np.uint8)).transform(
        (SIDE, SIDE), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR,
        fillcolor=110,
    )  # fmt: skip
    return np.asarray(image, dtype=np.float32) / 255


def test_a_sheet_at_an_angle_that_the_digit_touches_is_not_read(mnist, classifier):
    # The digit reaches the sheet's slanted far edge, so the wedges of table beyond it join
    # the digit: before _outside_the_sheet, 14 of these 40 were read right, now 35.
    tall = [on_paper(mnist.test_images[index], height=0.8) for index in FIRST_OF_EACH_CLASS]
    tilted = [at_an_angle(gray, far_side) for far_side in range(4) for gray in tall]
    right = np.equal(read(classifier, tilted), labels_of(mnist, FIRST_OF_EACH_CLASS) * 4)
    assert right.sum() >= 33, right.reshape(4, 10)


def on_a_big_table(gray: np.ndarray, table: float = 0.43) -> np.ndarray:
    """The page, seen at an angle, small in the middle of a photo 1.6 times its size whose
    rest is a mid-grey table: the table, not the paper, is most of the picture."""
    photo = np.full((round(1.6 * SIDE),) * 2, table, dtype=np.float32)
    tilted = at_an_angle(gray, far_side=0)
    sheet = at_an_angle(np.ones_like(gray), far_side=0) > 0.99
    top = (photo.shape[0] - SIDE) // 2
    window = photo[top : top + SIDE, top : top + SIDE]
    window[sheet] = tilted[sheet]
    return photo


def test_a_sheet_smaller_than_the_table_around_it_is_read_as_paper(mnist, classifier):
    # The table is the picture's median, and the sheet further above it than the ink
    # below: polarity by the median took the sheet for the ink, lighting 18-26% of these
    # pictures where their digits cover 2-7%.
    digits = [on_paper(mnist.test_images[index]) for index in FIRST_OF_EACH_CLASS]
    grays = [on_a_big_table(digit) for digit in digits]
    assert float(np.median(grays[0])) == pytest.approx(0.43)
    for digit, gray in zip(digits, grays, strict=True):
        lit = float(np.mean(preprocess.clean_ink(gray) > 0.5))
        assert lit < float(np.mean(digit < 0.5)) / 1.6**2, "the sheet was taken for ink"
    assert read(classifier, grays) == labels_of(mnist, FIRST_OF_EACH_CLASS)


def on_a_dark_table(gray: np.ndarray) -> np.ndarray:
    """The page shaded from 0.4 on its left to 0.9 on its right, its ink 0.1, on a table
    of 0.2 filling the rest of a photo 1.25 times its size (over a third of it)."""
    shade = 0.4 + 0.5 * np.arange(SIDE)[None, :] / SIDE
    photo = np.full((round(1.25 * SIDE),) * 2, 0.2, dtype=np.float32)
    top = (photo.shape[0] - SIDE) // 2
    photo[top : top + SIDE, top : top + SIDE] = 0.1 + (shade - 0.1) * gray
    return photo


def test_a_sheet_on_a_table_nearly_as_dark_as_the_ink_is_read_as_paper(mnist, classifier):
    # The median falls in the sheet's shaded side, nearer the ink than the sheet's lit
    # side, and the table is as dark as the ink: the dark pixels were mostly table, so
    # the sheet was not found and was taken for the ink (half of each picture lit).
    digits = [on_paper(mnist.test_images[index], height=0.7) for index in FIRST_OF_EACH_CLASS]
    grays = [on_a_dark_table(digit) for digit in digits]
    for digit, gray in zip(digits, grays, strict=True):
        lit = float(np.mean(preprocess.clean_ink(gray) > 0.5))
        assert lit < 1.2 * float(np.mean(digit < 0.5)) / 1.25**2, "the sheet was taken for ink"
    assert read(classifier, grays) == labels_of(mnist, FIRST_OF_EACH_CLASS)


def test_slivers_of_table_lighter_than_the_pen_are_dropped():
    # Where a sheet's slanted edge meets the picture's border, the table tapers to a
    # sliver too thin for cleaning's window; its broad part is background, so the sliver
    # stands apart from the border and from the digit. It is lighter than the pen.
    ink = np.zeros((320, 320), dtype=np.float32)
    darkness = np.zeros_like(ink)
    ink[100:220, 150:165] = 1.0  # the digit's stem, drawn at the pen's level
    darkness[100:220, 150:165] = 0.6
    ink[100:110, 175:215] = 1.0  # the digit's own bar apart from it: the same pen
    darkness[100:110, 175:215] = 0.6
    ink[250:300, 6:12] = 1.0  # a sliver of table near the border, lighter than the pen
    darkness[250:300, 6:12] = 0.3
    ink[150:170, 100:106] = 1.0  # a lighter piece inside the picture, not near its border
    darkness[150:170, 100:106] = 0.3
    kept = preprocess._without_table_slivers(ink, darkness, contrast=0.7) > 0.5
    assert not kept[250:300, 6:12].any(), "the sliver of table was kept"
    assert kept[100:220, 150:165].all() and kept[100:110, 175:215].all()
    assert kept[150:170, 100:106].all(), "a piece away from the border was dropped"


def test_a_sheet_at_an_angle_leaves_no_slivers_of_table(handwriting, mnist):
    # The benchmark's sheet at an angle, on a held-out digit (the 59th of validation seed
    # 2): a sliver of table beside the 1 was kept as a second stroke and read as a 6.
    digits, _ = handwriting.benchmark_digits(mnist, "validation", 300, np.random.default_rng(2))
    picture, _ = handwriting.render_kind(digits[:59], "perspective", seed=2)[58]
    ink = preprocess.clean_ink(decode_image(picture), rejoin=True)
    _, pieces = ndimage.label(ink > 0.5, structure=np.ones((3, 3)))
    assert pieces == 1


def under_a_lamp(gray: np.ndarray) -> np.ndarray:
    """Grey paper (0.35) lit to 0.65 by a lamp over one corner, the ink a third as light
    as the paper under it: the lit paper lies further above the median than the ink
    below it."""
    rows, columns = np.mgrid[0:SIDE, 0:SIDE]
    light = 0.35 + 0.3 * np.exp(-((rows**2 + (columns - SIDE) ** 2) / (2 * (0.35 * SIDE) ** 2)))
    return (light * (1.0 - 0.7 * (1.0 - gray))).astype(np.float32)


def test_paper_lit_unevenly_is_not_taken_for_the_ink(mnist, classifier):
    # Polarity by the gaps from the median took the lit paper for light ink: the paper
    # around the strokes and inside their loops came out as ink, and the 1 not at all.
    # The lit paper is broad where the ink is thin.
    from scipy import ndimage

    digits = [on_paper(mnist.test_images[index], height=0.6) for index in FIRST_OF_EACH_CLASS]
    grays = [under_a_lamp(digit) for digit in digits]
    for digit, gray in zip(digits, grays, strict=True):
        ink = preprocess.clean_ink(gray)
        assert ink is not None, "no digit found"
        lit, strokes = ink > 0.5, digit < 0.5
        assert np.mean(lit[~ndimage.binary_dilation(strokes, iterations=2)]) < 0.005
        assert np.mean(lit[strokes]) > 0.9
    assert read(classifier, grays) == labels_of(mnist, FIRST_OF_EACH_CLASS)


# (e) Guard rails: the digit's own long strokes -----------------------------------------


@pytest.mark.parametrize("height", [1.0, 0.85, 0.95], ids=["mnist-layout", "85%", "95%"])
def test_tall_ones_that_fill_the_canvas_still_read_as_one(mnist, classifier, height):
    ones = np.flatnonzero(mnist.test_labels == 1)[:10]
    grays = [on_paper(mnist.test_images[index], height=height) for index in ones]
    assert read(classifier, grays) == ["1"] * len(ones)


def test_a_tall_one_on_ruled_paper_is_kept_and_the_lines_are_not(mnist, classifier):
    ones = np.flatnonzero(mnist.test_labels == 1)[:10]
    grays = [ruled(on_paper(mnist.test_images[index], height=0.85)) for index in ones]
    assert read(classifier, grays) == ["1"] * len(ones)


def test_mnist_digits_are_prepared_exactly_as_without_line_removal(mnist, monkeypatch):
    images = mnist.test_images[:300]
    with_removal = np.stack([prepare_digit(array_to_gray(image)).image for image in images])
    monkeypatch.setattr(preprocess, "_without_lines", lambda ink: ink)
    without = np.stack([prepare_digit(array_to_gray(image)).image for image in images])
    # No MNIST digit has a line that is not its own, so not one pixel changes.
    np.testing.assert_array_equal(with_removal, without)


def drawn(shapes) -> np.ndarray:
    """A 280x280 white canvas with black strokes of the page's normal pen (18 px)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (280, 280), 255)
    pen = ImageDraw.Draw(canvas)
    for kind, points in shapes:
        if kind == "line":
            pen.line(points, fill=0, width=18)
        else:
            pen.ellipse(points, outline=0, width=18)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def test_a_digits_own_bar_along_the_edge_is_kept(classifier):
    # A 7 whose bar runs along the top, a 2 whose base runs along the bottom: each bar
    # spans over 80% of the picture in its outer fifth, but joins its digit.
    seven = drawn([("line", [(20, 40), (260, 40)]), ("line", [(260, 40), (120, 260)])])
    two = drawn(
        [
            ("line", [(60, 70), (140, 25)]), ("line", [(140, 25), (220, 70)]),
            ("line", [(220, 70), (30, 250)]), ("line", [(30, 250), (255, 250)]),
        ]
    )  # fmt: skip
    assert read(classifier, [seven]) == ["7"]
    assert read(classifier, [two]) == ["2"]


def test_a_bar_drawn_off_the_canvas_is_kept(classifier):
    # On the drawing page a bar drawn past the edge is clipped to the canvas's first row
    # and runs from corner to corner, like the edge of a sheet: it joins its digit.
    seven = drawn([("line", [(4, 6), (276, 6)]), ("line", [(276, 6), (130, 274)])])
    two = drawn(
        [
            ("line", [(60, 70), (140, 25)]), ("line", [(140, 25), (220, 70)]),
            ("line", [(220, 70), (4, 272)]), ("line", [(0, 275), (280, 275)]),
        ]
    )  # fmt: skip
    assert read(classifier, [seven, two]) == ["7", "2"]


def test_a_thick_stroke_cropped_at_the_border_is_not_taken_for_the_table(classifier):
    # A tight crop leaves no pen to measure, so cleaning's window can be narrower than a
    # marker's stroke, which then survives the opening like a band of table; it only
    # meets the border where it ends, and a table lies along it.
    gray = np.ones((200, 60), dtype=np.float32)
    gray[0:190, 23:37] = 0.0
    assert read(classifier, [gray]) == ["1"]


def test_a_zero_with_something_inside_is_not_a_frame(classifier):
    # A ring that holds other ink is a frame only if it is square-cornered.
    slashed = drawn([("ellipse", [70, 20, 210, 260]), ("line", [(170, 70), (110, 210)])])
    assert read(classifier, [slashed]) == ["0"]
