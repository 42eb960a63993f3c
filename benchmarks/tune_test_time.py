"""Choose the number of test-time views on validation data only (never the test set).

Takes a run trained with a validation split (``--validation-split 0.16667``
holds out the last 10k training images) and scores each member's final
checkpoint, and the members' average, on those held-out images when the model
averages over 1, 5 or 9 views (the image and its 1-pixel shifts,
``models.average_over_shifts``).

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

from machine import describe
from mnist_cnn.config import TEST_TIME_VIEWS
from mnist_cnn.data import load_mnist
from mnist_cnn.engines import load_model
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.evaluation import accuracy
from mnist_cnn.models import average_over_shifts
from mnist_cnn.run_folder import RunFolder
from mnist_cnn.training import split_for_training

RESULTS = Path(__file__).parent / "results"


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
    networks = []
    for checkpoints in run.checkpoints.members() or [run.checkpoints]:
        done = checkpoints.completed_epochs()
        if done < config.epochs:  # still training, or interrupted
            print(f"{checkpoints.run.path}: skipped, {done} of {config.epochs} epochs done")
            continue
        networks.append(load_model(checkpoints.newest_checkpoint()))
    rows = []
    for views in TEST_TIME_VIEWS:
        probabilities = [
            average_over_shifts(network, views).predict(images, batch_size=1000, verbose=0)
            for network in networks
        ]
        accuracies = [accuracy(member, labels) for member in probabilities]
        averaged = accuracy(np.mean(probabilities, axis=0), labels)
        row = {
            "views": views,
            "val_accuracies": accuracies,
            "val_accuracy_mean": statistics.mean(accuracies),
            "val_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "averaged_val_accuracy": averaged,
        }
        rows.append(row)
        print(
            f"{views} view(s): one model {100 * row['val_accuracy_mean']:.3f} ± "
            f"{100 * row['val_accuracy_std']:.3f}%, {len(networks)} averaged "
            f"{100 * averaged:.2f}% ({len(labels)} held-out images; each: "
            f"{', '.join(f'{100 * value:.2f}' for value in accuracies)})",
            flush=True,
        )
    summary = {
        "machine": describe(),
        "run": str(arguments.run),
        "validation_images": len(labels),
        "rows": rows,
    }
    out = RESULTS / f"tune_test_time-{arguments.run.resolve().name}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
