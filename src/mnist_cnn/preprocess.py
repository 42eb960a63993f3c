"""Turning pixels into what the network takes.

Two jobs live here:

* ``to_model_input``: MNIST arrays to the float tensors Keras trains on.
* ``prepare_digit`` / ``prepare_digits``: a person's photo or drawing to an
  image made the way MNIST was made. MNIST scaled each digit to fit a 20x20
  box keeping its aspect ratio (anti-aliased), then placed it in 28x28 with
  its centre of mass at the centre, light ink on black. A model trained on
  that gets people's digits wrong when they are dark on white, off-centre, the
  wrong size, too thin or too thick (a felt-tip marker), broken (a pen that
  skips), small in a big photo, on tinted or shaded paper, or among lines that
  are not theirs (ruled or squared paper, a frame, a plot's axes, the edge of
  a sheet, straight or seen at an angle); these functions undo each of those.

Everything here is a pure function of arrays: no files, no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mnist_cnn.data import IMAGE_SIZE

if TYPE_CHECKING:
    pass

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)  # what the network takes: one grey channel
BOX_SIZE = 20  # MNIST's digits fit a 20x20 box inside the 28x28 image
WORKING_SIZE = 320  # longer side, in pixels, that cleaning reduces pictures to
MNIST_CENTRE = 14.0  # MNIST's mean centre of mass, (row, column), measured on its test set
MNIST_STROKE_WIDTH = 2.6  # median stroke width in MNIST pixels (2 x ink area / outline)
THIN_STROKE_WIDTH = 1.8  # strokes thinner than this at 28x28 are thickened to the above
# Strokes wider than this at 28x28 (a felt-tip marker, a fixed pen on a small digit) are
# thinned to MNIST_STROKE_WIDTH: 99% of MNIST's training digits are thinner by
# ``_pen_width`` (2.68, 4.08 and 4.95 px at the 50th, 95th and 99th percentiles, measured
# on every 10th of the first 50k), so MNIST's own digits are left as they are.
THICK_STROKE_WIDTH = 5.0
# Pieces of a broken stroke (a pen that skips, pencil on grainy paper) closer than this
# many pen widths are joined before specks are dropped and the ink is cropped.
BRIDGE_PENS = 3.0
# ... when the pen is thinner than this at 28x28: MNIST's thinnest 1% of pens (2.0 px).
BRIDGE_MAX_WIDTH = 2.0
# A digit whose box is under this share of the reduced picture is cleaned again from the
# decoded picture around it, which holds more of its detail.
SMALL_DIGIT_FRACTION = 0.25
BRIGHT_PIXELS = 30  # ink is there when this many pixels stand out (at WORKING_SIZE)
MIN_CONTRAST = 0.12  # ink must differ from the paper by this much (of full scale)
# Light "ink" around this share of the dark pixels is a sheet on a table, and the dark
# pixels its ink (_light_on_dark).
SHEET_ENCLOSED = 0.8
SHEET_INK_SHARE = 0.03  # ink covers at least this share of a sheet nearly as dark as the table
SHEET_ABOVE_TABLE = 0.25  # the sheet is this share of the way from the median to the brightest
# Light pixels further from the median than the dark ones, but no further than twice as
# far, are lit paper where they reach this deep (a share of the picture's shorter side)
# and twice as deep as the dark: strokes are thin.
LIT_GAP_SHARE = 0.5
LIT_DEPTH = 0.13
# Long straight lines along the border at least this many px wide (at WORKING_SIZE) are
# bands of table or borders, not printed rulings (about 3 px).
BAND_WIDTH = 7
LOCAL_PEAK_FLOOR = 0.35  # ink is stretched to its local peak, but never past 1/0.35 times
NOISE_FLOOR = 0.2  # after stretching, values below this are paper texture, not ink
MIN_COMPONENT_FRACTION = 0.08  # ink blobs smaller than this share of the largest are specks
# Lines that are not the digit's: rulings, grids, frames, the edges of sheets and screenshots.
LINE_SPAN = 0.8  # a line runs straight across this share of the picture; MNIST digits span
# at most 20 of 28 px (0.71), so no digit in an MNIST-like picture is ever taken for a line
LINE_WANDER = (
    1  # px at WORKING_SIZE a line may stray from its row: ~1 degree of tilt over 0.8 x 320
)
THIN_LINE_RATIO = 0.6  # lines thinner than this share of the digit's pen are printed, not written
# A printed line faint or broken in places (in a shadow, or dimmed beside a stroke by the
# stretching) is still found across gaps up to this share of the picture: less than the
# spacing of any ruling once the lines across it are taken away.
LINE_GAP = 0.05
LINE_COVER = 0.5  # ... if inked along at least this share of its length
# The table beside the sheet, where wider than cleaning's window: a plateau of the opening
# at least TABLE_CONTRAST of the ink's contrast above the paper, along LINE_SPAN of the
# picture's border. Its edge, blurred by up to TABLE_BLUR px, is not ink.
TABLE_CONTRAST = 0.3
TABLE_BLUR = 3
# The sheet is convex, so ink outside the convex hull of the paper (narrow bands and
# wedges of table along the border) is the table, when its darkness differs from the
# pen's by this share of the ink's contrast: a digit's own bar drawn off the drawing
# page's canvas lies outside the paper too, but in the pen's own ink.
SHEET_LEVEL_DIFFERENCE = 0.15
# Ink-free regions (or pieces of table) smaller than this share of the picture are not
# paper (or not table): specks.
SHEET_PAPER_SHARE = 0.001
# A straight line within this outer share of the picture is the edge of a sheet or a
# screenshot, however thick: a band of table narrower than cleaning's window is ink,
# a wider one leaves a line at its inner side (bands up to 0.15 in benchmarks/handwriting).
# A digit's stroke 0.8 of the picture long but in its outer fifth would be pressed to the side.
EDGE_BAND = 0.2
# ... when it stands apart from the digit, or is this many pens thick: a digit's own bar
# drawn along the edge (a big 7, the base of a 2, a tight crop) joins its digit and is
# about one pen thick.
EDGE_BAND_PEN_RATIO = 2.0
# A component along the border with this share of its ink in the outer EDGE_BAND is the
# edge of the sheet (seen at an angle, so not straight along a row or a column).
SHEET_EDGE_SHARE = 0.9
# A ring holding other ink is a frame if its hole is at least this share of its ink and
# its corners are square (_has_corners): a thick frame drawn close around a 1 holds about
# 0.6 of its ink, and a 0 with something inside it is round.
FRAME_HOLE_RATIO = 0.5
# A frame is drawn square-cornered: ink within this share of its box's size from each corner.
# An ellipse (a 0) leaves about 29% of each side empty at its corners.
FRAME_CORNER_FRACTION = 0.12
# A frame the digit touches: its sides are rows and columns inked across this share
# of the blob's box, no thicker than this share of the box, around at least this
# much other ink (a share of the sides' ink) in a box at least this many pixels.
FRAME_SIDE_COVER = 0.8
FRAME_MAX_PEN = 0.15  # of the box's shorter side (longer side, if its sides are even)
FRAME_EVEN_SIDES = 1.5  # sides within this ratio of each other are drawn with one pen
FRAME_DIGIT_SHARE = 0.2
FRAME_MIN_SIDE = 12
FRAME_STRAY_LINES = 2  # rows or columns of stray ink a frame's box may start with


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


def clean_ink(gray: np.ndarray, rejoin: bool = False) -> np.ndarray | None:
    """(H, W) grayscale in [0, 1] -> ink map in [0, 1] (light ink on black), or None if blank.

    Detects polarity from the paper (the median: ink is a minority of pixels),
    removes uneven lighting and paper texture by subtracting a background
    estimated with a grey-scale opening wider than any stroke, then stretches
    the contrast and zeroes what is left of the paper. With ``rejoin`` (one digit,
    not a number, whose digits must stay apart), pieces of broken strokes are joined.
    """
    from scipy import ndimage

    gray = _reduce(gray)
    gray, sheet = _light_on_dark(gray)
    paper = _paper_level(gray, sheet)
    contrast = _bright_level(gray) - paper
    if contrast < MIN_CONTRAST:
        return None
    # The opening removes everything narrower than the window (the strokes)
    # and keeps the slowly varying paper and shading; smoothing it takes out its blocks.
    window = _background_window(gray, paper, contrast)
    opened = ndimage.grey_opening(gray, size=(window, window))
    background = ndimage.uniform_filter(opened, size=window)
    # Smoothing would blur the sharp edge of a table beside the sheet into a line of
    # "ink" along it; there the opening itself is the background.
    table = _table(opened, sheet, contrast)
    if table.any():
        background = np.where(table, opened, background)
    ink = np.clip(gray - background, 0.0, None)
    peak = _bright_level(ink)
    if peak < MIN_CONTRAST:
        return None
    darkness = ink.copy()  # before stretching: the table and the pen keep their own levels
    # Stretch each stroke to full brightness against its own neighbourhood, so
    # ink in the shadow of a page matches ink in the light; the floor at a
    # share of the global peak keeps empty paper from being stretched into ink.
    local_peak = ndimage.maximum_filter(ink, size=window)
    ink = np.clip(ink / np.maximum(local_peak, LOCAL_PEAK_FLOOR * peak), 0.0, 1.0)
    ink[ink < NOISE_FLOOR] = 0.0
    ink = _outside_the_sheet(ink, darkness, gray, paper, contrast)
    ink = _without_lines(ink)
    ink = _without_table_slivers(ink, darkness, contrast)
    mask = ink > 0.5
    if rejoin:
        bridges = rejoining_bridges(mask)
        ink = np.where(bridges, 1.0, ink).astype(np.float32)
        mask |= bridges
    mask = without_specks(mask)
    if not mask.any():
        return None
    # Keep the anti-aliased edges next to the kept strokes, drop isolated texture.
    near_strokes = ndimage.binary_dilation(mask, iterations=2)
    return np.where(near_strokes, ink, 0.0).astype(np.float32)


def _light_on_dark(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``gray`` as light ink on dark paper, inverted where needed, and where the paper
    is: None where the median is the paper's level, or the sheet (_paper_level).

    Ink is a minority of pixels, so the median is the paper, and the ink is the few
    pixels furthest from it: which side they lie on, not whether the paper is above
    mid-grey, says the polarity, since tinted paper in a shadow can be darker than 0.5 and
    still lighter than the ink on it. Two kinds of picture have light pixels further
    from the median than the dark ink, and light pixels that are no strokes:
    - a sheet photographed on a darker table that is most of the picture: the table is
      the median, the dark ink lies inside the light sheet, and the sheet is the paper;
    - paper lit unevenly, with its light side further from the median than the ink:
      that side is broad where the ink is thin.
    """
    from scipy import ndimage

    median = float(np.median(gray))
    dark_gap = median - (1.0 - _bright_level(1.0 - gray))
    bright_gap = _bright_level(gray) - median
    if dark_gap > bright_gap:
        return 1.0 - gray, None
    if dark_gap < MIN_CONTRAST:
        return gray, None
    dark = gray < median - 0.5 * dark_gap
    # The sheet: the biggest region brighter than the table, which is flat.
    labels, count = ndimage.label(gray > median + SHEET_ABOVE_TABLE * bright_gap)
    if count:
        sizes = _component_sizes(labels)
        biggest = labels == sizes.argmax()
        sheet = _convex_hull(biggest)
        if sheet is not None and _is_sheet(biggest, sheet, dark):
            return 1.0 - gray, sheet
    if dark_gap >= LIT_GAP_SHARE * bright_gap:
        light_depth = ndimage.distance_transform_edt(gray > median + 0.5 * bright_gap).max()
        dark_depth = ndimage.distance_transform_edt(dark).max()
        if light_depth >= LIT_DEPTH * min(gray.shape) and light_depth >= 2 * dark_depth:
            return 1.0 - gray, None
    return gray, None


def _is_sheet(light: np.ndarray, hull: np.ndarray, dark: np.ndarray) -> bool:
    """Whether ``light`` (with convex ``hull``) is a sheet on a darker table, its ink among
    the ``dark`` pixels: most of the dark lies inside it, or, with a table nearly as dark
    as the ink, the dark outside it is mostly the table (on the picture's border) and the
    dark inside is a share of a region too broad to be a stroke of light ink.
    """
    from scipy import ndimage

    inside = (hull & dark).sum()
    if light.sum() > dark.sum() and inside >= SHEET_ENCLOSED * dark.sum():
        return True
    if inside < SHEET_INK_SHARE * hull.sum() or inside > light.sum():
        return False
    if ndimage.distance_transform_edt(light).max() < LIT_DEPTH * min(light.shape):
        return False
    outside, count = ndimage.label(dark & ~hull)
    table = _touching_the_border(outside)
    return bool(count) and table.sum() >= SHEET_ENCLOSED * (outside > 0).sum()


def _paper_level(values: np.ndarray, sheet: np.ndarray | None) -> float:
    """The paper's level in ``values`` (the picture, or its opening): their median, or
    the sheet's where a table around the sheet outweighs it (_light_on_dark)."""
    return float(np.median(values if sheet is None else values[sheet]))


def _table(opened: np.ndarray, sheet: np.ndarray | None, contrast: float) -> np.ndarray:
    """Where the table beside the sheet shows, with TABLE_BLUR px of its edge: a plateau
    of the opening (wider than any stroke) along the picture's border, or nothing.
    ``contrast`` is the ink's above the paper. A band narrower than cleaning's window
    stays ink, and ``_line_pixels`` takes it away."""
    from scipy import ndimage

    plateau = opened - _paper_level(opened, sheet) > TABLE_CONTRAST * contrast
    labels, count = ndimage.label(plateau)
    # A band along a side, or the wedges a sheet seen at an angle leaves, lies along
    # LINE_SPAN of a side; a thick stroke that the window kept (a tight crop leaves no pen
    # to measure) only meets the border where it ends.
    along = np.zeros(count, dtype=bool)
    for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        along |= np.bincount(side, minlength=count + 1)[1:] >= LINE_SPAN * len(side)
    if not along.any():
        return np.zeros_like(plateau)
    table = np.isin(labels, np.flatnonzero(along) + 1)
    return ndimage.binary_dilation(table, iterations=TABLE_BLUR)


def _outside_the_sheet(
    ink: np.ndarray,
    darkness: np.ndarray,
    gray: np.ndarray,
    paper_level: float,
    contrast: float,
) -> np.ndarray:
    """``ink`` without the table around the sheet: each piece of ink outside the convex
    hull of the paper whose darkness (before stretching) differs from the pen's strokes
    inside, with the ink at its level joined to it.

    A band of table narrower than cleaning's window, or the wedges around a sheet seen at
    an angle, is ink to the opening; where the digit touches it, nothing about its shape
    tells it from a stroke, but the table is not the pen's colour.
    """
    from scipy import ndimage

    # Paper is the broad ink-free regions as light as the paper: the table where it is
    # background (wider than cleaning's window) is not, nor a few ink-free pixels in a
    # band of table, which would stretch the hull over the band.
    paper = (ink == 0) & (gray - paper_level <= TABLE_CONTRAST * contrast)
    labels, _ = ndimage.label(paper)
    sizes = _component_sizes(labels)
    paper = np.isin(labels, np.flatnonzero(sizes >= SHEET_PAPER_SHARE * paper.size))
    if paper.all():
        return ink
    inside = _convex_hull(paper)
    if inside is None:  # the paper is one line, or none: no sheet to speak of
        return ink
    outside = (ink > 0) & ~inside
    strokes = (ink > 0.5) & inside
    if not outside.any() or not strokes.any():
        return ink
    pen = float(np.median(darkness[strokes]))
    labels, _ = ndimage.label(outside, structure=np.ones((3, 3)))
    # The table reaches the picture's border, and is no speck: that also bounds the
    # pieces to weigh, each with a pass over the picture, on a textured table.
    sizes = _component_sizes(labels)
    border = _on_the_border(labels)
    pieces = border[sizes[border] >= SHEET_PAPER_SHARE * ink.size]
    if not len(pieces):
        return ink
    levels = np.asarray(ndimage.median(darkness, labels, pieces))
    tolerance = SHEET_LEVEL_DIFFERENCE * contrast
    not_the_pen = np.abs(levels - pen) > tolerance
    if not not_the_pen.any():
        return ink
    off_pen = (ink > 0) & (np.abs(darkness - pen) > tolerance)
    # The table reaches inside the hull where the sheet's edge is not straight (shaded,
    # blurred): ink joined to a piece of it, at its level and not the pen's, goes with it.
    table = np.zeros_like(outside)
    for piece, level in zip(pieces[not_the_pen], levels[not_the_pen], strict=True):
        alike = off_pen & (np.abs(darkness - level) <= tolerance)
        grown, _ = ndimage.label(alike | (labels == piece), structure=np.ones((3, 3)))
        table |= np.isin(grown, np.unique(grown[labels == piece]))
    return np.where(table, 0.0, ink).astype(np.float32)


def _without_table_slivers(ink: np.ndarray, darkness: np.ndarray, contrast: float) -> np.ndarray:
    """``ink`` without pieces apart from the digit, near the picture's border, that are
    lighter than the digit's pen: slivers of table where a sheet's slanted edge meets the
    border, too thin for cleaning's window and cut off from the border by the table's
    broad part, which is background. ``darkness`` is the ink before stretching.
    """
    from scipy import ndimage

    labels, count = ndimage.label(ink > 0.5, structure=np.ones((3, 3)))
    if count <= 1:
        return ink
    sizes = _component_sizes(labels)
    largest = int(sizes.argmax())
    digit = labels == largest
    pen = float(np.median(darkness[digit]))
    near_border = _outer_band(ink.shape)
    pieces = np.flatnonzero(sizes)
    pieces = pieces[pieces != largest]
    levels = np.asarray(ndimage.median(darkness, labels, pieces))
    near = np.asarray(ndimage.mean(near_border, labels, pieces)) >= SHEET_EDGE_SHARE
    slivers = pieces[near & (levels < pen - SHEET_LEVEL_DIFFERENCE * contrast)]
    if not len(slivers):
        return ink
    grown = ndimage.binary_dilation(np.isin(labels, slivers), iterations=2) & ~digit
    return np.where(grown, 0.0, ink).astype(np.float32)


def _outer_band(shape: tuple[int, ...]) -> np.ndarray:
    """The pixels within EDGE_BAND of the shorter side from the picture's border."""
    height, width = shape
    rows, columns = np.ogrid[:height, :width]
    to_border = np.minimum(
        np.minimum(rows, height - 1 - rows), np.minimum(columns, width - 1 - columns)
    )
    return to_border < EDGE_BAND * min(height, width)


def _convex_hull(mask: np.ndarray) -> np.ndarray | None:
    """The pixels inside the convex hull of ``mask`` (its outline's pixels included), or
    None where ``mask`` is empty or one line."""
    from PIL import Image, ImageDraw
    from scipy.spatial import ConvexHull, QhullError

    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) < 2:
        return None
    # The hull of the mask is the hull of each row's first and last pixel.
    first = mask.argmax(axis=1)[rows]
    last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)[rows]
    ends = np.concatenate([np.stack([rows, first], 1), np.stack([rows, last], 1)])
    try:
        hull = ConvexHull(ends.astype(float))
    except QhullError:
        return None
    corners = [(float(ends[index, 1]), float(ends[index, 0])) for index in hull.vertices]
    filled = Image.new("1", (mask.shape[1], mask.shape[0]), 0)
    ImageDraw.Draw(filled).polygon(corners, fill=1, outline=1)
    return np.asarray(filled, dtype=bool)


def _component_sizes(labels: np.ndarray) -> np.ndarray:
    """Pixels in each labelled component, indexed by label; 0 for the background."""
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return sizes


def _on_the_border(labels: np.ndarray) -> np.ndarray:
    """The labels (above 0) of the components that touch the picture's border."""
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return border[border > 0]


def _touching_the_border(labels: np.ndarray) -> np.ndarray:
    """Where the labelled components that touch the picture's border are."""
    return np.isin(labels, _on_the_border(labels))


def _bright_level(values: np.ndarray) -> float:
    """The level the brightest few pixels reach: the 99.9th percentile, or the 30th
    brightest pixel where that is fewer, so that a small digit on a big picture (a
    ballpoint 7, 0.04% of the pixels) still counts, and a speck of dust does not."""
    flat = values.ravel()
    count = min(int(np.ceil(0.001 * flat.size)), BRIGHT_PIXELS)
    return float(np.partition(flat, flat.size - count)[flat.size - count])


def _background_window(gray: np.ndarray, paper: float, contrast: float) -> int:
    """The opening's size: a sixth of the picture, or 1.5 times the widest ink where
    that is wider.

    A felt-tip on a tight crop can be a quarter of the picture wide, and where its
    strokes run together (a 6's loop filled in) wider still; a window narrower than
    the ink takes its middle for paper and leaves it hollow, a ring that reads as an 8.
    The widest ink, not the median pen, sets it: on handwriting's validation pictures
    (200 per kind, a fast model trained on the first 50k), thick markers went from 93.5%
    to 96.0% read right, the paper's edge from 95.5% to 95.0%.
    """
    from scipy import ndimage

    window = max(9, min(gray.shape) // 6)
    rough = gray - paper > 0.5 * contrast
    # The widest ink is the digit's, clear of the picture's border once long straight
    # lines are taken away: a band of table or the border of a screenshot is wide, but
    # it is not a stroke. Depth is measured with thin lines as ink, so that a ruled line
    # crossing a stroke does not narrow it, and bands along the border as paper, so that
    # a stroke lying along the table's edge is not widened by it.
    vertical, horizontal = _long_runs(rough, axis=0), _long_runs(rough, axis=1)
    lines = vertical | horizontal
    labels, _ = ndimage.label(rough & ~lines, structure=np.ones((3, 3)))
    strokes = (labels > 0) & ~_touching_the_border(labels)
    # A straight run clear of the border is a stroke too: a felt-tip 1 spans most of a
    # tight crop, and measured without it the window left its middle hollow, a 0. Each
    # direction apart, or a ruled line across the 1 would join it to the border.
    for runs in (vertical, horizontal):
        run_labels, _ = ndimage.label(runs, structure=np.ones((3, 3)))
        strokes |= runs & ~_touching_the_border(run_labels)
    if not strokes.any():
        return window
    wide, _ = ndimage.label(ndimage.binary_opening(lines, np.ones((BAND_WIDTH, BAND_WIDTH))))
    bands = _touching_the_border(wide)  # a tall felt-tip digit is a wide line too
    widest = 2.0 * float(ndimage.distance_transform_edt(rough & ~bands)[strokes].max())
    # An opening removes what is narrower than its window: half again is enough to spare.
    return int(min(max(window, 1.5 * widest), min(gray.shape) // 2))


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


def _without_lines(ink: np.ndarray) -> np.ndarray:
    """Ink map without the lines that are not the digit's, where the digit survives them.

    Removes long straight lines (ruled and squared paper, a plot's axes, the
    border of a screenshot, the edge of a sheet) and closed frames drawn around
    the digit. Where a line crosses a stroke, the stroke is kept. If nothing
    but lines would be left, the ink is returned as it was: a lone tall 1 that
    fills the picture is a digit, not a line.
    """
    # Lines are found on all the ink, faint included: next to a stroke a pale
    # printed line is stretched against the stroke's brightness and falls to
    # about half, so at the digit's threshold it would break into short pieces.
    present = ink > 0
    # The sheet's edge goes first and whole: the lines along the border that are part of
    # it would otherwise cut it into pieces that no longer run along the border.
    rest = present & ~_sheet_edge_pixels(present)
    rest &= ~_line_pixels(np.where(rest, ink, 0.0))
    rest &= ~_sheet_edge_pixels(rest)
    rest &= ~_frame_pixels(rest)
    if not (rest & (ink > 0.5)).any() or rest.sum() == present.sum():
        return ink
    return np.where(rest, ink, 0.0).astype(np.float32)


def _line_pixels(ink: np.ndarray) -> np.ndarray:
    """Pixels of long straight lines across the picture, minus where they cross strokes.

    Lines are told from strokes by their thickness: the ink they hold per pixel of
    length (a pale printed line holds less than its blurred width), against the pen of
    the digit's full-strength strokes.
    """
    from scipy import ndimage

    mask = ink > 0
    horizontal = _long_runs(mask, axis=1)
    vertical = _long_runs(mask, axis=0)
    # Again across gaps, each direction without the other's lines, whose crossings
    # would otherwise bridge every row of squared paper.
    horizontal |= _long_runs(mask & ~vertical, axis=1, gap=LINE_GAP)
    vertical |= _long_runs(mask & ~horizontal, axis=0, gap=LINE_GAP)
    lines = np.zeros_like(mask)
    if not (horizontal.any() or vertical.any()):
        return lines
    strokes = mask & ~horizontal & ~vertical
    strong = strokes & (ink > 0.5)
    # Without full-strength ink outside the runs (a lone tall 1), all that is left.
    pen = stroke_width(strong if strong.any() else strokes) if strokes.any() else np.inf
    for runs, axis in ((horizontal, 1), (vertical, 0)):
        labels, _ = ndimage.label(runs, structure=np.ones((3, 3)))
        side = mask.shape[1 - axis]  # the picture's extent across the lines
        edge = EDGE_BAND * side
        for index, box in enumerate(ndimage.find_objects(labels)):
            band = labels[box] == index + 1
            length = box[axis].stop - box[axis].start
            if band.any(axis=1 - axis).mean() < LINE_COVER:
                continue  # paper grain in a row, bridged from speck to speck
            thickness = float(ink[box][band].sum()) / length
            if thickness <= THIN_LINE_RATIO * pen:
                lines[box] |= band  # printed: thinner than any written stroke
                continue
            across = box[1 - axis]
            along_edge = across.stop <= edge or across.start >= side - edge
            # At the edge, a line that stands apart from the digit (a sheet's edge, a
            # frame's side) goes, and so does a band much thicker than the pen; a 7's
            # bar or a 2's base drawn to the edge, even off the drawing page's canvas
            # (clipped to its first row), joins the rest of its digit and stays.
            if along_edge and (
                thickness >= EDGE_BAND_PEN_RATIO * pen or not _touches(band, box, strokes)
            ):
                lines[box] |= band
    lines |= _line_pieces(mask & ~lines, lines & horizontal, lines & vertical)
    # Where a line crosses a stroke, the stroke continues on both sides of it:
    # bridge the line's width across (vertically for rows, sideways for columns).
    for axis in (1, 0):
        oriented = lines & (horizontal if axis == 1 else vertical)
        if not oriented.any():
            continue
        reach = 2 * _widest_band(oriented, axis) + 3
        structure = np.ones((reach, 1) if axis == 1 else (1, reach), dtype=bool)
        bridged = ndimage.binary_closing(mask & ~lines, structure=structure)
        lines &= ~(oriented & bridged)
    return lines


def _line_pieces(mask: np.ndarray, horizontal: np.ndarray, vertical: np.ndarray) -> np.ndarray:
    """Pieces of ink lying wholly within the rows of a removed horizontal line (or the
    columns of a vertical one): its end where it fades too much to be found, cut off
    from it by a stroke. A stroke that crosses the line reaches outside its rows."""
    from scipy import ndimage

    if not (horizontal.any() or vertical.any()):
        return np.zeros_like(mask)
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    piece_boxes = ndimage.find_objects(labels)
    within = np.zeros(len(piece_boxes), dtype=bool)
    for lines, axis in ((horizontal, 1), (vertical, 0)):
        line_boxes = ndimage.find_objects(ndimage.label(lines, structure=np.ones((3, 3)))[0])
        if not line_boxes:
            continue
        # Each piece's extent across the lines, against each line's, one pixel wider.
        starts = np.array([box[1 - axis].start for box in piece_boxes])
        stops = np.array([box[1 - axis].stop for box in piece_boxes])
        lows = np.array([box[1 - axis].start - 1 for box in line_boxes])
        highs = np.array([box[1 - axis].stop + 1 for box in line_boxes])
        within |= ((starts[:, None] >= lows) & (stops[:, None] <= highs)).any(axis=1)
    return np.isin(labels, np.flatnonzero(within) + 1)


def _touches(band: np.ndarray, box: tuple[slice, ...], other: np.ndarray) -> bool:
    """Whether ``band`` (a component inside ``box``) lies within 2 px of ``other`` ink."""
    from scipy import ndimage

    rows, columns = box
    grown = (
        slice(max(rows.start - 2, 0), rows.stop + 2),
        slice(max(columns.start - 2, 0), columns.stop + 2),
    )
    placed = np.zeros(other.shape, dtype=bool)
    placed[box] = band
    near = ndimage.binary_dilation(placed[grown], iterations=2)
    return bool((near & other[grown]).any())


def _long_runs(mask: np.ndarray, axis: int, gap: float = 0.0) -> np.ndarray:
    """Ink in straight runs along ``axis`` at least LINE_SPAN of the picture long, across
    breaks up to ``gap`` of the picture."""
    from scipy import ndimage

    length = int(np.ceil(LINE_SPAN * mask.shape[axis])) | 1  # odd, so the opening is symmetric
    # A line may stray a pixel from its row: measure runs on the ink widened across them.
    widened = ndimage.maximum_filter1d(mask, size=2 * LINE_WANDER + 1, axis=1 - axis)
    if gap:
        bridge = max(3, int(gap * mask.shape[axis])) | 1
        widened = ndimage.minimum_filter1d(
            ndimage.maximum_filter1d(widened, bridge, axis=axis), bridge, axis=axis
        )
    # An opening with a line LINE_SPAN long; outside the picture there is no ink.
    eroded = ndimage.minimum_filter1d(widened, length, axis=axis, mode="constant", cval=0)
    return ndimage.maximum_filter1d(eroded, length, axis=axis) & mask


def _widest_band(lines: np.ndarray, axis: int) -> int:
    """The most line pixels in one column of horizontal lines (or row of vertical ones)."""
    from scipy import ndimage

    labels, _ = ndimage.label(lines, structure=np.ones((3, 3)))
    widest = 1
    for index, box in enumerate(ndimage.find_objects(labels)):
        widest = max(widest, int((labels[box] == index + 1).sum(axis=1 - axis).max()))
    return widest


def _sheet_edge_pixels(mask: np.ndarray) -> np.ndarray:
    """The table around a sheet photographed at an angle: ink that runs along the
    picture's border, not straight enough for ``_line_pixels``.

    A component is the sheet's edge when it touches the border, spans LINE_SPAN of the
    picture, and lies almost all (SHEET_EDGE_SHARE) within the outer EDGE_BAND; a digit
    that fills the picture has most of its ink inside.
    """
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    edges = np.zeros_like(mask)
    if count <= 1:
        return edges
    height, width = mask.shape
    outer = _outer_band(mask.shape)
    for index, box in enumerate(ndimage.find_objects(labels)):
        row_span, column_span = box
        long = (
            row_span.stop - row_span.start >= LINE_SPAN * height
            or column_span.stop - column_span.start >= LINE_SPAN * width
        )
        touches = (
            row_span.start == 0
            or column_span.start == 0
            or row_span.stop == height
            or column_span.stop == width
        )
        if not (long and touches):
            continue
        component = labels[box] == index + 1
        if (component & outer[box]).sum() >= SHEET_EDGE_SHARE * component.sum():
            edges[box] |= component
    return edges


def _frame_pixels(mask: np.ndarray) -> np.ndarray:
    """Closed frames drawn around the digit: rings with a large hole that holds other ink."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    frames = np.zeros_like(mask)
    if count == 0:
        return frames
    sizes = np.bincount(labels.ravel())[1:]
    for index, box in enumerate(ndimage.find_objects(labels)):
        area = int(sizes[index])
        if area < MIN_COMPONENT_FRACTION * sizes.max():
            continue  # a speck of paper grain, not a frame: skip its hole filling
        ring = labels[box] == index + 1
        hole = ndimage.binary_fill_holes(ring) & ~ring
        if hole.sum() >= FRAME_HOLE_RATIO * area:
            held = int((mask[box] & hole).sum())
            if held >= MIN_COMPONENT_FRACTION * area and _has_corners(ring):
                frames[box] |= ring
                continue
        frames[box] |= _touching_frame(ring)
    return frames


def _touching_frame(blob: np.ndarray) -> np.ndarray:
    """The sides of a frame that the digit inside it touches (so they are one blob).

    A frame's four sides are rows and columns inked across nearly all of the
    blob's box, at its four edges; what is left once they are taken away must
    be a digit's worth of ink, not the stray pixels a boxy 0 or a filled square
    would leave. Returns the sides' pixels, or none.
    """
    nothing = np.zeros_like(blob)
    height, width = blob.shape
    if min(height, width) < FRAME_MIN_SIDE:
        return nothing
    rows = blob.mean(axis=1) >= FRAME_SIDE_COVER
    columns = blob.mean(axis=0) >= FRAME_SIDE_COVER
    sides = [_run_from_start(rows), _run_from_start(rows[::-1])]
    sides += [_run_from_start(columns), _run_from_start(columns[::-1])]
    # The four sides are drawn with one pen: the thinnest side is its width. A side
    # that looks thicker has a stroke of the digit lying along it (a 2's base), kept.
    pen = min(sides)
    # A frame around a 1 is tall and narrow: its pen is a share of its longer side, and
    # there must be room inside it. Only where its sides are one pen, but for one that a
    # stroke runs along: a boxy 8 drawn with a chisel marker has two thicker sides.
    even = sorted(sides)[2] <= FRAME_EVEN_SIDES * pen
    limit = FRAME_MAX_PEN * (max(height, width) if even else min(height, width))
    if pen == 0 or pen > limit or 2 * pen + 2 >= min(height, width):
        return nothing
    # Drawn frames have square corners, inked pen by pen; the round tops and
    # bottoms of a small 8 or 9 (in a strip of digits) leave theirs empty.
    corners = (blob[:pen, :pen], blob[:pen, -pen:], blob[-pen:, :pen], blob[-pen:, -pen:])
    if min(corner.mean() for corner in corners) < FRAME_SIDE_COVER:
        return nothing
    width_taken = pen + 1  # one pixel more: a drawn side's edge is blurred
    band = np.zeros_like(blob)
    band[:width_taken] = band[-width_taken:] = True
    band[:, :width_taken] = band[:, -width_taken:] = True
    band &= blob
    inside = blob & ~band
    if inside.sum() < FRAME_DIGIT_SHARE * band.sum():
        return nothing
    return band


def _run_from_start(flags: np.ndarray) -> int:
    """How far ``flags`` run true from the start, over up to FRAME_STRAY_LINES false first.

    A stray pixel of the digit or of blur can stick out past a frame's side and
    start the box a row or two early; those rows count as the side's.
    """
    first = next(
        (index for index in range(FRAME_STRAY_LINES + 1) if flags[index : index + 1].any()), None
    )
    if first is None:
        return 0
    false = np.flatnonzero(~flags[first:])
    return first + (int(false[0]) if len(false) else len(flags) - first)


def _has_corners(ring: np.ndarray) -> bool:
    """Whether a closed ring fills the four corners of its box, as a drawn frame does.

    A 0 (slashed or dotted) is round: its box's corners are empty, so it is a
    digit with something inside it, not a frame around a digit.
    """
    height, width = ring.shape
    patch_rows = max(1, round(FRAME_CORNER_FRACTION * height))
    patch_columns = max(1, round(FRAME_CORNER_FRACTION * width))
    corners = (
        ring[:patch_rows, :patch_columns],
        ring[:patch_rows, -patch_columns:],
        ring[-patch_rows:, :patch_columns],
        ring[-patch_rows:, -patch_columns:],
    )
    return all(corner.any() for corner in corners)


def rejoining_bridges(mask: np.ndarray) -> np.ndarray:
    """Strokes, one pen wide, that join pieces of a broken stroke across gaps of at most
    BRIDGE_PENS pen widths, from each piece's nearest point to the rest of the digit.

    Pieces are joined one at a time, nearest first; grains much smaller than the largest
    piece are never joined, and a digit drawn in one stroke gets nothing.
    """
    from PIL import Image, ImageDraw
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    bridges = np.zeros_like(mask)
    if count <= 1:
        return bridges
    sizes = _component_sizes(labels)
    pieces = [int(label) for label in np.flatnonzero(sizes >= MIN_COMPONENT_FRACTION * sizes.max())]
    pen = stroke_width(mask)
    largest = ndimage.find_objects(labels)[int(np.argmax(sizes)) - 1]
    size = max(part.stop - part.start for part in largest)  # the digit is at least this big
    if pen * BOX_SIZE / size >= BRIDGE_MAX_WIDTH:
        # Pens skip when they are thin; a normal pen's separate pieces are meant (a 5's
        # bar, a 7's crossbar) or are not the digit's (a sheet's edge beside it).
        return bridges
    joined = labels == int(np.argmax(sizes))  # grows as pieces join it
    pieces.remove(int(np.argmax(sizes)))
    drawing = Image.new("1", (mask.shape[1], mask.shape[0]), 0)
    draw = ImageDraw.Draw(drawing)
    while pieces:
        distance, (near_rows, near_columns) = ndimage.distance_transform_edt(
            ~joined, return_indices=True
        )
        gaps = [float(distance[labels == label].min()) for label in pieces]
        nearest = int(np.argmin(gaps))
        if gaps[nearest] > BRIDGE_PENS * pen:
            break
        label = pieces.pop(nearest)
        piece = labels == label
        end = np.unravel_index(np.argmin(np.where(piece, distance, np.inf)), mask.shape)
        start = (near_rows[end], near_columns[end])
        draw.line(
            [(int(start[1]), int(start[0])), (int(end[1]), int(end[0]))],
            fill=1,
            width=max(1, round(pen)),
        )
        joined |= piece
    bridges = np.asarray(drawing, dtype=bool) & ~mask
    return bridges


def without_specks(mask: np.ndarray) -> np.ndarray:
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


def _pen_width(ink: np.ndarray) -> float:
    """Stroke width in pixels, for deciding to thin: the larger of ``stroke_width`` and
    twice the median depth of the strokes' middle line (the distance transform's ridge).

    Twice area over outline counts a short fat stroke's ends as outline (a felt-tip 1
    reads a fifth thinner than it is); the ridge's depth does not.
    """
    from scipy import ndimage

    mask = ink > 0.5
    depth = ndimage.distance_transform_edt(mask)
    ridge = mask & (depth >= ndimage.maximum_filter(depth, size=3))
    # A ridge pixel d from the paper sits in a stroke 2d - 1 pixels wide.
    middle = 2.0 * float(np.median(depth[ridge])) - 1.0 if ridge.any() else 0.0
    return max(stroke_width(ink), middle)


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
    # widths are measured on the whole map and the map is cropped once, after.
    # Thinning shrinks the box too: measure again, and thin again if still thick.
    for _ in range(3):
        pen = _pen_width(ink)
        if pen * scale <= THICK_STROKE_WIDTH:
            break
        thinned = _thinned(ink, pen, BOX_SIZE / scale)
        if thinned is ink:
            break
        ink = thinned
        rows = np.flatnonzero(ink.any(axis=1))
        columns = np.flatnonzero(ink.any(axis=0))
        scale = BOX_SIZE / max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
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
    resized = Image.fromarray(ink.astype(np.float32), mode="F").resize(new_size, resample)
    boxed = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)

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


def _thinned(ink: np.ndarray, width: float, longer_side: float) -> np.ndarray:
    """Strokes ``width`` px wide eroded so that, once the digit's box (``longer_side`` px,
    which shrinks with them) fits 20x20, they are MNIST_STROKE_WIDTH wide.

    Each side of a stroke loses ``radius``: the width becomes ``width - 2 radius`` and
    the box ``longer_side - 2 radius``. Erosion is a distance threshold, with a one-pixel
    soft edge; it stops short of cutting the digit into more pieces than it had.
    """
    from scipy import ndimage

    share = MNIST_STROKE_WIDTH / BOX_SIZE  # width / box side in MNIST
    radius = (width - share * longer_side) / (2 * (1 - share))
    mask = ink > 0.5
    depth = ndimage.distance_transform_edt(mask)
    pieces = ndimage.label(mask, structure=np.ones((3, 3)))[1]
    for _ in range(3):
        thinned = np.clip(depth - radius, 0.0, 1.0).astype(np.float32)
        kept = thinned > 0.5
        if kept.any() and ndimage.label(kept, structure=np.ones((3, 3)))[1] <= pieces:
            return thinned
        radius /= 2  # a stroke thinner than the rest would break: erode less
    return ink


def _clamped_shift(shift: int, start: int, length: int) -> int:
    """Limit a shift so the digit never wraps around the canvas edge."""
    return int(np.clip(shift, -start, IMAGE_SIZE - (start + length)))


def _disc(size: int) -> np.ndarray:
    radius = (size - 1) / 2
    grid = np.arange(size) - radius
    return (grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2 + 0.5


def prepare_digit(gray: np.ndarray) -> PreparedDigit:
    """A grayscale picture of one digit -> the 28x28 MNIST-style image, or "no digit found"."""
    ink = clean_ink(gray, rejoin=True)
    if ink is None:
        return PreparedDigit(image=None, reason=NO_DIGIT)
    return PreparedDigit(image=fit_digit(_closer_look(gray, ink)))


def _closer_look(gray: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The ink of a digit small in a big picture, cleaned again from the picture around it.

    Cleaning reduces a picture to WORKING_SIZE, where a digit a tenth of a big photo is
    ~30 px and a fine pen under a pixel; the decoded picture holds several times that.
    """
    longer = max(gray.shape)
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    size = max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    if longer <= WORKING_SIZE or size > SMALL_DIGIT_FRACTION * max(ink.shape):
        return ink
    scale = longer / max(ink.shape)  # decoded pixels per reduced pixel
    margin = size  # paper around the digit, for the background estimate
    top = max(0, int((rows[0] - margin) * scale))
    bottom = min(gray.shape[0], int((rows[-1] + 1 + margin) * scale))
    left = max(0, int((columns[0] - margin) * scale))
    right = min(gray.shape[1], int((columns[-1] + 1 + margin) * scale))
    closer = clean_ink(gray[top:bottom, left:right], rejoin=True)
    return ink if closer is None else closer


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
