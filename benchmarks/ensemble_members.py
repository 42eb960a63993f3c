"""Report an ensemble run's members one by one beside the ensemble (for the README only).

Each member's final checkpoint is evaluated on the test set, with the
training seconds from its own history; nothing is chosen on these numbers.
``--test-time-views N`` scores the members as ``mnist-cnn train
--test-time-views N`` would have saved them (the views change no training).

Usage: python benchmarks/ensemble_members.py RUN_DIR [--test-time-views 5]
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
from mnist_cnn.evaluation import accuracy, evaluate
from mnist_cnn.models import average_over_shifts
from mnist_cnn.run_folder import RunFolder

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder trained with --ensemble K")
    parser.add_argument(
        "--test-time-views", type=int, choices=TEST_TIME_VIEWS, default=1,
        help="average each member over the image and its 1-pixel shifts (default: 1)",
    )  # fmt: skip
    arguments = parser.parse_args()
    dataset = load_mnist(allow_download=False)
    members, probabilities = [], []
    for checkpoints in RunFolder(arguments.run).checkpoints.members():
        folder = checkpoints.run.path
        network = load_model(checkpoints.newest_checkpoint())
        model = average_over_shifts(network, arguments.test_time_views)
        evaluation = evaluate(model, dataset.test_images, dataset.test_labels)
        probabilities.append(evaluation.predictions.probabilities)
        seconds = sum(row["seconds"] for row in RunFolder(folder).read_history())
        members.append(
            {"member": folder.name, "test_accuracy": evaluation.accuracy, "train_seconds": seconds}
        )
        print(f"{folder.name}: {100 * evaluation.accuracy:.2f}% in {seconds:.0f}s", flush=True)
    # Ensembles of the first k members, k = 1..K: what --ensemble k would give.
    labels = dataset.test_labels
    by_size = {
        str(size): accuracy(np.mean(probabilities[:size], axis=0), labels)
        for size in range(1, len(probabilities) + 1)
    }
    for size, share in by_size.items():
        print(f"ensemble of the first {size}: {100 * share:.2f}%")
    metrics = RunFolder(arguments.run).read_metrics()
    accuracies = [member["test_accuracy"] for member in members]
    summary = {
        "machine": describe(),
        "run": str(arguments.run),
        "test_time_views": arguments.test_time_views,
        "members": members,
        "member_accuracy_mean": statistics.mean(accuracies),
        "member_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "member_seconds_median": statistics.median(m["train_seconds"] for m in members),
        "ensemble_test_accuracy": by_size[str(len(members))],
        "first_k_ensemble_accuracy": by_size,
        "ensemble_train_seconds": metrics.get("train_seconds"),
    }
    print(
        f"members {100 * summary['member_accuracy_mean']:.2f} ± "
        f"{100 * summary['member_accuracy_std']:.2f}%; ensemble of {len(members)}: "
        f"{100 * summary['ensemble_test_accuracy']:.2f}%"
    )
    views = arguments.test_time_views
    name = "best_ensemble.json" if views == 1 else f"best_ensemble-{views}-views.json"
    (RESULTS / name).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
