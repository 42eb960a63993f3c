"""Choose predict's default --min-confidence on validation data (never the test set).

Trains the fast preset on the first 50k training images and looks at its
answers on the held-out last 10k: for each confidence band, how often is the
model right? The default threshold is the lowest band edge above which the
held-out accuracy is at least 50%: below it, an answer is more likely wrong
than right, so calling it "uncertain" is honest.

Usage: python benchmarks/choose_min_confidence.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import itertools

import numpy as np

from mnist_cnn.config import PRESETS
from mnist_cnn.data import load_mnist
from mnist_cnn.prediction import predict_probabilities
from mnist_cnn.training import split_for_training, train

EDGES = np.round(np.arange(0.2, 1.0001, 0.1), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="models to pool (default: 3)")
    arguments = parser.parse_args()
    dataset = load_mnist(allow_download=False)
    confidences, correct = [], []
    for seed in range(arguments.seeds):
        config = dataclasses.replace(PRESETS["fast"], validation_split=1 / 6, seed=seed)
        split = split_for_training(dataset, config)
        model = train(config, dataset).model
        probabilities = predict_probabilities(model, split.validation_images)
        confidences.append(probabilities.max(axis=1))
        correct.append(probabilities.argmax(axis=1) == split.validation_labels)
    confidence, right = np.concatenate(confidences), np.concatenate(correct)
    bands = []
    print(f"{'confidence':>12s} {'answers':>8s} {'accuracy':>9s}")
    for low, high in itertools.pairwise(EDGES):
        inside = (confidence >= low) & (confidence < high if high < 1 else confidence <= high)
        accuracy = float(right[inside].mean()) if inside.any() else None
        bands.append({"from": float(low), "to": float(high), "answers": int(inside.sum()),
                      "accuracy": accuracy})  # fmt: skip
        shown = "–" if accuracy is None else f"{100 * accuracy:.1f}%"
        print(f"{low:.1f} – {high:.1f}  {int(inside.sum()):8d} {shown:>9s}")
    # The lowest edge from which every band above has accuracy >= 50%.
    threshold = float(EDGES[-1])
    for band in reversed(bands):
        if band["accuracy"] is not None and band["accuracy"] < 0.5:
            break
        threshold = band["from"]
    below = confidence < threshold
    print(f"\nchosen --min-confidence {threshold:.1f}: {below.sum()} of {len(confidence)} held-out "
          f"answers fall under it, {100 * right[below].mean():.1f}% of them right"
          if below.any() else f"\nchosen --min-confidence {threshold:.1f}")  # fmt: skip
    out = Path(__file__).parent / "results" / "min_confidence.json"
    out.write_text(json.dumps({"threshold": threshold, "bands": bands, "seeds": arguments.seeds,
                               "held_out": "last 10k training images"}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
