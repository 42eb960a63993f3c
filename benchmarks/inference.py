"""Inference speed of a trained run, Keras against ONNX Runtime, side by side.

* throughput: images per second over the 10k test set at batch 1,000;
* latency: one image at a time, p50 and p99 (the model called directly, not
  ``model.predict``, which builds a data pipeline per call; shown for contrast);
* cold start: wall time of a whole ``mnist-cnn predict`` process on one image.

Usage: python benchmarks/inference.py [--model runs/latest] [--out FILE]
(needs mnist-cnn export first for ONNX)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

from machine import describe
from mnist_cnn.data import load_mnist
from mnist_cnn.engines import (
    keras_probability_function,
    load_model,
    load_onnx_classifier,
    resolve_onnx_path,
)
from mnist_cnn.preprocess import to_model_input

RESULTS = Path(__file__).parent / "results"


def throughput(probabilities, images: np.ndarray, repeats: int = 5) -> float:
    probabilities(images[:1000])  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, len(images), 1000):
            probabilities(images[start : start + 1000])
        times.append(time.perf_counter() - started)
    return len(images) / statistics.median(times)


def latency_ms(probabilities, images: np.ndarray, calls: int = 500) -> tuple[float, float]:
    for index in range(20):
        probabilities(images[index : index + 1])
    times = []
    for index in range(calls):
        started = time.perf_counter()
        probabilities(images[index : index + 1])
        times.append(1000 * (time.perf_counter() - started))
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def cold_start_seconds(model: Path, engine: str, picture: Path, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mnist_cnn", "predict", "--engine", engine,
             "--model", str(model), str(picture)],
            check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path("runs/latest"), help="(default: runs/latest)"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "inference.json", help="(default: %(default)s)"
    )
    arguments = parser.parse_args()

    dataset = load_mnist(allow_download=False)
    images = to_model_input(dataset.test_images)
    model = load_model(arguments.model)
    engines = {"keras": keras_probability_function(model, compiled=True)}  # as load_classifier
    resolve_onnx_path(arguments.model)  # a clear message if the export is missing
    engines["onnx"] = load_onnx_classifier(arguments.model).probabilities

    with tempfile.TemporaryDirectory() as folder:
        picture = Path(folder) / "seven.png"
        Image.fromarray(255 - dataset.test_images[0]).resize((200, 200)).save(picture)
        rows = []
        for name, probabilities in engines.items():
            p50, p99 = latency_ms(probabilities, images)
            rows.append(
                {
                    "engine": name,
                    "images_per_second_batch_1000": throughput(probabilities, images),
                    "latency_ms_p50": p50,
                    "latency_ms_p99": p99,
                    "cold_start_seconds": cold_start_seconds(arguments.model, name, picture),
                }
            )
    predict_p50, predict_p99 = latency_ms(
        lambda batch: model.predict(batch, verbose=0), images, 100
    )

    print(f"machine: {describe()}; model {arguments.model}")
    print(f"{'engine':8s} {'images/s (batch 1000)':>22s} {'1-image p50':>12s} {'p99':>8s} "
          f"{'cold start of predict':>22s}")  # fmt: skip
    for row in rows:
        print(
            f"{row['engine']:8s} {row['images_per_second_batch_1000']:22,.0f} "
            f"{row['latency_ms_p50']:10.2f}ms {row['latency_ms_p99']:6.2f}ms "
            f"{row['cold_start_seconds']:21.2f}s"
        )
    print(f"(Keras model.predict for one image, for contrast: p50 {predict_p50:.1f} ms, "
          f"p99 {predict_p99:.1f} ms)")  # fmt: skip
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(
        json.dumps(
            {"machine": describe(), "model": str(arguments.model), "rows": rows,
             "keras_model_predict_latency_ms": {"p50": predict_p50, "p99": predict_p99}},
            indent=2,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
