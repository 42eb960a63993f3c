"""Eager against compiled (``torch.compile``) training steps on Keras's PyTorch backend.

Each run trains one preset in a fresh process, as ``mnist-cnn train`` does, with
``jit_compile`` forced off or on, alternating, and times it as time_to_accuracy.py does
(training wall time inside the process, the test set measured off the clock after each
epoch; nothing is chosen on it). The presets train eager on PyTorch
(``models.compiles_steps``); this is the measurement behind that.

Usage: python benchmarks/torch_compile.py --python PYTHON [--runs fast:0,fast:1,best:epochs=2:0]
PYTHON: an interpreter with Keras, PyTorch and mnist-cnn installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MARK = "RESULT "


def child(mode: str, preset: str, seed: int) -> None:
    """One run in this process, on the PyTorch backend, its result printed on one line."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    compile_as_asked = keras.Model.compile

    def compile_with_mode(self, *args, **kwargs):
        kwargs["jit_compile"] = mode == "compiled"
        return compile_as_asked(self, *args, **kwargs)

    keras.Model.compile = compile_with_mode
    sys.path.insert(0, str(Path(__file__).parent))
    import time_to_accuracy
    from mnist_cnn.data import load_mnist
    from mnist_cnn.run_folder import library_versions

    run = time_to_accuracy.run_once(preset, seed, load_mnist(allow_download=False), None)
    keep = ("train_seconds", "test_accuracy", "seconds_per_epoch_end")
    result = {"steps": mode, **{key: run[key] for key in keep}}
    print(MARK + json.dumps({**result, "versions": library_versions()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="an interpreter with Keras, PyTorch and mnist-cnn")
    parser.add_argument(
        "--runs", default="fast:0,fast:1,fast:2,best:epochs=2:0",
        help="PRESET[:CHANGES]:SEED, comma-separated (default: fast 3 seeds, best 2 epochs)",
    )  # fmt: skip
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PRESET", "SEED"), help="internal")
    arguments = parser.parse_args()
    if arguments.child:
        mode, preset, seed = arguments.child
        child(mode, preset, int(seed))
        return
    if not arguments.python:
        parser.error("--python is required")
    from machine import describe

    runs = []
    for item in arguments.runs.split(","):
        preset, seed = item.rsplit(":", 1)
        for mode in ("eager", "compiled"):
            command = [arguments.python, __file__, "--child", mode, preset, seed]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            (line,) = [line for line in output.splitlines() if line.startswith(MARK)]
            run = {"preset": preset, "seed": int(seed), **json.loads(line[len(MARK) :])}
            runs.append(run)
            print(
                f"{preset} seed {seed} {mode}: {run['train_seconds']:.1f} s, "
                f"test {100 * run['test_accuracy']:.2f}%",
                flush=True,
            )
    by_preset = {}
    for preset in dict.fromkeys(run["preset"] for run in runs):
        seconds = {
            mode: statistics.median(
                run["train_seconds"]
                for run in runs
                if (run["preset"], run["steps"]) == (preset, mode)
            )
            for mode in ("eager", "compiled")
        }
        by_preset[preset] = {
            **seconds,
            "compiled_over_eager": seconds["compiled"] / seconds["eager"],
        }
    summary = {
        "machine": describe(),
        "backend": "torch",
        "how": "one fresh process per run, eager then compiled for each preset and seed",
        "median_train_seconds": by_preset,
        "runs": runs,
    }
    out = RESULTS / "torch_compile.json"
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(by_preset, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
