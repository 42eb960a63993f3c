"""Choose the test-time views on validation data only (never the test set).

Takes a run trained with a validation split (``--validation-split 0.16667``
holds out the last 10k training images) and scores each member's final
checkpoint, and the members' average, on those held-out images when its
probabilities are averaged over each of several sets of views: the saved
model's 1, 5 or 9 (the image and its 1-pixel shifts, ``models.average_over_shifts``)
and candidate sets that add 2-pixel shifts, rotations by ±5° and ±10°, or zooms
to 90% and 110% (bilinear, made with scipy.ndimage). The shift sets are checked
against the saved model's own averaging first.

Usage: mnist-cnn train --preset best --validation-split 0.16667 --ensemble 5 --run-dir runs/val
       python benchmarks/tune_test_time.py runs/val
(``train_candidate.py`` trains such a run with other settings.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from scipy import ndimage

from machine import describe
from mnist_cnn.data import load_mnist
from mnist_cnn.engines import load_model
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.evaluation import accuracy
from mnist_cnn.models import VIEW_SHIFTS, average_over_shifts
from mnist_cnn.run_folder import RunFolder
from mnist_cnn.training import split_for_training

RESULTS = Path(__file__).parent / "results"

SHIFTS_5 = [f"shift {rows:+d},{columns:+d}" for rows, columns in VIEW_SHIFTS[:5]]
SHIFTS_9 = [f"shift {rows:+d},{columns:+d}" for rows, columns in VIEW_SHIFTS]
TWO_PIXELS = ["shift -2,+0", "shift +2,+0", "shift +0,-2", "shift +0,+2"]
ROTATIONS_5 = ["rotate -5", "rotate +5"]
ROTATIONS_10 = ["rotate -10", "rotate +10"]
ZOOMS = ["zoom 0.9", "zoom 1.1"]
# The sets scored: the saved model's three first, then the candidates.
VIEW_SETS = {
    "1 view": SHIFTS_5[:1],
    "5 shifts": SHIFTS_5,
    "9 shifts": SHIFTS_9,
    "image, rotations ±5°": SHIFTS_5[:1] + ROTATIONS_5,
    "image, rotations ±5°, ±10°": SHIFTS_5[:1] + ROTATIONS_5 + ROTATIONS_10,
    "5 shifts, rotations ±5°": SHIFTS_5 + ROTATIONS_5,
    "5 shifts, rotations ±10°": SHIFTS_5 + ROTATIONS_10,
    "5 shifts, rotations ±5°, ±10°": SHIFTS_5 + ROTATIONS_5 + ROTATIONS_10,
    "9 shifts, rotations ±5°": SHIFTS_9 + ROTATIONS_5,
    "9 shifts, rotations ±5°, ±10°": SHIFTS_9 + ROTATIONS_5 + ROTATIONS_10,
    "5 shifts, 2-pixel shifts": SHIFTS_5 + TWO_PIXELS,
    "5 shifts, zooms": SHIFTS_5 + ZOOMS,
    "5 shifts, rotations ±5°, zooms": SHIFTS_5 + ROTATIONS_5 + ZOOMS,
    "all 19": SHIFTS_9 + TWO_PIXELS + ROTATIONS_5 + ROTATIONS_10 + ZOOMS,
}
# Fixed before the first scores of the candidate sets were seen (2026-11-28).
RULE = (
    "take the set whose members' averaged probabilities score best held out (on a tie, the "
    "better mean per model, then fewer views); it replaces the preset's views only if it "
    "beats them by at least 3 images averaged and its mean per model is not lower"
)


def views_of(images: np.ndarray) -> dict[str, np.ndarray]:
    """Every view that a set names, of (N, 28, 28, 1) images in [0, 1]."""
    views = {}
    for rows, columns in {*VIEW_SHIFTS, (-2, 0), (2, 0), (0, -2), (0, 2)}:
        # Whole pixels, zeros coming in: what the saved model's padding and cropping do.
        shifted = ndimage.shift(images, (0, rows, columns, 0), order=0, cval=0.0)
        views[f"shift {rows:+d},{columns:+d}"] = shifted
    for degrees in (-10, -5, 5, 10):
        # Linear interpolation keeps values in [0, 1]: each is a convex mix of neighbours.
        rotated = ndimage.rotate(images, degrees, axes=(2, 1), reshape=False, order=1, cval=0.0)
        views[f"rotate {degrees:+d}"] = rotated
    for factor in (0.9, 1.1):
        # About the centre: output pixel p samples centre + (p - centre) / factor.
        centre = (np.array(images.shape[1:3]) - 1) / 2
        matrix = np.diag([1.0, 1 / factor, 1 / factor, 1.0])
        offset = np.array([0.0, *(centre - centre / factor), 0.0])
        views[f"zoom {factor}"] = ndimage.affine_transform(images, matrix, offset, order=1)
    return {name: view.astype(np.float32) for name, view in views.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder trained with a validation split")
    arguments = parser.parse_args()
    run = RunFolder(arguments.run)
    config = run.read_train_config()
    if not config.validation_split:
        raise MnistCnnError(f"{arguments.run}: trained without a validation split")
    split = split_for_training(load_mnist(allow_download=False), config, with_pen_styles=False)
    images, labels = split.validation_images, split.validation_labels
    views = views_of(images)
    members = []  # per member: each view's probabilities
    for checkpoints in run.checkpoints.members() or [run.checkpoints]:
        done = checkpoints.completed_epochs()
        if done < config.epochs:  # still training, or interrupted
            print(f"{checkpoints.run.path}: skipped, {done} of {config.epochs} epochs done")
            continue
        network = load_model(checkpoints.newest_checkpoint())
        by_view = {
            name: network.predict(view, batch_size=1000, verbose=0) for name, view in views.items()
        }
        saved = average_over_shifts(network, 5).predict(images, batch_size=1000, verbose=0)
        difference = np.abs(np.mean([by_view[name] for name in SHIFTS_5], axis=0) - saved).max()
        if difference > 1e-5:
            raise MnistCnnError(f"the 5 shifts here differ from the saved model's by {difference}")
        members.append(by_view)
    rows = []
    for set_name, names in VIEW_SETS.items():
        probabilities = [np.mean([member[name] for name in names], axis=0) for member in members]
        accuracies = [accuracy(member, labels) for member in probabilities]
        averaged = accuracy(np.mean(probabilities, axis=0), labels)
        log_loss = statistics.mean(
            float(-np.log(np.clip(member[np.arange(len(labels)), labels], 1e-12, 1)).mean())
            for member in probabilities
        )
        row = {
            "views": set_name,
            "view_count": len(names),
            "val_accuracies": accuracies,
            "val_accuracy_mean": statistics.mean(accuracies),
            "val_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "averaged_val_accuracy": averaged,
            "val_log_loss_mean": log_loss,
        }
        rows.append(row)
        print(
            f"{set_name} ({len(names)}): one model {100 * row['val_accuracy_mean']:.3f} ± "
            f"{100 * row['val_accuracy_std']:.3f}%, {len(members)} averaged "
            f"{100 * averaged:.2f}%, log-loss {log_loss:.4f} (each: "
            f"{', '.join(f'{100 * value:.2f}' for value in accuracies)})",
            flush=True,
        )
    summary = {
        "machine": describe(),
        "run": str(arguments.run),
        "validation_images": len(labels),
        "rule": RULE,
        "rows": rows,
    }
    out = RESULTS / f"tune_test_time-{arguments.run.resolve().name}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
