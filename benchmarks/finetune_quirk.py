"""Does `mnist-cnn finetune` learn one user's handwriting without forgetting MNIST?

End to end, as a user would go: a `fast` run (trained here on the first 50k
training images, so that MNIST's validation split, the last 10k, stays unseen;
or ``--model RUN``) reads 100 pictures of a simulated user's quirks (sevens with
a bar, open fours, ones with a long flag: ``quirky_digits.py``, seed 1), drawn
and prepared as the drawing page does. The user confirms or corrects each
answer, so all 100 come with their true labels; they are written as the
``.npz`` that ``mnist-cnn feedback export`` writes and given to
``mnist-cnn finetune RUN --feedback corrections.npz`` in a fresh interpreter.

Then both models read NEW pictures of the same quirks (seed 2, never used to
choose anything), and the script prints the quirk error rate before and after,
the held-out corrections' accuracy before and after, and MNIST's validation
and test accuracy before and after (from the new run's metrics.json).

Usage: python benchmarks/finetune_quirk.py [--model RUN] [--corrections 100] [--new 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"
SOURCE_LIMIT = 50_000  # the first 50k: the validation split stays unseen by the source model
CORRECTIONS_SEED = 1
NEW_PICTURES_SEED = 2  # never used to choose anything (tune_finetune.py uses seed 3)


def source_run(model: Path | None, dataset) -> Path:
    """``model``, or a fast run trained on the first 50k training images (seed 0)."""
    if model is not None:
        return model
    from mnist_cnn.config import preset_config
    from mnist_cnn.pipeline import train_run

    run_dir = Path(tempfile.mkdtemp(prefix="finetune-source-")) / "fast-50k"
    print(f"training a fast run on the first {SOURCE_LIMIT} images in {run_dir}", flush=True)
    train_run(preset_config("fast", limit=SOURCE_LIMIT, seed=0), dataset, run_dir)
    return run_dir


def per_quirk_errors(classes: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from quirky_digits import QUIRKS

    return {
        name: 100 * float(np.mean(classes[labels == label] != label))
        for name, (label, _) in QUIRKS.items()
    }


def main() -> None:
    from machine import describe
    from mnist_cnn.data import load_mnist
    from mnist_cnn.engines import load_model
    from mnist_cnn.prediction import predict
    from quirky_digits import quirky_digits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="the run to fine-tune")
    parser.add_argument("--corrections", type=int, default=100, help="corrections the user gives")
    parser.add_argument("--new", type=int, default=600, help="new pictures to score on")
    arguments = parser.parse_args()

    dataset = load_mnist(allow_download=False)
    source = source_run(arguments.model, dataset)
    work = Path(tempfile.mkdtemp(prefix="finetune-quirk-"))
    correction_images, correction_labels = quirky_digits(arguments.corrections, CORRECTIONS_SEED)
    np.savez(work / "corrections.npz", x_train=correction_images, y_train=correction_labels)
    tuned_run = work / "tuned"
    command = [
        sys.executable, "-m", "mnist_cnn", "finetune", str(source),
        "--feedback", str(work / "corrections.npz"), "--run-dir", str(tuned_run),
    ]  # fmt: skip
    print(" ".join(command), flush=True)
    completed = subprocess.run(command, capture_output=True, text=True)
    print(completed.stdout + completed.stderr, flush=True)
    if completed.returncode != 0:
        raise SystemExit(f"finetune failed with exit code {completed.returncode}")

    new_images, new_labels = quirky_digits(arguments.new, NEW_PICTURES_SEED)
    before = predict(load_model(source), new_images).classes
    after = predict(load_model(tuned_run), new_images).classes
    metrics = json.loads((tuned_run / "metrics.json").read_text())
    figures = metrics["finetune"]
    results = {
        "machine": describe(),
        "source": str(source),
        "corrections": arguments.corrections,
        "new_pictures": arguments.new,
        "quirk_error_before_percent": 100 * float(np.mean(before != new_labels)),
        "quirk_error_after_percent": 100 * float(np.mean(after != new_labels)),
        "quirk_error_before_by_quirk": per_quirk_errors(before, new_labels),
        "quirk_error_after_by_quirk": per_quirk_errors(after, new_labels),
        "corrections_accuracy_before_percent": 100 * figures["corrections_accuracy_before"],
        "held_out": figures["held_out"],
        "held_out_accuracy_before_percent": 100 * figures["held_out_accuracy_before"],
        "held_out_accuracy_after_percent": 100 * figures["held_out_accuracy_after"],
        "validation_accuracy_before_percent": 100 * figures["validation_accuracy_before"],
        "validation_accuracy_after_percent": 100 * figures["validation_accuracy_after"],
        "test_accuracy_before_percent": 100 * figures["test_accuracy_before"],
        "test_accuracy_after_percent": 100 * metrics["test_accuracy"],
        "guard_passed": figures["guard_passed"],
        "finetune_seconds": figures["train_seconds"],
        "recipe": json.loads((tuned_run / "config.json").read_text())["finetuned_from"]["recipe"],
    }
    print(
        f"\n| | before | after |\n|---|---|---|\n"
        f"| quirk error on {arguments.new} new pictures | "
        f"{results['quirk_error_before_percent']:.1f}% | "
        f"{results['quirk_error_after_percent']:.1f}% |\n"
        f"| held-out corrections ({figures['held_out']}) accuracy | "
        f"{results['held_out_accuracy_before_percent']:.1f}% | "
        f"{results['held_out_accuracy_after_percent']:.1f}% |\n"
        f"| MNIST validation accuracy (last 10k) | "
        f"{results['validation_accuracy_before_percent']:.2f}% | "
        f"{results['validation_accuracy_after_percent']:.2f}% |\n"
        f"| MNIST test accuracy | {results['test_accuracy_before_percent']:.2f}% | "
        f"{results['test_accuracy_after_percent']:.2f}% |"
    )
    for name in results["quirk_error_before_by_quirk"]:
        print(
            f"{name}: {results['quirk_error_before_by_quirk'][name]:.1f}% -> "
            f"{results['quirk_error_after_by_quirk'][name]:.1f}%"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "finetune_quirk.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
