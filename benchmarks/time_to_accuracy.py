"""Time to accuracy: every preset against the tutorial's model, side by side, in one run.

For each preset and seed: train on the full 60k training images (the
presets' own validation splits), timing the training wall time inside the
process with the data already loaded. After every epoch the test accuracy is
measured for this report only; that time is excluded, and nothing is chosen
on it (presets were tuned on the held-out split: benchmarks/tune_presets.py).
The tutorial's model trains on past its 5 epochs until its test accuracy
reaches 99.0% (at most 20 epochs), so that every speed-up to 99.0% is a
number, not a lower bound. With --peer-python, the plain-PyTorch peer
(benchmarks/pytorch_peer.py: the fast net with its two-epoch recipe of before, batch 256
and no test-time views, in ordinary PyTorch) runs
in that interpreter's environment as one more row, and every preset's time to
99.0% is compared with it.

A preset in --presets may carry changes, as in fast:epochs=2:batch_size=256:test_time_views=1
(fast's two-epoch recipe of before, or a candidate chosen on the held-out split, timed
beside the presets; JSON values, as train_candidate.py takes them).

Usage: python benchmarks/time_to_accuracy.py [--seeds 3] [--presets tutorial,fast,...]
       [--peer-python .venv-torch/bin/python] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from machine import describe
from mnist_cnn.config import PRESETS, TrainConfig, preset_config, preset_name
from mnist_cnn.data import load_mnist
from mnist_cnn.evaluation import evaluate
from mnist_cnn.models import average_over_shifts, build_model, forward_flops_per_image
from mnist_cnn.run_folder import library_versions
from mnist_cnn.training import split_for_training, train
from train_candidate import parse_change

RESULTS = Path(__file__).parent / "results"
TARGETS = (0.99, 0.995)
DEFAULT_PRESETS = ("tutorial", "keras_io", "fast", "accurate")
REFERENCE_PRESET = "tutorial"  # every speed-up is against the tutorial's model
REFERENCE_MAX_EPOCHS = 20  # the tutorial's model trains on to 99.0%, at most this long
PEER = "pytorch_peer"
PEER_SCRIPT = Path(__file__).parent / "pytorch_peer.py"
HONESTY = (
    "Hyperparameters, epoch counts and checkpoints were chosen on held-out validation data "
    "(the last 10k training images), never on the test set; presets that train on all 60k "
    "use those settings. Test accuracy after each epoch is measured for this report only."
)


class TestProbe(keras.callbacks.Callback):
    """Test accuracy after each epoch, with the time it takes kept off the clock.

    With ``stop_at``, training stops once the test accuracy reaches it: a
    measurement of time to accuracy, not a choice of model. With ``views`` > 1 the
    net is scored as the preset saves it, averaging over its test-time views.
    """

    def __init__(
        self, dataset, started: float, stop_at: float | None = None, views: int = 1
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.views = views
        self.started = started
        self.stop_at = stop_at
        self.probe_seconds = 0.0
        self.points: list[tuple[float, float]] = []  # (training seconds so far, test accuracy)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        scored = average_over_shifts(self.model, self.views)
        accuracy = evaluate(scored, self.dataset.test_images, self.dataset.test_labels).accuracy
        self.points.append((now - self.started - self.probe_seconds, accuracy))
        if self.stop_at is not None and accuracy >= self.stop_at:
            self.model.stop_training = True
        self.probe_seconds += time.perf_counter() - now


def config_for(row: str) -> TrainConfig:
    """A row's training settings: a preset, or a preset with changes (fast:epochs=1:...),
    each NAME=VALUE as ``train_candidate.py`` reads them."""
    name, *changes = row.split(":")
    return preset_config(name, **dict(parse_change(change) for change in changes))


def is_reference(row: str) -> bool:
    """The tutorial's own row (under any of its names), not a changed copy of it."""
    return ":" not in row and preset_name(row) == REFERENCE_PRESET


def run_once(preset: str, seed: int, dataset, epochs: int | None) -> dict:
    changes = {"seed": seed}
    stop_at = None
    if epochs is not None:
        changes["epochs"] = epochs
    elif is_reference(preset):
        changes["epochs"], stop_at = REFERENCE_MAX_EPOCHS, TARGETS[0]
    config = dataclasses.replace(config_for(preset), **changes)
    started = time.perf_counter()
    probe = TestProbe(dataset, started, stop_at, views=config.test_time_views)
    train(config, dataset, callbacks=[probe])
    wall = time.perf_counter() - started - probe.probe_seconds
    reached = {
        str(target): next((seconds for seconds, acc in probe.points if acc >= target), None)
        for target in TARGETS
    }
    split = split_for_training(dataset, config, with_pen_styles=False)
    images_per_epoch = len(split.train_images)
    # The net that trains, not the saved model's test-time views around it.
    flops = forward_flops_per_image(build_model(config))
    epochs_trained = len(probe.points)
    return {
        "preset": preset,
        "seed": seed,
        "epochs": epochs_trained,
        "train_seconds": wall,
        "test_accuracy": probe.points[-1][1],
        "test_accuracy_per_epoch": [accuracy for _, accuracy in probe.points],
        "seconds_per_epoch_end": [seconds for seconds, _ in probe.points],
        "seconds_to": reached,
        # Training costs about three forward passes per image (forward + backward).
        "gflops_per_second": 3 * flops * images_per_epoch * epochs_trained / wall / 1e9,
    }


def run_peer(python: str, seeds: int, dataset) -> list[dict]:
    """The plain-PyTorch peer's runs, trained in ``python``'s own environment."""
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "mnist.npz"
        np.savez(
            data,
            x_train=dataset.train_images,
            y_train=dataset.train_labels,
            x_test=dataset.test_images,
            y_test=dataset.test_labels,
        )
        command = [python, str(PEER_SCRIPT), str(data), "--seeds", str(seeds)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    measured = json.loads(output)
    for run in measured["runs"]:
        run["versions"] = measured["versions"]
        run["gflops_per_second"] = None  # the net's FLOPs are the fast preset's
    return measured["runs"]


def summarise(preset: str, runs: list[dict], seed_reference: dict | None) -> dict:
    # The peer is the fast net written in PyTorch: the same parameters and FLOPs.
    model = build_model(PRESETS["fast"] if preset == PEER else config_for(preset))
    accuracies = [run["test_accuracy"] for run in runs]
    seconds = statistics.median(run["train_seconds"] for run in runs)
    epochs = sorted({run["epochs"] for run in runs})

    def median_time_to(target: float) -> float | None:
        times = [run["seconds_to"][str(target)] for run in runs]
        return statistics.median(times) if all(t is not None for t in times) else None

    rates = [run["gflops_per_second"] for run in runs if run.get("gflops_per_second")]
    row = {
        "preset": preset,
        "parameters": int(model.count_params()),
        "mflops_per_image": forward_flops_per_image(model) / 1e6,
        # Seeds of the tutorial's row can stop at different epochs: "7-9".
        "epochs": str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}",
        "seeds": len(runs),
        "train_seconds_median": seconds,
        "test_accuracy_mean": statistics.mean(accuracies),
        "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "seconds_to_99_0": median_time_to(0.99),
        "seconds_to_99_5": median_time_to(0.995),
        "gflops_per_second": statistics.median(rates) if rates else None,
    }
    if seed_reference is not None:
        reference, own = seed_reference["seconds_to_99_0"], row["seconds_to_99_0"]
        if reference is not None and own is not None:
            row["speedup_to_99_0"] = reference / own
        elif own is not None:
            # The tutorial's model never reached 99.0% in its whole run: the
            # speed-up is at least its full training time over ours to 99.0%.
            row["speedup_to_99_0_at_least"] = seed_reference["train_seconds_median"] / own
        row["speedup_train_time"] = seed_reference["train_seconds_median"] / seconds
    return row


def compare_with_peer(rows: list[dict]) -> None:
    """Each row's speed-up to 99.0% over the plain-PyTorch peer (above 1: faster)."""
    peer = next((row for row in rows if row["preset"] == PEER), None)
    if peer is None or peer["seconds_to_99_0"] is None:
        return
    for row in rows:
        if row["seconds_to_99_0"] is not None:
            row["speedup_to_99_0_vs_pytorch"] = peer["seconds_to_99_0"] / row["seconds_to_99_0"]


def speedup_text(row: dict) -> str:
    if row.get("speedup_to_99_0") is not None:
        return f"{row['speedup_to_99_0']:.1f}×"
    if row.get("speedup_to_99_0_at_least") is not None:
        return f">{row['speedup_to_99_0_at_least']:.1f}×"
    return "–"


def format_table(rows: list[dict]) -> str:
    def number(value, digits=1, suffix=""):
        return "–" if value is None else f"{value:.{digits}f}{suffix}"

    header = (
        f"{'preset':12s} {'params':>9s} {'MFLOP/img':>9s} {'epochs':>6s} {'train s':>8s} "
        f"{'test accuracy':>16s} {'s→99.0%':>8s} {'s→99.5%':>8s} {'×tut→99':>8s} "
        f"{'×tut time':>10s} {'×PyTorch→99':>11s} {'GFLOP/s':>8s}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        accuracy = f"{100 * row['test_accuracy_mean']:.2f} ± {100 * row['test_accuracy_std']:.2f}%"
        lines.append(
            f"{row['preset']:12s} {row['parameters']:9,d} {row['mflops_per_image']:9.2f} "
            f"{row['epochs']:>6s} {row['train_seconds_median']:8.1f} {accuracy:>16s} "
            f"{number(row['seconds_to_99_0']):>8s} {number(row['seconds_to_99_5']):>8s} "
            f"{speedup_text(row):>8s} "
            f"{number(row.get('speedup_train_time'), 1, '×'):>10s} "
            f"{number(row.get('speedup_to_99_0_vs_pytorch'), 2, '×'):>11s} "
            f"{number(row['gflops_per_second']):>8s}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per preset (default: 3)")
    parser.add_argument(
        "--presets", default=",".join(DEFAULT_PRESETS),
        help=f"comma-separated presets, tutorial first (default: {','.join(DEFAULT_PRESETS)})",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None,
        help="results file (default: results/time_to_accuracy[-quick].json)",
    )  # fmt: skip
    parser.add_argument(
        "--table-from",
        type=Path,
        default=None,
        metavar="JSON",
        help="print the table again from a results file, without training",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="one seed, at most 2 epochs per preset: a smoke run in a few minutes",
    )  # fmt: skip
    parser.add_argument(
        "--peer-python", default=None, metavar="PYTHON",
        help="an interpreter with PyTorch (make .venv-torch/bin/python): adds the peer row",
    )  # fmt: skip
    arguments = parser.parse_args()
    presets = arguments.presets.split(",")
    seeds = 1 if arguments.quick else arguments.seeds
    if arguments.table_from:
        stored = json.loads(arguments.table_from.read_text())
        stored["rows"] = rows_from(stored["runs"])
        print(f"machine: {stored['machine']}; {stored['date']}")
        print(format_table(stored["rows"]))
        arguments.table_from.write_text(json.dumps(stored, indent=2))
        return

    dataset = load_mnist(allow_download=False)
    machine = describe()
    print(f"machine: {machine}; seeds: {seeds}; {HONESTY}", flush=True)
    name = "time_to_accuracy-quick.json" if arguments.quick else "time_to_accuracy.json"
    out = arguments.out or RESULTS / name
    all_runs: list[dict] = []

    def write() -> None:
        # After every preset: a long benchmark stopped part-way keeps what it measured.
        RESULTS.mkdir(exist_ok=True)
        out.write_text(
            json.dumps(
                {"machine": machine, "honesty": HONESTY, "versions": library_versions(),
                 "date": time.strftime("%Y-%m-%d"), "rows": rows_from(all_runs),
                 "runs": all_runs},
                indent=2,
            )
        )  # fmt: skip

    if arguments.peer_python:
        all_runs.extend(run_peer(arguments.peer_python, seeds, dataset))
        for run in all_runs:
            print(f"  {PEER} seed {run['seed']}: {run['train_seconds']:.1f}s, "
                  f"test {100 * run['test_accuracy']:.2f}%", flush=True)  # fmt: skip
        write()
    for preset in presets:
        epochs = min(2, config_for(preset).epochs) if arguments.quick else None
        for seed in range(seeds):
            run = run_once(preset, seed, dataset, epochs)
            all_runs.append(run)
            print(
                f"  {preset} seed {seed}: {run['train_seconds']:.1f}s, "
                f"test {100 * run['test_accuracy']:.2f}%",
                flush=True,
            )
        write()
    print()
    print(format_table(rows_from(all_runs)))
    print(f"\nwrote {out}")
    sys.stdout.flush()


def rows_from(runs: list[dict]) -> list[dict]:
    """One summary row per preset, in the runs' order, each compared with the tutorial's."""
    names = list(dict.fromkeys(run["preset"] for run in runs))

    def runs_of(name: str) -> list[dict]:
        return [run for run in runs if run["preset"] == name]

    reference_name = next((name for name in names if name != PEER and is_reference(name)), None)
    reference = summarise(reference_name, runs_of(reference_name), None) if reference_name else None
    rows = [summarise(name, runs_of(name), reference) for name in names]
    compare_with_peer(rows)
    return rows


if __name__ == "__main__":
    main()
