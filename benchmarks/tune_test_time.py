"""Choose the test-time views on validation data only (never the test set).

Takes a run trained with a validation split (``--validation-split 0.16667``
holds out the last 10k training images) and scores each member's final
checkpoint, and the members' average, on those held-out images when its
probabilities are averaged over each of several sets of views: the saved
model's 1, 5 or 9 (the image and its 1-pixel shifts, ``models.average_over_shifts``)
and candidate sets that add 2-pixel shifts, rotations by ±5° and ±10°, or zooms
to 90% and 110% (bilinear, made with scipy.ndimage). The shifted images are checked,
pixel for pixel, against the saved model's own shifting layers first. The rule below
then says whether a candidate set replaces the run's own views.

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
from mnist_cnn.evaluation import accuracy, cross_entropy
from mnist_cnn.models import VIEW_SHIFTS, shifted_views
from mnist_cnn.run_folder import RunFolder
from mnist_cnn.training import split_for_training

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def shift_name(rows: int, columns: int) -> str:
    return f"shift {rows:+d},{columns:+d}"


SHIFTS_9 = [shift_name(rows, columns) for rows, columns in VIEW_SHIFTS]
SHIFTS_5 = SHIFTS_9[:5]
TWO_PIXEL_SHIFTS = ((-2, 0), (2, 0), (0, -2), (0, 2))
TWO_PIXELS = [shift_name(rows, columns) for rows, columns in TWO_PIXEL_SHIFTS]
ROTATIONS_5 = ["rotate -5", "rotate +5"]
ROTATIONS_10 = ["rotate -10", "rotate +10"]
ZOOMS = ["zoom 0.9", "zoom 1.1"]
# The sets scored: the saved model's three first (by its test_time_views), then the candidates.
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
SAVED_VIEWS = {1: "1 view", 5: "5 shifts", 9: "9 shifts"}
# Fixed before the first scores of the candidate sets were seen (2026-11-28).
RULE = (
    "take the set whose members' averaged probabilities score best held out (on a tie, the "
    "better mean per model, then fewer views); it replaces the preset's views only if it "
    "beats them by at least 3 images averaged and its mean per model is not lower"
)


def views_of(images: np.ndarray) -> dict[str, np.ndarray]:
    """Every view that a set names, of (N, 28, 28, 1) images in [0, 1]."""
    views = {}
    for rows, columns in (*VIEW_SHIFTS, *TWO_PIXEL_SHIFTS):
        # Whole pixels, zeros coming in: what the saved model's padding and cropping do.
        shifted = ndimage.shift(images, (0, rows, columns, 0), order=0, cval=0.0)
        views[shift_name(rows, columns)] = shifted
    for degrees in (-10, -5, 5, 10):
        # Linear interpolation keeps values in [0, 1]: each is a convex mix of neighbours.
        rotated = ndimage.rotate(images, degrees, axes=(2, 1), reshape=False, order=1, cval=0.0)
        views[f"rotate {degrees:+d}"] = rotated
    centre = (np.array(images.shape[1:3]) - 1) / 2
    for factor in (0.9, 1.1):
        # About the centre: output pixel p samples centre + (p - centre) / factor.
        matrix = np.diag([1.0, 1 / factor, 1 / factor, 1.0])
        offset = np.array([0.0, *(centre - centre / factor), 0.0])
        views[f"zoom {factor}"] = ndimage.affine_transform(images, matrix, offset, order=1)
    return {name: view.astype(np.float32, copy=False) for name, view in views.items()}


def check_shifts(images: np.ndarray, views: dict[str, np.ndarray]) -> None:
    """Each shifted view here, pixel for pixel, as the saved model's layers shift it."""
    import keras

    inputs = keras.Input(shape=images.shape[1:])
    shifter = keras.Model(inputs, shifted_views(inputs, len(VIEW_SHIFTS)))
    for name, shifted in zip(SHIFTS_9, shifter.predict(images[:500], verbose=0), strict=True):
        if not np.array_equal(shifted, views[name][:500]):
            raise MnistCnnError(f"{name} here is not the saved model's {name}")


def chosen(rows: list[dict], saved: str, image_count: int) -> str:
    """The set that RULE picks from the scored rows: a candidate, or the saved model's."""
    best = max(
        rows,
        key=lambda row: (
            row["averaged_val_accuracy"],
            row["val_accuracy_mean"],
            -row["view_count"],
        ),
    )
    (own,) = [row for row in rows if row["views"] == saved]
    gained = round((best["averaged_val_accuracy"] - own["averaged_val_accuracy"]) * image_count)
    if gained >= 3 and best["val_accuracy_mean"] >= own["val_accuracy_mean"]:
        return best["views"]
    return saved


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
    check_shifts(images, views)
    members = []  # per member: each view's probabilities
    for checkpoints in run.checkpoints.members() or [run.checkpoints]:
        done = checkpoints.completed_epochs()
        if done < config.epochs:  # still training, or interrupted
            print(f"{checkpoints.run.path}: skipped, {done} of {config.epochs} epochs done")
            continue
        network = load_model(checkpoints.newest_checkpoint())
        members.append(
            {
                name: network.predict(view, batch_size=1000, verbose=0)
                for name, view in views.items()
            }
        )
    rows = []
    for set_name, names in VIEW_SETS.items():
        probabilities = [np.mean([member[name] for name in names], axis=0) for member in members]
        accuracies = [accuracy(member, labels) for member in probabilities]
        averaged = accuracy(np.mean(probabilities, axis=0), labels)
        log_loss = statistics.mean(cross_entropy(member, labels) for member in probabilities)
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
    saved = SAVED_VIEWS[config.test_time_views]
    choice = chosen(rows, saved, len(labels))
    print(f"the rule keeps {choice!r}" if choice == saved else f"the rule picks {choice!r}")
    run_path = arguments.run.resolve()
    summary = {
        "machine": describe(),
        "run": str(run_path.relative_to(ROOT) if run_path.is_relative_to(ROOT) else run_path),
        "validation_images": len(labels),
        "rule": RULE,
        "saved_views": saved,
        "chosen": choice,
        "rows": rows,
    }
    out = RESULTS / f"tune_test_time-{run_path.name}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
