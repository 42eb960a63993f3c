"""How well does `predict` read the kinds of pictures people make?

Turns MNIST digits into the photos and drawings people make, one set per kind (KINDS):
everyday photos (a mix of pens, paper, sizes, light and JPEG), thick felt-tip markers,
pencil (thin, light, grainy), a pen that skips (broken strokes), small digits on big
canvases (a photo, or the drawing page's fixed pen), tinted and unevenly lit paper, harsh
JPEG, lined and squared paper, a frame drawn around the digit, the dark edge of the sheet,
and a sheet photographed at an angle. Every kind draws the same digits, so each row, and
the whole set, stands beside the model's plain MNIST accuracy on those digits. Everyday
photos are also read with a plain resize to 28x28 (with and without inversion), and
three-digit strips with --multi.

Preprocessing is tuned with --digits validation (the held-out last 10k of the training
images) and another --seed; the README reports --digits test, seed 0.

Usage: python benchmarks/handwriting.py [--model runs/latest] [--count 400]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from machine import describe

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"
# The kinds of pictures people make, each scored on its own row. "everyday photo" mixes
# a little of everything (the benchmark's first set); each other kind pushes one thing
# further than everyday photos do.
KINDS = (
    "everyday photo",
    "thick marker",  # felt-tip: strokes 18-30% of the digit's height (MNIST's: about 13%)
    "pencil",  # thin, light grey, grainy
    "broken strokes",  # a thin pen that skips: two to four gaps in the strokes
    "small on big canvas",  # a small digit on a big photo, or on the drawing page's canvas
    "tinted and shaded paper",  # coloured paper, strong shading and a shadow
    "JPEG",  # small pictures saved at quality 10-35
    "lined paper",
    "squared paper",
    "frame",
    "paper edge",
    "perspective",  # the sheet photographed at an angle
)
KIND_SEED_OFFSET = 1000  # each kind draws from its own generator: seed + offset x kind number
# The drawing page's pens, in px on its 280 px canvas (static/app.js, PEN_WIDTHS).
PAGE_CANVAS = 280
PAGE_PENS = (8, 18)


def render_digit(
    digit: np.ndarray, generator: np.random.Generator, kind: str = "everyday photo"
) -> tuple[bytes, str]:
    """One MNIST digit (28, 28) uint8 as a photo-like picture; returns (file bytes, format).

    ``kind`` is one of KINDS.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if kind == "small on big canvas":
        return _small_on_big_canvas(digit, generator)
    canvas = int(generator.integers(100, 1001))
    height_fraction = generator.uniform(0.3, 0.8)  # digit height / canvas
    if kind == "frame":
        height_fraction = min(height_fraction, 0.6)  # leave room for the frame inside the picture
    height = int(canvas * height_fraction)
    if kind == "thick marker":
        ink = _redrawn(digit, height, generator, pen_fraction=generator.uniform(0.18, 0.30))
    elif kind == "pencil":
        ink = _redrawn(digit, height, generator, pen_fraction=generator.uniform(0.02, 0.05))
        ink = _grainy(ink, generator) * generator.uniform(0.35, 0.65)  # light grey, grainy
    elif kind == "broken strokes":
        pen_fraction = generator.uniform(0.03, 0.07)
        ink = _redrawn(digit, height, generator, pen_fraction, gaps=int(generator.integers(2, 5)))
    elif kind == "everyday photo":
        ink = _ink_at_size(digit, height, generator)
    else:
        ink = _ink_at_size(digit, height, generator, pen="normal")
    canvas = max(canvas, *ink.shape)  # a rotated digit may need a little more room
    if kind == "paper edge":
        band = max(3, round(canvas * generator.uniform(0.04, 0.15)))
        canvas = max(canvas, max(ink.shape) + band)  # the digit fits on the sheet beside it
    uneven = kind == "tinted and shaded paper"
    if uneven:
        page = _page(canvas, canvas, generator, tint=(0.5, 0.9), always_tinted=True)
    else:
        page = _page(canvas, canvas, generator)
    if kind == "frame":
        # A frame drawn by hand around the digit, with room on every side.
        margin = (canvas - max(ink.shape)) // 4
        top = int(generator.integers(margin, canvas - ink.shape[0] - margin + 1))
        left = int(generator.integers(margin, canvas - ink.shape[1] - margin + 1))
    elif kind == "paper edge":
        # The digit is written on the sheet: it may reach the sheet's edge, never the
        # table, where ink as dark as the table could not be seen.
        side = int(generator.integers(4))
        along_rows = side < 2  # the table lies along the top or bottom edge
        ink_rows, ink_columns = ink.shape
        top = int(generator.integers(0, canvas - ink_rows - band * along_rows + 1))
        left = int(generator.integers(0, canvas - ink_columns - band * (not along_rows) + 1))
        top += band * (side == 0)
        left += band * (side == 2)
    else:
        top = int(generator.integers(0, canvas - ink.shape[0] + 1))
        left = int(generator.integers(0, canvas - ink.shape[1] + 1))
    placed = [(ink, top, left)]
    if kind in ("lined paper", "squared paper"):
        page = _ruled(page, generator, squared=kind == "squared paper")
    elif kind == "frame":
        placed.append((_frame(canvas, ink.shape, top, left, generator), 0, 0))
    elif kind == "paper edge":
        page = _paper_edge(page, side, band, generator)
    quality = (10, 36) if kind == "JPEG" else None
    return _photograph(
        page,
        placed,
        generator,
        quality,
        perspective=kind == "perspective",
        shading=(0.3, 0.6) if uneven else (0.0, 0.45),
        shadow=uneven,
    )


def _small_on_big_canvas(digit: np.ndarray, generator: np.random.Generator) -> tuple[bytes, str]:
    """A digit 8-15% of a big photo's height, or drawn small on the drawing page."""
    if generator.random() < 0.5:
        canvas = int(generator.integers(600, 1201))
        height = int(canvas * generator.uniform(0.08, 0.15))
        pen_pixels = generator.uniform(2.0, 5.0)  # a ballpoint or a fine felt-tip
    else:
        # The drawing page: a fixed pen on a 280 px canvas, so a small digit is a fat one.
        canvas = PAGE_CANVAS
        height = int(generator.integers(60, 111))
        pen_pixels = float(generator.choice(PAGE_PENS))
    ink = _redrawn(digit, height, generator, pen_fraction=pen_pixels / height)
    canvas = max(canvas, *ink.shape)
    page = _page(canvas, canvas, generator)
    top = int(generator.integers(0, canvas - ink.shape[0] + 1))
    left = int(generator.integers(0, canvas - ink.shape[1] + 1))
    return _photograph(page, [(ink, top, left)], generator)


def _upscaled(digit: np.ndarray, height: int, generator: np.random.Generator, rotation: float):
    """The digit's ink in [0, 1] scaled (bicubic) to ``height`` px, padded and rotated."""
    rows = np.flatnonzero(digit.any(axis=1))
    columns = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1].astype(np.float32) / 255
    scale = height / crop.shape[0]
    size = (max(2, round(crop.shape[1] * scale)), max(2, height))
    ink = np.asarray(
        Image.fromarray(crop, mode="F").resize(size, Image.Resampling.BICUBIC), dtype=np.float32
    )
    ink = np.pad(np.clip(ink, 0, 1), max(2, height // 6))
    return ndimage.rotate(ink, generator.uniform(-rotation, rotation), reshape=True, order=1)


def _trimmed(ink: np.ndarray, margin: int = 2) -> np.ndarray:
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    return np.pad(ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1], margin)


def _redrawn(
    digit: np.ndarray,
    height: int,
    generator: np.random.Generator,
    pen_fraction: float,
    gaps: int = 0,
) -> np.ndarray:
    """The digit's centre line drawn again with a round pen ``pen_fraction`` of its height wide.

    The centre line is the ridge of the distance to the paper; ``gaps`` pieces of it, each
    one to three pens long, are left out, as where a pen skips.
    """
    shape = _upscaled(digit, height, generator, rotation=12) > 0.5
    distance = ndimage.distance_transform_edt(shape)
    # A loose ridge (within 0.75 px of its neighbourhood's peak) stays connected.
    ridge = shape & (distance >= ndimage.maximum_filter(distance, size=3) - 0.75)
    # Points near the outline are the loose ridge's spurs into corners, not the line.
    ridge &= distance >= 0.5 * np.median(distance[ridge])
    radius = max(0.6, pen_fraction * height / 2)
    if gaps:
        points = np.argwhere(ridge)
        for row, column in points[generator.choice(len(points), gaps, replace=False)]:
            gap = radius * generator.uniform(0.5, 2.0) + radius  # 1.5 to 3 pens of paper
            rows, columns = np.ogrid[: ridge.shape[0], : ridge.shape[1]]
            ridge &= (rows - row) ** 2 + (columns - column) ** 2 > gap**2
    pad = int(np.ceil(radius)) + 2
    ridge = np.pad(ridge, pad)
    to_ridge = ndimage.distance_transform_edt(~ridge)
    ink = np.clip(radius + 0.5 - to_ridge, 0.0, 1.0).astype(np.float32)  # anti-aliased edge
    return _trimmed(ink)


def _grainy(ink: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Pencil on paper: graphite catches on the grain, so the stroke is speckled."""
    grain = ndimage.gaussian_filter(generator.random(ink.shape).astype(np.float32), 0.7)
    grain = (grain - grain.min()) / max(float(np.ptp(grain)), 1e-6)
    return ink * np.clip(0.35 + grain, 0.0, 1.0)


def _ruled(page: np.ndarray, generator: np.random.Generator, squared: bool) -> np.ndarray:
    """Printed lines across the whole page: pale blue or grey, thinner than a pen."""
    height, width = page.shape[:2]
    spacing = height / generator.uniform(6, 10)  # school ruling: 6 to 10 lines a picture
    thickness = max(1, round(height / 300 * generator.uniform(0.8, 1.6)))
    colour = generator.uniform(0.45, 0.8, size=3) * np.array([0.8, 0.9, 1.0])  # blue-grey
    lined = page.copy()
    offset = generator.uniform(0, spacing)
    for position in np.arange(offset, height, spacing).astype(int):
        lined[position : position + thickness] = colour
    if squared:
        for position in np.arange(generator.uniform(0, spacing), width, spacing).astype(int):
            lined[:, position : position + thickness] = colour
    return lined


def _frame(
    canvas: int,
    digit_shape: tuple[int, ...],
    top: int,
    left: int,
    generator: np.random.Generator,
) -> np.ndarray:
    """A rectangle drawn around the digit with a pen like the digit's, as ink in [0, 1]."""
    from PIL import ImageDraw

    gap = int(generator.integers(4, max(5, (canvas - max(digit_shape)) // 5)))
    pen = max(2, round(max(digit_shape) / generator.uniform(10, 20)))
    box = (
        max(pen, left - gap),
        max(pen, top - gap),
        min(canvas - 1 - pen, left + digit_shape[1] + gap),
        min(canvas - 1 - pen, top + digit_shape[0] + gap),
    )
    image = Image.new("F", (canvas, canvas), 0.0)
    ImageDraw.Draw(image).rectangle(box, outline=1.0, width=pen)
    return np.asarray(image, dtype=np.float32)


def _paper_edge(
    page: np.ndarray, side: int, band: int, generator: np.random.Generator
) -> np.ndarray:
    """The table beside the sheet: a darker band ``band`` px wide along one side of the
    photo (0 top, 1 bottom, 2 left, 3 right)."""
    table = generator.uniform(0.1, 0.5, size=3)  # a table or desk, darker than paper
    edged = page.copy()
    if side == 0:
        edged[:band] = table
    elif side == 1:
        edged[-band:] = table
    elif side == 2:
        edged[:, :band] = table
    else:
        edged[:, -band:] = table
    return edged


def render_number(digits: list[np.ndarray], generator: np.random.Generator) -> tuple[bytes, str]:
    """Several MNIST digits written left to right on one strip."""
    height = int(generator.integers(100, 301))
    digit_height = int(height * generator.uniform(0.5, 0.75))
    inks = [_ink_at_size(digit, digit_height, generator, rotation=5) for digit in digits]
    gaps = [int(generator.integers(digit_height // 8, digit_height // 3)) for _ in inks]
    width = sum(ink.shape[1] for ink in inks) + sum(gaps) + digit_height // 2
    page = _page(height, width, generator)
    placed, left = [], digit_height // 4
    for ink, gap in zip(inks, gaps, strict=True):
        top = int(generator.integers(0, height - ink.shape[0] + 1))
        placed.append((ink, top, left))
        left += ink.shape[1] + gap
    return _photograph(page, placed, generator)


def _ink_at_size(
    digit: np.ndarray,
    height: int,
    generator: np.random.Generator,
    rotation: float = 12,
    pen: str | None = None,
) -> np.ndarray:
    """The digit's ink in [0, 1], scaled to ``height`` px, rotated, pen thickness changed.

    ``pen`` is "thin", "normal" or "thick"; None picks one at random.
    """
    ink = _upscaled(digit, height, generator, rotation)
    pen = pen or str(generator.choice(["thin", "normal", "thick"]))
    radius = max(1, round(height / 60))
    if pen == "thick":
        ink = ndimage.grey_dilation(ink, size=(2 * radius + 1, 2 * radius + 1))
    elif pen == "thin":
        thinner = ndimage.grey_erosion(ink, size=(2 * radius + 1, 2 * radius + 1))
        if thinner.max() > 0.5:  # keep the normal pen where thinning would erase the digit
            ink = thinner
    return _trimmed(np.clip((ink - 0.1) / 0.8, 0, 1))


def _page(
    height: int,
    width: int,
    generator: np.random.Generator,
    tint: tuple[float, float] = (0.75, 1.0),
    always_tinted: bool = False,
) -> np.ndarray:
    """Paper, as it reflects light: white or tinted RGB with a little grain."""
    tinted = always_tinted or generator.random() < 0.5
    colour = generator.uniform(*tint, size=3) if tinted else np.ones(3)
    grain = generator.normal(0, 0.02, size=(height, width))
    return np.clip(colour + grain[..., None], 0, 1)


def _lighting(
    height: int,
    width: int,
    generator: np.random.Generator,
    shading: tuple[float, float],
    shadow: bool,
) -> np.ndarray:
    """(H, W) light falling on the page: a fall-off across it, and with ``shadow`` a soft
    shadow (a hand, a phone) over one part of it."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = generator.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * columns / width + np.sin(angle) * rows / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    light = 1.0 - generator.uniform(*shading) * ramp
    if shadow:
        centre = generator.uniform(0, 1, size=2) * (height, width)
        spread = generator.uniform(0.2, 0.5) * max(height, width)
        distance = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2
        light *= 1.0 - generator.uniform(0.2, 0.4) * np.exp(-distance / (2 * spread**2))
    return light


def _photograph(
    page: np.ndarray,
    placed: list[tuple[np.ndarray, int, int]],
    generator: np.random.Generator,
    quality: tuple[int, int] | None = None,
    perspective: bool = False,
    shading: tuple[float, float] = (0.0, 0.45),
    shadow: bool = False,
) -> tuple[bytes, str]:
    """Ink on the page, lit and photographed: blur, then PNG or JPEG (always JPEG with
    ``quality``).

    Light falls on ink and paper alike (what the camera sees is what each reflects), so
    ink in a shadow is darker than the paper beside it. With ``perspective`` the sheet is
    seen at an angle: its far side shrinks and the table shows around it.
    """
    ink_colour = generator.uniform(0.0, 0.25, size=3)  # black, blue-black, pencil grey
    picture = page.copy()
    for ink, top, left in placed:
        bottom = min(picture.shape[0], top + ink.shape[0])
        right = min(picture.shape[1], left + ink.shape[1])
        alpha = ink[: bottom - top, : right - left, None]
        region = picture[top:bottom, left:right]
        picture[top:bottom, left:right] = region * (1 - alpha) + ink_colour * alpha
    light = _lighting(picture.shape[0], picture.shape[1], generator, shading, shadow)
    picture = np.clip(picture * light[..., None], 0, 1)
    image = Image.fromarray(np.round(picture * 255).astype(np.uint8), mode="RGB")
    if perspective:
        image = _at_an_angle(image, generator)
    image = image.filter(ImageFilter.GaussianBlur(generator.uniform(0, 1.2)))
    buffer = io.BytesIO()
    if quality is not None or generator.random() < 0.6:
        low, high = quality or (40, 91)
        image.save(buffer, format="JPEG", quality=int(generator.integers(low, high)))
        return buffer.getvalue(), "jpeg"
    image.save(buffer, format="PNG", compress_level=1)  # the same pixels, 10x faster to write
    return buffer.getvalue(), "png"


def _at_an_angle(image: Image.Image, generator: np.random.Generator) -> Image.Image:
    """The photo warped as if the camera were tilted: a projective map of its corners."""
    width, height = image.size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=float)
    outwards = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    # Where each corner of the photo comes from on the sheet, pushed outwards (so the
    # digit stays whole and the table shows at the margins), the far side much more:
    # a keystone, as when the camera leans over the sheet.
    stretch = generator.uniform(0.0, 0.08, size=(4, 2))
    far_side = int(generator.integers(4))
    stretch[[far_side, (far_side + 1) % 4]] += generator.uniform(0.1, 0.3)
    sources = corners + stretch * outwards * (width, height)
    targets = [(0, 0), (width, 0), (width, height), (0, height)]
    matrix = []
    for (x, y), (u, v) in zip(targets, sources, strict=True):
        matrix.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        matrix.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coefficients = np.linalg.solve(np.array(matrix), sources.reshape(-1))
    table = tuple(int(value) for value in generator.integers(40, 140, size=3))
    return image.transform(
        image.size,
        Image.Transform.PERSPECTIVE,
        tuple(coefficients),
        Image.Resampling.BILINEAR,
        fillcolor=table,
    )


def plain_resize(gray: np.ndarray, invert: bool) -> np.ndarray:
    """The naive route: squash the whole picture to 28x28."""
    image = Image.fromarray(np.round(gray * 255).astype(np.uint8)).resize((28, 28))
    array = np.asarray(image)
    return 255 - array if invert else array


def benchmark_digits(dataset, split: str, count: int, generator: np.random.Generator):
    """``count`` digits and labels from the test set or the held-out last 10k of training.

    Preprocessing is tuned on "validation" (with another seed) and reported on "test".
    """
    if split == "test":
        images, labels = dataset.test_images, dataset.test_labels
    else:
        images, labels = dataset.train_images[-10_000:], dataset.train_labels[-10_000:]
    indices = generator.choice(len(images), count, replace=False)
    return images[indices], labels[indices]


def render_kind(digits: np.ndarray, kind: str, seed: int) -> list[tuple[bytes, str]]:
    """Every digit drawn as ``kind``; each kind has its own generator, so rows stay put."""
    generator = np.random.default_rng(seed + KIND_SEED_OFFSET * (1 + KINDS.index(kind)))
    return [render_digit(digit, generator, kind) for digit in digits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        nargs="+",
        default=[Path("runs/latest")],
        help="one or more run folders or model files, read from the same pictures "
        "(default: runs/latest)",
    )
    parser.add_argument(
        "--count", type=int, default=300, help="digits, each drawn as every kind (default: 300)"
    )
    parser.add_argument(
        "--numbers", type=int, default=200, help="three-digit strips (default: 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument(
        "--digits",
        choices=("test", "validation"),
        default="test",
        help="MNIST test digits, or the held-out last 10k of training to tune on (default: test)",
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated kinds (default: all)"
    )
    parser.add_argument(
        "--output",
        default="handwriting.json",
        help="file name under benchmarks/results (default: handwriting.json)",
    )
    parser.add_argument(
        "--save-examples", type=Path, default=None, help="folder for a few pictures of each kind"
    )
    arguments = parser.parse_args()
    kinds = [kind.strip() for kind in arguments.kinds.split(",")]
    for kind in kinds:
        if kind not in KINDS:
            parser.error(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")

    from mnist_cnn.data import load_mnist
    from mnist_cnn.decoding import decode_image
    from mnist_cnn.preprocess import prepare_digit

    dataset = load_mnist(allow_download=False)
    generator = np.random.default_rng(arguments.seed)
    digits, labels = benchmark_digits(dataset, arguments.digits, arguments.count, generator)

    # Pictures are made, decoded and prepared once; every model reads the same images.
    prepared: dict[str, np.ndarray] = {}
    found: dict[str, np.ndarray] = {}
    everyday_grays: list[np.ndarray] = []
    seconds = 0.0
    for kind in kinds:
        images, kind_found = [], []
        for number, (data, picture_format) in enumerate(render_kind(digits, kind, arguments.seed)):
            if arguments.save_examples and number < 4:
                arguments.save_examples.mkdir(parents=True, exist_ok=True)
                name = f"{kind.replace(' ', '-').replace(',', '')}-{number}-{labels[number]}"
                (arguments.save_examples / f"{name}.{picture_format}").write_bytes(data)
            started = time.perf_counter()
            gray = decode_image(data, f"{kind} {number}")
            image = prepare_digit(gray).image
            seconds += time.perf_counter() - started
            if kind == "everyday photo":
                everyday_grays.append(gray)
            kind_found.append(image is not None)
            images.append(image if image is not None else np.zeros((28, 28), np.uint8))
        prepared[kind], found[kind] = np.stack(images), np.array(kind_found)
        print(f"prepared {kind}", flush=True)
    strip_pictures, strip_truths = (
        _strips(dataset, arguments, generator) if arguments.numbers else ([], [])
    )

    pictures = arguments.count * len(kinds)
    results = {}
    from mnist_cnn.engines import load_classifier

    for model in arguments.model:
        classifier = load_classifier(model)  # once: loading traces the model
        results[str(model)] = {
            **_read_everything(
                classifier, digits, labels, prepared, found, everyday_grays, strip_pictures,
                strip_truths,
            ),
            **model_facts(model, classifier, dataset),
        }  # fmt: skip
    print(f"{arguments.count} {arguments.digits} digits (seed {arguments.seed}) x "
          f"{len(kinds)} kinds; CPU {describe()}")  # fmt: skip
    names = list(results)
    print(f"{'input':44s} " + " ".join(f"{Path(name).name:>10s}" for name in names))
    for row in results[names[0]]["accuracy"]:
        shares = " ".join(f"{100 * results[name]['accuracy'][row]:9.2f}%" for name in names)
        print(f"{row:44s} {shares}")
    print(f"{'gap, MNIST minus whole set (points)':44s} "
          + " ".join(f"{results[name]['gap_points']:10.2f}" for name in names))  # fmt: skip
    print(f"decode + preprocess: {1000 * seconds / pictures:.1f} ms per picture")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / arguments.output).write_text(
        json.dumps(
            {"digits": arguments.digits, "count": arguments.count, "seed": arguments.seed,
             "kinds": kinds, "numbers": arguments.numbers, "machine": describe(),
             "decode_and_preprocess_ms_per_picture": 1000 * seconds / pictures,
             "models": results},
            indent=2,
        )
        + "\n"
    )  # fmt: skip


def model_facts(model: Path, classifier, dataset) -> dict:
    """The model's accuracy on the whole MNIST test set, and its run's settings if known."""
    from mnist_cnn.evaluation import accuracy
    from mnist_cnn.preprocess import to_model_input

    probabilities = classifier.probabilities(to_model_input(dataset.test_images))
    facts: dict = {"test_accuracy_all_10000": accuracy(probabilities, dataset.test_labels)}
    config_file = Path(model) / "config.json"
    if config_file.is_file():
        facts["trained_with"] = json.loads(config_file.read_text()).get("config")
    return facts


def _read_everything(
    classifier,
    digits: np.ndarray,
    labels: np.ndarray,
    prepared: dict[str, np.ndarray],
    found: dict[str, np.ndarray],
    everyday_grays: list[np.ndarray],
    strip_pictures: list,
    strip_truths: list[str],
) -> dict:
    """One classifier's accuracy on MNIST, on every kind, the whole set, naive resizes, strips."""
    from mnist_cnn.evaluation import accuracy
    from mnist_cnn.prediction import answer_pictures
    from mnist_cnn.preprocess import to_model_input

    mnist_accuracy = accuracy(classifier.probabilities(to_model_input(digits)), labels)
    rows = {"the same digits as MNIST": mnist_accuracy}
    correct = []
    for kind, images in prepared.items():
        read = classifier.probabilities(to_model_input(images)).argmax(axis=1)
        right = (read == labels) & found[kind]  # "no digit found" is wrong
        correct.append(right)
        rows[kind] = float(np.mean(right))
    whole = float(np.mean(np.concatenate(correct)))
    rows["whole set"] = whole
    for invert in (False, True):
        if not everyday_grays:
            break
        squashed = np.stack([plain_resize(gray, invert) for gray in everyday_grays])
        probabilities = classifier.probabilities(to_model_input(squashed))
        name = "everyday photo, plain resize" + (" and inversion" if invert else "")
        rows[name] = accuracy(probabilities, labels)
    if strip_pictures:
        answers = answer_pictures(strip_pictures, classifier, multi=True)
        rows["three-digit strips, whole number (--multi)"] = float(
            np.mean([a.text == t for a, t in zip(answers, strip_truths, strict=True)])
        )
    return {"accuracy": rows, "gap_points": 100 * (mnist_accuracy - whole)}


def _strips(dataset, arguments, generator) -> tuple[list, list[str]]:
    """Three-digit strips drawn from the same split, and the number each shows."""
    from mnist_cnn.decoding import decode_image
    from mnist_cnn.reading import Picture

    images, labels = benchmark_digits(dataset, arguments.digits, 10_000, generator)
    chosen = generator.choice(10_000, (arguments.numbers, 3))
    pictures = []
    for number, triple in enumerate(chosen):
        data, _ = render_number(list(images[triple]), generator)
        pictures.append(Picture(name=f"n{number}", gray=decode_image(data)))
    truths = ["".join(str(labels[index]) for index in triple) for triple in chosen]
    return pictures, truths


if __name__ == "__main__":
    main()
