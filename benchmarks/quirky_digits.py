"""A simulated user whose handwriting has consistent quirks, drawn as the drawing page draws.

The user writes sevens with a bar through the stem and a hook at the top left,
fours open at the top, and ones with a long flag. Each picture is made the way
the page makes one: round-capped strokes in black on a white 280x280 canvas,
with one of the page's pen widths (8, 18 or 28 px, ``PEN_WIDTHS`` in
``static/app.js``), the ink's box cropped with the page's padding and shrunk to
at most 200 px a side, sent as a PNG; the server then decodes it
(``decoding.decode_image``) and prepares it (``preprocess.prepare_digit``), which
is what gives the 28x28 image here.

Every picture varies as a person's strokes do (size, place, slant, rotation,
each point moved a little, the pen), so two seeds give two different sets of
pictures of the same quirks. ``benchmarks/finetune_quirk.py`` and
``tests/test_finetuning.py`` use it.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

CANVAS_SIDE = 280  # the page's canvas, MNIST's 28 times ten
SEND_SIDE = 200  # the page sends the ink's box shrunk to at most this many pixels a side
PEN_WIDTHS = (8, 18, 28)  # the page's thin, normal and thick pens, in canvas pixels
PEN_CHANCES = (0.25, 0.6, 0.15)  # "normal" is the page's default, so most pictures use it
SUPERSAMPLING = 3  # strokes drawn at 3x and reduced: anti-aliased edges as a browser draws them

# Each quirk: its label, and its strokes as polylines in a unit box (x right, y down).
QUIRKS: dict[str, tuple[int, tuple[tuple[tuple[float, float], ...], ...]]] = {
    # A continental seven: a hook down at the top left, a stem that turns straight down,
    # and a bar across it.
    "crossed seven": (
        7,
        (
            ((0.05, 0.25), (0.1, 0.05), (0.9, 0.12), (0.5, 0.5), (0.5, 0.98)),
            ((0.2, 0.5), (0.8, 0.5)),
        ),
    ),
    # A four open at the top: a short upright, the cross stroke far out to the right, and
    # a stem that starts well above the cross stroke.
    "open four": (
        4,
        (
            ((0.2, 0.1), (0.14, 0.6), (0.95, 0.58)),
            ((0.62, 0.05), (0.62, 0.98)),
        ),
    ),
    # A one with a long flag, half as long as the stem, as it is taught in parts of Europe.
    "flagged one": (1, (((0.05, 0.5), (0.6, 0.02), (0.6, 0.98)),)),
}


def draw_quirk(name: str, generator: np.random.Generator) -> np.ndarray:
    """The page's canvas after the user drew quirk ``name``: (280, 280) uint8, black on white."""
    _, strokes = QUIRKS[name]
    pen = int(generator.choice(PEN_WIDTHS, p=PEN_CHANCES))
    height = generator.uniform(0.45, 0.75) * CANVAS_SIDE
    width = height * generator.uniform(0.55, 0.8)
    slant = generator.uniform(-0.25, 0.15)  # x moves by slant * (height above the baseline)
    angle = math.radians(generator.uniform(-8, 8))
    left = generator.uniform(pen, CANVAS_SIDE - width - pen)
    top = generator.uniform(pen, CANVAS_SIDE - height - pen)
    centre = np.array([left + width / 2, top + height / 2])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    side = CANVAS_SIDE * SUPERSAMPLING
    canvas = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        unit = np.array(stroke) + generator.normal(0, 0.03, (len(stroke), 2))
        points = np.stack(
            [left + width * (unit[:, 0] + slant * (1 - unit[:, 1])), top + height * unit[:, 1]],
            axis=1,
        )
        points = (points - centre) @ rotation.T + centre
        points = np.clip(points, 0, CANVAS_SIDE - 1) * SUPERSAMPLING
        scaled_pen = pen * SUPERSAMPLING
        draw.line([tuple(point) for point in points], fill=0, width=scaled_pen, joint="curve")
        for x, y in points[[0, -1]]:  # round caps, as the page's lineCap = "round"
            radius = scaled_pen / 2
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return np.asarray(canvas.resize((CANVAS_SIDE, CANVAS_SIDE), Image.Resampling.BOX))


def as_the_page_sends(canvas: np.ndarray) -> bytes:
    """The PNG the page sends: the ink's box, padded, at most 200 px a side (``drawingPng``)."""
    rows, columns = np.nonzero(canvas < 128)
    box_top, box_bottom = rows.min(), rows.max() + 1
    box_left, box_right = columns.min(), columns.max() + 1
    pad = max(12, 0.15 * max(box_bottom - box_top, box_right - box_left))
    top, left = max(0, math.floor(box_top - pad)), max(0, math.floor(box_left - pad))
    bottom = min(CANVAS_SIDE, math.ceil(box_bottom + pad))
    right = min(CANVAS_SIDE, math.ceil(box_right + pad))
    cropped = Image.fromarray(canvas[top:bottom, left:right])
    scale = min(1.0, SEND_SIDE / max(cropped.size))
    size = (max(1, round(cropped.width * scale)), max(1, round(cropped.height * scale)))
    buffer = io.BytesIO()
    cropped.resize(size, Image.Resampling.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def quirky_digits(
    count: int, seed: int, quirks: tuple[str, ...] = tuple(QUIRKS)
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` pictures of the user's quirks, in turn, as the server prepares them.

    Returns images (count, 28, 28) uint8 (light ink on black, as MNIST) and
    their true labels (count,) int64.
    """
    from mnist_cnn.decoding import decode_image
    from mnist_cnn.preprocess import prepare_digit

    generator = np.random.default_rng(seed)
    images, labels = [], []
    for index in range(count):
        name = quirks[index % len(quirks)]
        gray = decode_image(as_the_page_sends(draw_quirk(name, generator)), name)
        prepared = prepare_digit(gray)
        if prepared.image is None:  # never for these strokes; a clear failure if it happens
            raise RuntimeError(f"picture {index} ({name}) lost its ink in preprocessing")
        images.append(prepared.image)
        labels.append(QUIRKS[name][0])
    return np.stack(images), np.array(labels, dtype=np.int64)
