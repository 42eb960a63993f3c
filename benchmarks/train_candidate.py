"""Train a candidate recipe on the held-out split, as a run folder for tune_test_time.py.

A preset with some settings changed (any ``TrainConfig`` field, as NAME=VALUE
with a JSON value) is trained like ``mnist-cnn train --validation-split 0.16667
--ensemble 5`` would: the first 50k training images train and the last 10k are
held out. Then ``tune_test_time.py RUN`` scores it on those 10k; a setting that
wins there goes into the preset. (The run folder also gets the usual test-set
report, as every run does; nothing is chosen on it.)

Usage: python benchmarks/train_candidate.py runs/val-whole-shifts best whole_pixel_shifts=true
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_cnn.config import PRESETS, preset_config
from mnist_cnn.data import load_mnist
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.pipeline import train_run


def parse_change(text: str) -> tuple[str, object]:
    """NAME=VALUE with a JSON value (34, 0.5, true); anything else stays a string."""
    name, separator, value = text.partition("=")
    if not separator:
        raise MnistCnnError(f"{text!r}: expected NAME=VALUE")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run folder to write")
    parser.add_argument("preset", choices=tuple(PRESETS))
    parser.add_argument("changes", nargs="*", help="NAME=VALUE settings to change")
    parser.add_argument("--ensemble", type=int, default=5, help="seeds to train (default: 5)")
    arguments = parser.parse_args()
    try:
        changes = dict(parse_change(text) for text in arguments.changes)
        config = preset_config(
            arguments.preset,
            validation_split=0.16667,
            ensemble=arguments.ensemble,
            **changes,
        )
    except (MnistCnnError, TypeError) as error:  # TypeError: no such TrainConfig field
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(config)
    train_run(config, load_mnist(allow_download=False), arguments.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
