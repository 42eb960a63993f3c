"""Figures. Each function returns a Matplotlib ``Figure`` (or, for ``enlarged_image``,
the pixels of a plain picture); saving happens at the edge.

Figures are made with ``matplotlib.figure.Figure`` rather than ``pyplot``, so
no global state or display is involved and they work in threads and servers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

RIGHT_COLOUR = "tab:blue"
WRONG_COLOUR = "tab:red"
# The reliability diagram's colours, from the Okabe-Ito colour-blind-safe palette.
CALIBRATION_BLUE = "#0072B2"
CALIBRATION_ORANGE = "#E69F00"
CALIBRATION_SKY_BLUE = "#56B4E9"


# 28 px become 280: big enough to look at, and each MNIST pixel stays a crisp square.
ENLARGE_SCALE = 10


def enlarged_image(image: np.ndarray, scale: int = ENLARGE_SCALE) -> np.ndarray:
    """One (28, 28) uint8 image as a picture: black ink on white, each pixel a square.

    Returns (28 * scale, 28 * scale) uint8. Nearest-neighbour enlargement adds
    no grey that the image did not have, and no frame or title, so the picture
    can be read back by ``mnist-cnn predict`` as the digit it is.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    ink_on_white = 255 - np.asarray(image, dtype=np.uint8)  # as cmap="binary" shows it
    return np.repeat(np.repeat(ink_on_white, scale, axis=0), scale, axis=1)


def sample_figure(image: np.ndarray, title: str) -> Figure:
    """One (28, 28) image in black ink on white, as the tutorial shows it."""
    figure = Figure(figsize=(3, 3.3), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(image, cmap="binary")
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    return figure


def image_grid_figure(
    images: np.ndarray,
    titles: Sequence[str],
    columns: int = 5,
    colours: Sequence[str] | None = None,
) -> Figure:
    """A grid of (28, 28) images with a caption under each."""
    rows = math.ceil(len(images) / columns)
    figure = Figure(figsize=(1.6 * columns, 1.75 * rows), dpi=100, layout="constrained")
    for index, image in enumerate(images):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(image, cmap="binary")
        axes.set_xticks([])
        axes.set_yticks([])
        colour = colours[index] if colours is not None else "black"
        axes.set_xlabel(titles[index], color=colour, fontsize=9)
    return figure


def predictions_figure(
    images: np.ndarray,
    predicted: np.ndarray,
    confidences: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    columns: int = 5,
) -> Figure:
    """Each image captioned "predicted confidence% (true)": blue where right, red where wrong."""
    titles = [
        f"{class_names[guess]} {100 * confidence:.0f}% ({class_names[truth]})"
        for guess, confidence, truth in zip(predicted, confidences, labels, strict=True)
    ]
    colours = [
        RIGHT_COLOUR if guess == truth else WRONG_COLOUR
        for guess, truth in zip(predicted, labels, strict=True)
    ]
    return image_grid_figure(images, titles, columns=columns, colours=colours)


def training_curves_figure(history: Sequence[dict[str, float]]) -> Figure:
    """Training and validation accuracy and loss per epoch, side by side."""
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    epochs = [row["epoch"] for row in history]
    for position, metric in enumerate(("accuracy", "loss")):
        axes = figure.add_subplot(1, 2, position + 1)
        axes.plot(epochs, [row[metric] for row in history], marker="o", label=f"training {metric}")
        validation = [row.get(f"val_{metric}", math.nan) for row in history]
        if not all(math.isnan(value) for value in validation):
            axes.plot(epochs, validation, marker="o", label=f"validation {metric}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_title(metric.capitalize())
        axes.grid(alpha=0.3)
        axes.legend()
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def confusion_matrix_figure(confusion: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Counts in every cell; correct answers in blue on the diagonal, errors in reds.

    The diagonal dwarfs the errors (hundreds against a handful), so the two are
    coloured on separate scales: otherwise every error cell looks empty.
    """
    from matplotlib import colors

    size = len(class_names)
    figure = Figure(figsize=(1.2 + 0.55 * size, 1.0 + 0.55 * size), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    diagonal = np.eye(size, dtype=bool)
    errors = np.ma.masked_where(diagonal | (confusion == 0), confusion)
    correct = np.ma.masked_where(~diagonal, confusion)
    white = colors.ListedColormap(["white"])
    axes.imshow(np.zeros_like(confusion), cmap=white)
    axes.imshow(correct, cmap="Blues", vmin=0, vmax=max(int(confusion.max()), 1) * 1.3)
    error_max = max(int(errors.max()) if errors.count() else 1, 1)
    axes.imshow(errors, cmap="Reds", vmin=0, vmax=error_max * 1.25)
    for true in range(size):
        for guess in range(size):
            count = int(confusion[true, guess])
            if count == 0 and true != guess:
                continue
            strong = (true == guess) or count > 0.6 * error_max
            axes.text(
                guess, true, str(count), ha="center", va="center", fontsize=8,
                color="white" if strong else "black",
            )  # fmt: skip
    axes.set_xticks(range(size), class_names)
    axes.set_yticks(range(size), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix (errors in red)")
    return figure


def misclassified_figure(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    confidences: np.ndarray,
    class_names: Sequence[str],
    columns: int = 6,
) -> Figure:
    """A gallery of wrong answers: "true → predicted (confidence)" under each."""
    if len(images) == 0:
        figure = Figure(figsize=(4, 1), dpi=100)
        figure.text(0.5, 0.5, "No misclassified images", ha="center", va="center")
        return figure
    titles = [
        f"{class_names[truth]} → {class_names[guess]} ({100 * confidence:.0f}%)"
        for truth, guess, confidence in zip(labels, predicted, confidences, strict=True)
    ]
    return image_grid_figure(
        images, titles, columns=min(columns, len(images)), colours=[WRONG_COLOUR] * len(images)
    )


def reliability_figure(
    bin_edges: np.ndarray,
    bin_confidence: np.ndarray,
    bin_accuracy: np.ndarray,
    bin_count: np.ndarray,
    expected_calibration_error: float,
) -> Figure:
    """Reliability diagram (accuracy per confidence bin) above a confidence histogram."""
    figure = Figure(figsize=(5, 5.5), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    widths = np.diff(bin_edges)
    filled = bin_count > 0
    top.bar(
        bin_edges[:-1][filled], bin_accuracy[filled], width=widths[filled], align="edge",
        color=CALIBRATION_BLUE, edgecolor="white", label="accuracy",
    )  # fmt: skip
    # The gap between accuracy and confidence: orange above the bar where the model
    # claims more than it achieves (over-confident); where it achieves more, the gap
    # lies inside the bar, so it is painted opaque in sky blue with a hatch.
    gap = (bin_confidence - bin_accuracy)[filled]
    for sign, colour, hatch, label in (
        (1, CALIBRATION_ORANGE, None, "over-confident"),
        (-1, CALIBRATION_SKY_BLUE, "//", "under-confident"),
    ):
        chosen = gap * sign > 0
        if chosen.any():
            top.bar(
                bin_edges[:-1][filled][chosen],
                np.abs(gap[chosen]),
                bottom=np.minimum(bin_accuracy, bin_confidence)[filled][chosen],
                width=widths[filled][chosen],
                align="edge",
                color=colour,
                edgecolor="white",
                hatch=hatch,
                label=label,
            )
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(f"Reliability (ECE {100 * expected_calibration_error:.2f}%)")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(bin_edges[:-1], bin_count, width=widths, align="edge", color="gray")
    bottom.set_yscale("log")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("images")
    bottom.set_xlim(0, 1)
    return figure


def comparison_figure(curves: Sequence[tuple[str, Sequence[dict[str, float]]]]) -> Figure:
    """Validation accuracy per epoch of several runs, overlaid (training accuracy if none)."""
    figure = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for name, history in curves:
        epochs = [row["epoch"] for row in history]
        values = [row.get("val_accuracy", math.nan) for row in history]
        label = name
        if all(math.isnan(value) for value in values):
            values = [row["accuracy"] for row in history]
            label = f"{name} (training, no validation split)"
        axes.plot(epochs, values, marker="o", label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy")
    axes.set_title("Validation accuracy per epoch")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def preprocessed_strip_figure(images: Sequence[np.ndarray], titles: Sequence[str]) -> Figure:
    """The 28x28 images the model saw, in a row (wrapping after ten)."""
    return image_grid_figure(np.asarray(images), titles, columns=min(10, len(images)))


# The saliency overlay: the model's image in grey, so the colour stands out, and
# the map on top in a colour-blind-safe sequential map, transparent where it is 0.
SALIENCY_COLOURMAP = "plasma"
SALIENCY_OPACITY = 0.8  # of the map's brightest pixel; the digit still shows through


def saliency_overlay(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """(28, 28) uint8 image and (28, 28) map in [0, 1] -> (28, 28, 4) RGBA float in [0, 1].

    Ink is drawn mid-grey on white; the map is laid on it with its opacity
    growing with its value, so pixels that did not matter stay plain.
    """
    from matplotlib import colormaps

    grey = 1.0 - 0.6 * (np.asarray(image, dtype=np.float32) / 255.0)  # (28, 28)
    base = np.stack([grey, grey, grey], axis=-1)  # (28, 28, 3)
    saliency = np.clip(np.asarray(saliency, dtype=np.float32), 0.0, 1.0)
    colour = colormaps[SALIENCY_COLOURMAP](saliency)[..., :3]  # (28, 28, 3)
    opacity = (SALIENCY_OPACITY * saliency)[..., np.newaxis]
    blended = (1 - opacity) * base + opacity * colour
    return np.concatenate([blended, np.ones_like(grey)[..., np.newaxis]], axis=-1)


def saliency_figure(
    images: np.ndarray,
    saliency: np.ndarray,
    titles: Sequence[str],
    columns: int = 6,
    colours: Sequence[str] | None = None,
    note: str | None = None,
) -> Figure:
    """Each (28, 28) image with its saliency map laid over it, captioned; ``note`` under all.

    ``saliency``: (N, 28, 28) in [0, 1], brighter where the answer leans more.
    """
    if len(images) == 0:
        figure = Figure(figsize=(4, 1), dpi=100)
        figure.text(0.5, 0.5, note or "Nothing to explain", ha="center", va="center")
        return figure
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    height = 1.75 * rows + (0.35 if note else 0)
    figure = Figure(figsize=(max(1.6 * columns, 3.2), height), dpi=100, layout="constrained")
    for index, (image, saliency_map) in enumerate(zip(images, saliency, strict=True)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(saliency_overlay(image, saliency_map), interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        colour = colours[index] if colours is not None else "black"
        axes.set_xlabel(titles[index], color=colour, fontsize=9)
    if note:
        figure.supxlabel(note, fontsize=9)
    return figure
