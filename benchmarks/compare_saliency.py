"""Which saliency map reads the model better on 28x28: occlusion or integrated gradients?

On held-out validation images (the last 10k training images, which the run
must not have trained on: train it with --validation-split 0.16667), for
each method: erase the ink pixels the map ranks highest (10% and 20% of the
ink) and measure how far the answer's probability falls; a map that points
at what the model uses makes it fall further. Random ink pixels are the
floor. Also: the share of each map on ink, and seconds per answer.

Usage: python benchmarks/compare_saliency.py RUN [--count 500] [--figure OUT.png]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from machine import describe
from mnist_cnn.data import load_mnist
from mnist_cnn.engines import keras_probability_function, load_model
from mnist_cnn.explain import METHODS, saliency_maps
from mnist_cnn.preprocess import to_model_input
from mnist_cnn.run_folder import RunFolder

ERASED_FRACTIONS = (0.1, 0.2)
VALIDATION_COUNT = 10_000
INK = 25  # a pixel above this grey level (of 255) is ink


def erase_top(images: np.ndarray, scores: np.ndarray, fraction: float) -> np.ndarray:
    """Each image with its highest-scoring ``fraction`` of ink pixels set to paper."""
    erased = images.copy()
    for image, score in zip(erased, scores, strict=True):
        ink = np.flatnonzero(image.reshape(-1) > INK)
        count = max(1, round(fraction * len(ink)))
        chosen = ink[np.argsort(score.reshape(-1)[ink])[::-1][:count]]
        image.reshape(-1)[chosen] = 0
    return erased


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run trained with --validation-split 0.16667")
    parser.add_argument("--count", type=int, default=500, help="validation images (default: 500)")
    parser.add_argument("--figure", type=Path, help="also draw 12 images with both maps")
    arguments = parser.parse_args()
    split = RunFolder(arguments.run).read_config()["config"]["validation_split"]
    if split * 60_000 < VALIDATION_COUNT - 1:
        parser.error(f"{arguments.run} trained on part of the last 10k (validation split {split})")
    dataset = load_mnist(allow_download=False)
    images = dataset.train_images[-VALIDATION_COUNT:][: arguments.count]
    model = load_model(arguments.run)
    probabilities = keras_probability_function(model)
    original = probabilities(to_model_input(images))
    classes = original.argmax(axis=1)
    chosen = original[np.arange(len(classes)), classes]

    def fall(erased: np.ndarray) -> float:
        after = probabilities(to_model_input(erased))[np.arange(len(classes)), classes]
        return float(np.mean(chosen - after))

    generator = np.random.default_rng(0)
    results: dict[str, dict[str, float]] = {
        "random": {
            f"fall_erasing_{int(100 * f)}pct": fall(
                erase_top(images, generator.random(images.shape), f)
            )
            for f in ERASED_FRACTIONS
        }
    }
    maps = {}
    for method in METHODS:
        started = time.perf_counter()
        maps[method] = saliency_maps(model, images, classes, method)
        seconds = time.perf_counter() - started
        on_ink = float((maps[method] * (images > INK)).sum() / maps[method].sum())
        results[method] = {
            **{
                f"fall_erasing_{int(100 * f)}pct": fall(erase_top(images, maps[method], f))
                for f in ERASED_FRACTIONS
            },
            "share_on_ink": on_ink,
            "seconds_per_answer": seconds / len(images),
        }
    print(f"{len(images)} held-out images, mean probability {chosen.mean():.4f}; fall in it:")
    for name, row in results.items():
        print(f"{name:22s} " + "  ".join(f"{key} {value:.4f}" for key, value in row.items()))
    out = Path(__file__).parent / "results" / "saliency.json"
    out.write_text(
        json.dumps(
            {
                "machine": describe(),
                "run": arguments.run.name,
                "held_out": "the first images of the last 10k training images",
                "count": len(images),
                "mean_probability": float(chosen.mean()),
                "methods": results,
            },
            indent=2,
        )
    )
    if arguments.figure:
        from mnist_cnn.plots import saliency_figure
        from mnist_cnn.run_folder import save_figure

        shown = slice(0, 12)
        rows = [(images[shown], maps[method][shown], method) for method in METHODS]
        figure = saliency_figure(
            np.concatenate([row[0] for row in rows]),
            np.concatenate([row[1] for row in rows]),
            [f"{method[:9]}: {c}" for _, _, method in rows for c in classes[shown]],
            columns=12,
        )
        save_figure(figure, arguments.figure)


if __name__ == "__main__":
    main()
