"""What one digit costs the API, with and without its explanation, per run and engine.

Times ``answer_pictures`` (reading, the not-a-digit check, the classifier) and then
``explain_answers`` (the occlusion map that ``include=saliency`` adds) on 28x28 MNIST
test digits drawn dark on light, one at a time, in process: medians over 35 digits after
5 warm-ups. Runs named together are measured in one process, side by side.

Usage: python benchmarks/answer_latency.py RUN [RUN ...] [--out FILE]
(each run needs mnist-cnn export first for ONNX)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from machine import describe
from mnist_cnn.data import load_mnist
from mnist_cnn.engines import load_classifier
from mnist_cnn.explain import explain_answers
from mnist_cnn.prediction import answer_pictures
from mnist_cnn.reading import Picture

RESULTS = Path(__file__).parent / "results"
WARM_UPS, TIMED = 5, 35


def median_milliseconds(classifier, digits: np.ndarray, saliency: bool) -> float:
    times = []
    for index, digit in enumerate(digits[: WARM_UPS + TIMED]):
        # Dark ink on light paper, as people's pictures come.
        picture = Picture(name=f"test[{index}]", gray=1.0 - digit.astype(np.float32) / 255)
        start = time.perf_counter()
        answers = answer_pictures([picture], classifier)
        if saliency:
            explain_answers(answers, classifier)
        if index >= WARM_UPS:
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "answer_latency.json", help="(default: %(default)s)"
    )
    arguments = parser.parse_args()

    digits = load_mnist(allow_download=False).test_images
    rows = []
    print(f"machine: {describe()}")
    print(f"{'run':40s} {'engine':6s} {'answer ms':>10s} {'with saliency ms':>17s}")
    for run in arguments.runs:
        for engine in ("keras", "onnx"):
            classifier = load_classifier(run, engine=engine)
            answer = median_milliseconds(classifier, digits, saliency=False)
            explained = median_milliseconds(classifier, digits, saliency=True)
            rows.append({"run": str(run), "engine": engine, "answer_ms_p50": answer,
                         "answer_with_saliency_ms_p50": explained})  # fmt: skip
            print(f"{run!s:40s} {engine:6s} {answer:10.1f} {explained:17.1f}", flush=True)
    arguments.out.write_text(json.dumps({"machine": describe(), "rows": rows}, indent=2))
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
