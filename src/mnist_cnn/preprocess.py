"""Turning pixel arrays into what the network takes."""

from __future__ import annotations

import numpy as np


def to_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 in [0, 255] -> (N, 28, 28, 1) float32 in [0, 1].

    Steps 3 and 6 of the tutorial: convert to float32, divide by 255, and add
    the channel axis that Conv2D expects.
    """
    images = np.asarray(images)
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]
