"""Where the fast net's epoch goes: Keras ``fit`` against the bare compiled training step.

For each batch size, one fast net per way of feeding it (bfloat16 where the CPU has it,
as the preset trains), each trained for whole epochs of random data of MNIST's size,
interleaved, after a warm-up: ``fit`` over NumPy (what training does), ``fit`` over a
pre-batched ``tf.data`` input, ``fit`` with ``steps_per_execution=16``, and the compiled
``train_step`` looped over batches already in memory (no callbacks, no data adapter). The
medians say what ``fit`` itself costs per step. TensorFlow only.

Usage: python benchmarks/fit_overhead.py [--batch-sizes 128,256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from machine import describe
from mnist_cnn.config import PRESETS
from mnist_cnn.models import build_model, compile_model, dtype_policy, resolve_precision
from mnist_cnn.run_folder import library_versions

RESULTS = Path(__file__).parent / "results"
IMAGES = 60_000
WAYS = ("fit over NumPy", "fit over tf.data", "fit, steps_per_execution 16", "bare step loop")


def _nets(batch_size: int, images: np.ndarray, labels: np.ndarray) -> dict:
    """One compiled fast net per way, each with its own epoch function, warmed up."""
    import keras
    import tensorflow as tf

    config = resolve_precision(dataclasses.replace(PRESETS["fast"], batch_size=batch_size))
    keras.mixed_precision.set_dtype_policy(dtype_policy(config.precision))
    steps = IMAGES // batch_size
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(2)
    starts = range(0, IMAGES, batch_size)
    batches = [
        (tf.constant(images[at : at + batch_size]), tf.constant(labels[at : at + batch_size]))
        for at in starts
    ]
    epochs = {}
    for way in WAYS:
        model = compile_model(build_model(config), config, steps_per_epoch=steps)
        if way == "fit, steps_per_execution 16":
            model.compile(
                optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"],
                steps_per_execution=16, jit_compile=False,
            )  # fmt: skip
        if way == "bare step loop":
            step = tf.function(lambda x, y, model=model: model.train_step((x, y)))

            def epoch(step=step) -> None:
                for x, y in batches:
                    logs = step(x, y)
                float(logs["loss"])  # wait for the last step

        elif way == "fit over tf.data":

            def epoch(model=model) -> None:
                model.fit(dataset, epochs=1, verbose=0)

        else:

            def epoch(model=model) -> None:
                model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)

        epochs[way] = epoch
        epoch()  # warm-up: tracing and the first epoch's allocations
    return epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="128,256", help="(default: 128,256)")
    parser.add_argument("--repeats", type=int, default=5, help="epochs per way (default: 5)")
    parser.add_argument("--out", type=Path, default=RESULTS / "fit_overhead.json")
    arguments = parser.parse_args()
    generator = np.random.default_rng(0)
    images = generator.random((IMAGES, 28, 28, 1), dtype=np.float32)
    labels = generator.integers(0, 10, IMAGES)
    rows = []
    for batch_size in map(int, arguments.batch_sizes.split(",")):
        epochs = _nets(batch_size, images, labels)
        seconds: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(arguments.repeats):
            for way, epoch in epochs.items():
                started = time.perf_counter()
                epoch()
                seconds[way].append(time.perf_counter() - started)
        steps = IMAGES // batch_size
        for way in WAYS:
            median = statistics.median(seconds[way])
            rows.append(
                {"batch_size": batch_size, "way": way, "median_epoch_seconds": median,
                 "ms_per_step": 1000 * median / steps, "epoch_seconds": seconds[way]}
            )  # fmt: skip
            print(f"batch {batch_size:4d}  {way:28s} {median:6.2f} s per epoch "
                  f"({1000 * median / steps:5.1f} ms per step)", flush=True)  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    arguments.out.write_text(json.dumps(
        {"machine": describe(), "versions": library_versions(), "date": time.strftime("%Y-%m-%d"),
         "what": __doc__.split("\n\n")[1].replace("\n", " "), "rows": rows}, indent=2,
    ))  # fmt: skip
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
