"""Pictures that are not digits: dots, lines, letters, symbols, shapes and scribbles.

They are drawn the way the drawing page draws (dark ink on a white 200x200
canvas, the page's pen widths) and then made MNIST-like by
``preprocess.prepare_digit``, exactly as a person's picture would be. They
teach and measure ``rejection``'s "not a digit".

Two families never share a font, a letter, a symbol or a random seed:
``TRAINING`` (DejaVu fonts) is what a detector may learn from and choose its
threshold on; ``HELD_OUT`` (STIX fonts) only measures it.
Both families' fonts ship with Matplotlib, so every machine draws the same
pictures. Glyphs that are digits in someone's hand (O, I, l, S, Z, B, b, g, q,
a circle, an upright line) are in neither: refusing them would refuse real digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mnist_cnn.preprocess import prepare_digit

CANVAS_SIDE = 200  # the page sends its 280-pixel canvas downscaled to 200 (static/app.js)
# The page's pens (8, 18 and 28 of its 280 pixels), at 200 pixels.
PEN_WIDTHS = (6, 13, 20)
KINDS = ("dot", "line", "letter", "symbol", "shape", "scribble")


@dataclass(frozen=True)
class Family:
    """A set of fonts, glyphs and seeds that non-digit pictures are drawn from."""

    name: str
    fonts: tuple[str, ...]  # file names in Matplotlib's bundled fonts
    letters: str
    symbols: str
    seed_offset: int  # added to every seed, so families never share random draws


TRAINING = Family(
    name="training",
    fonts=(
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSans-Oblique.ttf",
        "DejaVuSerif.ttf",
        "DejaVuSansMono.ttf",
    ),
    # Latin, Cyrillic and Greek letters that no one writes for a digit (no З for 3,
    # no б for 6, no Ч for 4): shapes the held-out Latin letters are not among.
    letters="CEHKMPRTVXYcehkmrtvxyΣΩΦДЖЛФЦШЩЮЯджлпфцшщюяαγελμπ",
    symbols="+#%&@?*^{}€¶√",
    seed_offset=0,
)
HELD_OUT = Family(
    name="held-out",
    fonts=("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf"),
    letters="AFLNUWadfnpuwΔΠΨ",
    symbols="$=<>~÷",
    seed_offset=1_000_003,
)


@dataclass(frozen=True)
class NonDigits:
    """MNIST-like images of non-digits, and what each one is."""

    images: np.ndarray  # (N, 28, 28) uint8, light ink on black, as prepare_digit makes them
    kinds: np.ndarray  # (N,) str, one of KINDS
    blank: int  # pictures that preprocessing found no ink in (a line taken for a ruling)


def draw_non_digit(kind: str, family: Family, seed: int) -> np.ndarray:
    """One (200, 200) float32 picture in [0, 1], dark ink on white, of the given kind."""
    from PIL import Image, ImageDraw

    random = np.random.default_rng(seed + family.seed_offset)
    picture = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 255)
    draw = ImageDraw.Draw(picture)
    pen = int(random.choice(PEN_WIDTHS) * random.uniform(0.8, 1.2))
    if kind == "dot":
        radius = random.uniform(pen / 2, 14)
        centre = random.uniform(40, 160, size=2)
        draw.ellipse([*(centre - radius), *(centre + radius)], fill=0)
    elif kind == "line":
        # Within 45 degrees of horizontal: an upright line is a 1.
        angle = random.uniform(-np.pi / 4, np.pi / 4)
        length = random.uniform(40, 150)
        centre = random.uniform(60, 140, size=2)
        offset = 0.5 * length * np.array([np.cos(angle), np.sin(angle)])
        _polyline(draw, [centre - offset, centre + offset], pen)
    elif kind in ("letter", "symbol"):
        glyphs = family.letters if kind == "letter" else family.symbols
        picture = _glyph(str(random.choice(list(glyphs))), family, random)
    elif kind == "shape":
        _shape(draw, random, pen)
    elif kind == "scribble":
        _scribble(draw, random, pen)
    else:
        raise ValueError(f"unknown non-digit kind {kind!r}; choose from {', '.join(KINDS)}")
    return np.asarray(picture, dtype=np.float32) / 255.0


def make_non_digits(family: Family, count: int, start_seed: int = 0) -> NonDigits:
    """``count`` pictures, the kinds in turn, each through ``prepare_digit``.

    Seeds ``start_seed`` to ``start_seed + count - 1``: two calls with
    different ranges share no picture. Pictures in which preprocessing finds
    nothing (a long line is taken for a ruling) are counted in ``blank``:
    they are already answered "no digit found".
    """
    images, kinds, blank = [], [], 0
    for seed in range(start_seed, start_seed + count):
        kind = KINDS[seed % len(KINDS)]
        prepared = prepare_digit(draw_non_digit(kind, family, seed))
        if prepared.image is None:
            blank += 1
            continue
        images.append(prepared.image)
        kinds.append(kind)
    return NonDigits(
        images=np.stack(images) if images else np.zeros((0, 28, 28), np.uint8),
        kinds=np.array(kinds, dtype=str),
        blank=blank,
    )


def draw_digit_with_pen(image: np.ndarray, seed: int) -> np.ndarray:
    """An MNIST digit (28, 28) uint8 redrawn as the page draws: even, dark ink on white.

    MNIST's strokes fade at their edges and vary in width; a pen on the page
    gives crisp strokes of one width, as every non-digit here has. A detector
    that sees only MNIST as digits could learn "crisp means not a digit", so
    these are digits with a non-digit's look. Returns (200, 200) float32 in [0, 1].
    """
    from PIL import Image
    from scipy import ndimage

    random = np.random.default_rng(seed)
    side = int(random.integers(90, 180))
    ink = Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC)
    mask = np.asarray(ink, dtype=np.float32) > 127
    # Thinner or thicker, as the page's pens are: a few pixels at 200.
    change = int(random.integers(-3, 5))
    if change > 0:
        mask = ndimage.binary_dilation(mask, iterations=change)
    elif change < 0:
        thinned = ndimage.binary_erosion(mask, iterations=-change)
        mask = thinned if thinned.sum() > 0.3 * mask.sum() else mask
    picture = np.ones((CANVAS_SIDE, CANVAS_SIDE), dtype=np.float32)
    top, left = random.integers(0, CANVAS_SIDE - side + 1, size=2)
    picture[top : top + side, left : left + side][mask] = 0.0
    return picture


def _polyline(draw, points, pen: int) -> None:
    """A pen stroke through the points, round at its joints and ends, as the page draws."""
    flat = [(float(x), float(y)) for x, y in points]
    draw.line(flat, fill=0, width=pen, joint="curve")
    for x, y in (flat[0], flat[-1]):
        draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=0)


def _shape(draw, random: np.random.Generator, pen: int) -> None:
    """A triangle, square, star, cross, arrow or zigzag, drawn with the pen."""
    centre = random.uniform(80, 120, size=2)
    size = random.uniform(45, 85)
    turn = random.uniform(-0.3, 0.3)
    choice = int(random.integers(6))

    def at(angles: np.ndarray, radii: np.ndarray) -> list[np.ndarray]:
        return [
            centre + radius * np.array([np.cos(angle + turn), np.sin(angle + turn)])
            for angle, radius in zip(angles, radii, strict=True)
        ]

    if choice in (0, 1):  # triangle, square
        corners = 3 if choice == 0 else 4
        angles = np.arange(corners + 1) * 2 * np.pi / corners - np.pi / 2
        _polyline(draw, at(angles, np.full(corners + 1, size)), pen)
    elif choice == 2:  # five-pointed star
        angles = np.arange(11) * np.pi / 5 - np.pi / 2
        _polyline(draw, at(angles, np.where(np.arange(11) % 2, 0.45 * size, size)), pen)
    elif choice == 3:  # a cross of two diagonals
        for angle in (np.pi / 4, 3 * np.pi / 4):
            _polyline(draw, at(np.array([angle, angle + np.pi]), np.full(2, size)), pen)
    elif choice == 4:  # an arrow to the right
        tip = centre + np.array([size, 0.0])
        _polyline(draw, [centre - np.array([size, 0.0]), tip], pen)
        _polyline(
            draw,
            [tip + np.array([-0.5, -0.4]) * size, tip, tip + np.array([-0.5, 0.4]) * size],
            pen,
        )
    else:  # a zigzag
        count = int(random.integers(4, 8))
        xs = np.linspace(-size, size, count)
        ys = np.where(np.arange(count) % 2, -0.4, 0.4) * size
        _polyline(draw, [centre + np.array([x, y]) for x, y in zip(xs, ys, strict=True)], pen)


def _scribble(draw, random: np.random.Generator, pen: int) -> None:
    """A tangle: a random walk of many short turns, as when ink is scratched out."""
    position = random.uniform(70, 130, size=2)
    heading = random.uniform(0, 2 * np.pi)
    points = [position.copy()]
    for _ in range(int(random.integers(12, 30))):
        heading += random.normal(0, 1.6)
        position = np.clip(position + random.uniform(15, 45) * np.array(
            [np.cos(heading), np.sin(heading)]), 20, 180)  # fmt: skip
        points.append(position.copy())
    _polyline(draw, points, pen)


def _glyph(glyph: str, family: Family, random: np.random.Generator):
    """The glyph in one of the family's fonts, at a random size, place and slant."""
    from PIL import Image, ImageDraw

    font_name = str(random.choice(list(family.fonts)))
    font = _font(font_name, int(random.integers(90, 170)))
    layer = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 0)
    ImageDraw.Draw(layer).text(
        (CANVAS_SIDE / 2, CANVAS_SIDE / 2), glyph, fill=255, font=font, anchor="mm"
    )
    layer = layer.rotate(float(random.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    shift = random.integers(-25, 26, size=2)
    layer = layer.transform(
        layer.size, Image.Transform.AFFINE, (1, 0, -int(shift[0]), 0, 1, -int(shift[1]))
    )
    return Image.eval(layer, lambda value: 255 - value)


@cache
def _font(file_name: str, size: int):
    from matplotlib import get_data_path
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / file_name), size)
