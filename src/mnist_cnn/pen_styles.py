"""Training digits redrawn with the pens people use, then prepared as their pictures are.

``predict`` reads a person's picture through ``preprocess.prepare_digit``, which thins a
felt-tip marker's strokes to MNIST's width and rejoins a pen that skips. What comes out
is MNIST-like but not MNIST: a thick marker fills a loop that the thinning cannot open
again, and a rejoined gap is a straight bridge. A net that has only seen MNIST reads those
worse (benchmarks/handwriting.py). ``redrawn_with_pens`` replaces a share of the training
digits with the same digits drawn with such pens and passed through the last steps of that
preparation (rejoining, dropping specks, fitting), so the net learns what prepared
pictures look like. A digit the skipping pen wore to a few dots keeps its MNIST form.

The drawing here is deliberately not the handwriting benchmark's: the benchmark redraws
a digit's centre line with a round pen; here the MNIST stroke itself is widened by an
oval, slanted nib (a chisel-tip marker), or worn down to a thin band along its middle
and cut across by straight gaps (a pen that skips), so that the benchmark does not test
the net on the very pictures it trained on. (The marker's width, a share of the digit's
height, is what felt-tip markers are, and so overlaps the benchmark's range.)
"""

from __future__ import annotations

import numpy as np

from mnist_cnn.preprocess import fit_digit, rejoining_bridges, without_specks

UPSCALE = 3  # digits are redrawn at 3x MNIST's size, where a pen has room to vary
# A marker's nib is this share of the digit's height (MNIST's pen: about 13%).
MARKER_NIB = (0.14, 0.30)  # (the benchmark's thick marker: 0.18-0.30)
NIB_ASPECT = (1.0, 2.0)  # a chisel tip is up to twice as long as it is wide
THIN_PEN = (0.03, 0.08)  # a thin pen is this share of the digit's height
# Gaps cut into a thin pen's strokes, inclusive; each through a point drawn on its own,
# so two gaps may fall on one point.
SKIPPING_PEN_GAPS = (1, 4)
GAP_PENS = (1.0, 2.5)  # each gap's width, in pens
MARKER_SHARE = 0.5  # of the redrawn digits, the rest drawn with a pen that skips
# A redrawn digit with fewer full-ink pixels than this at 28x28 (99.9% of MNIST's training
# digits have more: 28 px at the 0.1th percentile, 101 at the median) has been worn to a
# few dots, no longer the digit its label says: it keeps its MNIST form.
MIN_INK_PIXELS = 30


def redrawn_with_pens(images: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A copy of ``images`` ((N, 28, 28) uint8, MNIST's) with ``share`` of them, picked at
    random, drawn with a thick marker or a thin pen that skips, then made MNIST-like as a
    picture of them would be: broken strokes rejoined, strokes thinned or thickened to
    MNIST's width, the digit fitted to 20x20 (``preprocess.rejoining_bridges`` and
    ``preprocess.without_specks`` and ``preprocess.fit_digit``, the steps of
    ``prepare_digit`` after the paper is gone).

    The same ``seed`` redraws the same digits the same way.
    """
    redrawn = np.array(images, copy=True)
    if share <= 0 or not len(images):
        return redrawn
    generator = np.random.default_rng(seed)
    count = round(share * len(images))
    for index in generator.choice(len(images), size=count, replace=False):
        ink = _redrawn_ink(images[index], generator)
        if ink is None:
            continue  # the pen wore the digit away: it keeps its MNIST form
        prepared = fit_digit(ink)
        if np.count_nonzero(prepared > 127) >= MIN_INK_PIXELS:
            redrawn[index] = prepared
    return redrawn


def _redrawn_ink(digit: np.ndarray, generator: np.random.Generator) -> np.ndarray | None:
    """One digit's ink in [0, 1] at UPSCALE times its size, with a marker or a skipping pen."""
    from scipy import ndimage

    shape = _upscaled_shape(digit)
    if not shape.any():
        return None
    if generator.random() < MARKER_SHARE:
        shape = _marker(shape, generator)
    else:
        skipped = _skipping(shape, generator)
        if not skipped.any():
            return None
        # As prepare_digit does with a photo's strokes: rejoin, then drop specks.
        shape = without_specks(skipped | rejoining_bridges(skipped))
    return ndimage.gaussian_filter(shape.astype(np.float32), 0.7)  # a soft, anti-aliased edge


def _upscaled_shape(digit: np.ndarray) -> np.ndarray:
    """Where the (28, 28) digit's ink is, at UPSCALE times its size, with smooth edges."""
    from PIL import Image
    from scipy import ndimage

    size = digit.shape[0] * UPSCALE
    large = Image.fromarray(digit.astype(np.float32) / 255, mode="F").resize(
        (size, size), Image.Resampling.BICUBIC
    )
    # Smoothing takes out the steps that MNIST's pixels leave along the strokes' edges.
    return ndimage.gaussian_filter(np.asarray(large), UPSCALE / 2.5) > 0.5


def _height(shape: np.ndarray) -> int:
    """Rows from the ink's top to its bottom: pens are sized by it."""
    rows = np.flatnonzero(shape.any(axis=1))
    return int(rows[-1] - rows[0] + 1)


def _marker(shape: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """The strokes widened by a marker's oval nib, MARKER_NIB of the digit's height long."""
    from scipy import ndimage

    nib = _nib(_height(shape) * generator.uniform(*MARKER_NIB), generator)
    return ndimage.binary_dilation(np.pad(shape, nib.shape[0]), structure=nib)


def _nib(length: float, generator: np.random.Generator) -> np.ndarray:
    """An oval footprint ``length`` px long, narrower by up to NIB_ASPECT, at any angle."""
    width = length / generator.uniform(*NIB_ASPECT)
    angle = generator.uniform(0.0, np.pi)
    radius = int(np.ceil(length / 2))
    rows, columns = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    along = columns * np.cos(angle) + rows * np.sin(angle)
    across = -columns * np.sin(angle) + rows * np.cos(angle)
    return (along / (length / 2)) ** 2 + (across / (width / 2)) ** 2 <= 1.0


def _skipping(shape: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """A thin pen that skips: the strokes worn down to a band THIN_PEN of the digit's
    height wide along their middle, then cut across by straight gaps."""
    from scipy import ndimage

    pen = max(1.5, _height(shape) * generator.uniform(*THIN_PEN))
    depth = ndimage.distance_transform_edt(shape)
    # Each pixel's stroke is as deep as the deepest pixel near it (within a typical
    # stroke's reach); the pen keeps the pixels within half its width of that depth, a
    # band along the stroke's middle. Thin parts of a stroke may vanish: the pen skipped.
    ridge = shape & (depth >= ndimage.maximum_filter(depth, size=3))
    reach = 2 * int(np.ceil(np.median(depth[ridge]))) + 1
    thin = shape & (depth >= ndimage.maximum_filter(depth, size=reach) - pen / 2)
    points = np.argwhere(thin)
    grid_rows, grid_columns = np.mgrid[: shape.shape[0], : shape.shape[1]].astype(np.float32)
    gaps = int(generator.integers(SKIPPING_PEN_GAPS[0], SKIPPING_PEN_GAPS[1] + 1))
    for row, column in points[generator.choice(len(points), size=min(gaps, len(points)))]:
        angle = generator.uniform(0.0, np.pi)
        width = pen * generator.uniform(*GAP_PENS)
        # A straight band through (row, column), ``width`` px wide, cut only near that
        # point (within three of its widths): a skip is short.
        across = np.abs((grid_columns - column) * np.sin(angle) - (grid_rows - row) * np.cos(angle))
        near = (grid_columns - column) ** 2 + (grid_rows - row) ** 2 <= (3 * width) ** 2
        thin &= ~((across <= width / 2) & near)
    return thin
