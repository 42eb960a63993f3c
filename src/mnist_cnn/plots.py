"""Figures. Each function returns a Matplotlib ``Figure``; saving happens at the edge.

Figures are made with ``matplotlib.figure.Figure`` rather than ``pyplot``, so
no global state or display is involved and they work in threads and servers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

RIGHT_COLOUR = "tab:blue"
WRONG_COLOUR = "tab:red"


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
        axes.xaxis.get_major_locator().set_params(integer=True)
    return figure
