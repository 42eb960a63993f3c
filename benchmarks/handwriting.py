"""How well does `predict` read the kinds of pictures people make?

Turns MNIST test digits into photos and drawings: dark ink on white or tinted
paper, canvases from 100 to 1,000 px, the digit off-centre and at various
sizes, slight rotation, thick and thin pens, shading across the page, JPEG
compression, and strips of three digits. Then reads them three ways: with the
MNIST-faithful preprocessing, with a plain resize to 28x28, and with a plain
resize plus inversion; and prints each accuracy beside the model's plain MNIST
test accuracy on the same digits. The same digits are also drawn on paper
that has lines of its own (KINDS: ruled, squared, a frame drawn around the
digit, the dark edge of a sheet), each kind scored on its own row.

Usage: python benchmarks/handwriting.py [--model runs/latest] [--count 1000]
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
KINDS = ("lined paper", "squared paper", "frame", "paper edge")  # paper with lines of its own
KIND_SEED_OFFSET = 1000  # the kinds draw from their own generator, so the older rows stay put


def render_digit(
    digit: np.ndarray, generator: np.random.Generator, kind: str = "plain"
) -> tuple[bytes, str]:
    """One MNIST digit (28, 28) uint8 as a photo-like picture; returns (file bytes, format).

    ``kind`` is "plain" or one of KINDS: the paper's own lines are drawn under the digit.
    """
    canvas = int(generator.integers(100, 1001))
    height_fraction = generator.uniform(0.3, 0.8)  # digit height / canvas
    if kind == "frame":
        height_fraction = min(height_fraction, 0.6)  # leave room for the frame inside the picture
    ink = _ink_at_size(digit, int(canvas * height_fraction), generator)
    canvas = max(canvas, *ink.shape)  # a rotated digit may need a little more room
    page = _page(canvas, canvas, generator)
    if kind == "frame":
        # A frame drawn by hand around the digit, with room on every side.
        margin = (canvas - max(ink.shape)) // 4
        top = int(generator.integers(margin, canvas - ink.shape[0] - margin + 1))
        left = int(generator.integers(margin, canvas - ink.shape[1] - margin + 1))
    else:
        top = int(generator.integers(0, canvas - ink.shape[0] + 1))
        left = int(generator.integers(0, canvas - ink.shape[1] + 1))
    placed = [(ink, top, left)]
    if kind in ("lined paper", "squared paper"):
        page = _ruled(page, generator, squared=kind == "squared paper")
    elif kind == "frame":
        placed.append((_frame(canvas, ink.shape, top, left, generator), 0, 0))
    elif kind == "paper edge":
        page = _paper_edge(page, generator)
    elif kind != "plain":
        raise ValueError(f"unknown kind {kind!r}; expected plain or one of {KINDS}")
    return _photograph(page, placed, generator)


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


def _paper_edge(page: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """The table beside the sheet: a darker band along one side of the photo."""
    height, width = page.shape[:2]
    band = max(3, round(min(height, width) * generator.uniform(0.04, 0.15)))
    table = generator.uniform(0.1, 0.5, size=3)  # a table or desk, darker than paper
    edged = page.copy()
    side = generator.integers(4)
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
    digit: np.ndarray, height: int, generator: np.random.Generator, rotation: float = 12
) -> np.ndarray:
    """The digit's ink in [0, 1], scaled to ``height`` px, rotated, pen thickness changed."""
    rows = np.flatnonzero(digit.any(axis=1))
    columns = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1].astype(np.float32) / 255
    scale = height / crop.shape[0]
    size = (max(2, round(crop.shape[1] * scale)), max(2, height))
    ink = np.asarray(
        Image.fromarray(crop, mode="F").resize(size, Image.Resampling.BICUBIC), dtype=np.float32
    )
    ink = np.pad(np.clip(ink, 0, 1), max(2, height // 6))
    ink = ndimage.rotate(ink, generator.uniform(-rotation, rotation), reshape=True, order=1)
    pen = generator.choice(["thin", "normal", "thick"])
    radius = max(1, round(height / 60))
    if pen == "thick":
        ink = ndimage.grey_dilation(ink, size=(2 * radius + 1, 2 * radius + 1))
    elif pen == "thin":
        thinner = ndimage.grey_erosion(ink, size=(2 * radius + 1, 2 * radius + 1))
        if thinner.max() > 0.5:  # keep the normal pen where thinning would erase the digit
            ink = thinner
    ink = np.clip((ink - 0.1) / 0.8, 0, 1)
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    margin = 2
    return np.pad(ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1], margin)


def _page(height: int, width: int, generator: np.random.Generator) -> np.ndarray:
    """Paper: white or tinted RGB, with lighting that falls off across the page."""
    tint = generator.uniform(0.75, 1.0, size=3) if generator.random() < 0.5 else np.ones(3)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = generator.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * columns / width + np.sin(angle) * rows / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    light = 1.0 - generator.uniform(0.0, 0.45) * ramp  # shading across the page
    grain = generator.normal(0, 0.02, size=(height, width))
    return np.clip(light[..., None] * tint + grain[..., None], 0, 1)


def _photograph(
    page: np.ndarray, placed: list[tuple[np.ndarray, int, int]], generator: np.random.Generator
) -> tuple[bytes, str]:
    ink_colour = generator.uniform(0.0, 0.25, size=3)  # black, blue-black, pencil grey
    picture = page.copy()
    for ink, top, left in placed:
        bottom = min(picture.shape[0], top + ink.shape[0])
        right = min(picture.shape[1], left + ink.shape[1])
        alpha = ink[: bottom - top, : right - left, None]
        region = picture[top:bottom, left:right]
        picture[top:bottom, left:right] = region * (1 - alpha) + ink_colour * alpha
    image = Image.fromarray(np.round(picture * 255).astype(np.uint8), mode="RGB")
    image = image.filter(ImageFilter.GaussianBlur(generator.uniform(0, 1.2)))
    buffer = io.BytesIO()
    if generator.random() < 0.6:
        image.save(buffer, format="JPEG", quality=int(generator.integers(40, 91)))
        return buffer.getvalue(), "jpeg"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "png"


def plain_resize(gray: np.ndarray, invert: bool) -> np.ndarray:
    """The naive route: squash the whole picture to 28x28."""
    image = Image.fromarray(np.round(gray * 255).astype(np.uint8)).resize((28, 28))
    array = np.asarray(image)
    return 255 - array if invert else array


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path("runs/latest"), help="(default: runs/latest)"
    )
    parser.add_argument("--count", type=int, default=1000, help="single digits (default: 1000)")
    parser.add_argument(
        "--numbers", type=int, default=200, help="three-digit strips (default: 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument(
        "--save-examples", type=Path, default=None, help="folder for a few pictures"
    )
    arguments = parser.parse_args()

    from mnist_cnn.data import load_mnist
    from mnist_cnn.decoding import decode_image
    from mnist_cnn.engines import load_classifier, load_model
    from mnist_cnn.evaluation import accuracy, evaluate
    from mnist_cnn.prediction import answer_pictures
    from mnist_cnn.preprocess import to_model_input
    from mnist_cnn.reading import Picture

    dataset = load_mnist(allow_download=False)
    classifier = load_classifier(arguments.model)
    generator = np.random.default_rng(arguments.seed)
    indices = generator.choice(len(dataset.test_images), arguments.count, replace=False)
    digits, labels = dataset.test_images[indices], dataset.test_labels[indices]

    started = time.perf_counter()
    grays = []
    for number, digit in enumerate(digits):
        data, kind = render_digit(digit, generator)
        if arguments.save_examples and number < 12:
            arguments.save_examples.mkdir(parents=True, exist_ok=True)
            (arguments.save_examples / f"digit-{number}-{labels[number]}.{kind}").write_bytes(data)
        grays.append(decode_image(data, f"digit {number}"))
    render_seconds = time.perf_counter() - started

    started = time.perf_counter()
    answers = answer_pictures(
        [Picture(name=str(i), gray=gray) for i, gray in enumerate(grays)], classifier
    )
    preprocess_seconds = time.perf_counter() - started
    read = np.array([int(a.text) if a.text else -1 for a in answers])
    model = load_model(arguments.model)
    rows = {
        "MNIST test images as they are": evaluate(model, digits, labels).accuracy,
        "pictures, MNIST-faithful preprocessing (predict)": float(np.mean(read == labels)),
    }
    for invert in (False, True):
        squashed = np.stack([plain_resize(gray, invert) for gray in grays])
        probabilities = classifier.probabilities(to_model_input(squashed))
        name = "pictures, plain resize to 28x28" + (" and inversion" if invert else "")
        rows[name] = accuracy(probabilities, labels)

    number_digits = dataset.test_images[generator.choice(10_000, (arguments.numbers, 3))]
    number_labels = []
    strip_pictures = []
    for number, triple in enumerate(number_digits):
        data, _ = render_number(list(triple), generator)
        strip_pictures.append(Picture(name=f"n{number}", gray=decode_image(data)))
    strip_indices = [
        [
            int(np.flatnonzero((dataset.test_images == digit).all(axis=(1, 2)))[0])
            for digit in triple
        ]
        for triple in number_digits
    ]
    number_labels = [
        "".join(str(dataset.test_labels[i]) for i in triple) for triple in strip_indices
    ]
    strip_answers = answer_pictures(strip_pictures, classifier, multi=True)
    rows["three-digit strips, whole number right (--multi)"] = float(
        np.mean(
            [
                answer.text == truth
                for answer, truth in zip(strip_answers, number_labels, strict=True)
            ]
        )
    )

    kind_generator = np.random.default_rng(arguments.seed + KIND_SEED_OFFSET)
    for kind in KINDS:
        kind_pictures = []
        for number, digit in enumerate(digits):
            data, picture_format = render_digit(digit, kind_generator, kind)
            if arguments.save_examples and number < 3:
                name = f"{kind.replace(' ', '-')}-{number}-{labels[number]}.{picture_format}"
                (arguments.save_examples / name).write_bytes(data)
            kind_pictures.append(Picture(name=f"{kind} {number}", gray=decode_image(data)))
        kind_read = np.array(
            [int(a.text) if a.text else -1 for a in answer_pictures(kind_pictures, classifier)]
        )
        rows[f"{kind}, MNIST-faithful preprocessing (predict)"] = float(
            np.mean(kind_read == labels)
        )

    gap = (
        rows["MNIST test images as they are"]
        - rows["pictures, MNIST-faithful preprocessing (predict)"]
    )
    print(f"model {arguments.model}; {arguments.count} digits, {arguments.numbers} strips; "
          f"CPU {describe()}")  # fmt: skip
    print(f"{'input':55s} {'accuracy':>9s}")
    for name, share in rows.items():
        print(f"{name:55s} {100 * share:8.2f}%")
    print(f"gap between MNIST and pictures: {100 * gap:.2f} points")
    print(f"render {render_seconds:.1f}s, preprocess + predict {preprocess_seconds:.1f}s "
          f"({1000 * preprocess_seconds / arguments.count:.1f} ms per picture)")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "handwriting.json").write_text(
        json.dumps(
            {"model": str(arguments.model), "count": arguments.count, "numbers": arguments.numbers,
             "seed": arguments.seed, "machine": describe(), "accuracy": rows,
             "gap_points": 100 * gap,
             "ms_per_picture": 1000 * preprocess_seconds / arguments.count},
            indent=2,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
