"""``mnist-cnn not-a-digit``: teach a run to say "not a digit" to dots, letters and scribbles."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_cnn.cli.common import add_data_options, add_run_argument, bounded, load_dataset

if TYPE_CHECKING:
    from mnist_cnn.run_folder import RunFolder

logger = logging.getLogger(__name__)
# rejection.DetectorConfig's, repeated so that --help needs no numpy; a test keeps them equal.
DEFAULT_EPOCHS = 5


def register(subcommands: argparse._SubParsersAction) -> None:
    command = subcommands.add_parser(
        "not-a-digit",
        help="train the run's 'not a digit' detector (dots, lines, letters, shapes, scribbles)",
        description=(
            "Train a small digit-or-not network on the run's training digits and drawn "
            "non-digits, choose its threshold on the validation split, and store it in the "
            "run folder (not_a_digit.keras, .onnx when ONNX export is installed, and .json). "
            "predict and serve then answer 'not a digit' for pictures under the threshold; "
            "runs without one use the classifier's own confidence."
        ),
    )
    add_run_argument(command, "run folder")
    command.add_argument(
        "--non-digits", type=bounded(int, 12, 1_000_000), default=4000,
        help="drawn non-digits to learn from (default: 4000, about 40 s to draw)",
    )  # fmt: skip
    command.add_argument(
        "--digits", type=bounded(int, 12, 1_000_000), default=20_000,
        help="training digits to learn from (default: 20000)",
    )  # fmt: skip
    command.add_argument(
        "--epochs", type=bounded(int, 1, 1000), default=DEFAULT_EPOCHS,
        help=f"passes over them (default: {DEFAULT_EPOCHS})",
    )  # fmt: skip
    command.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    command.add_argument(
        "--packaged", type=Path, default=None, metavar="DIR",
        help=(
            "instead of a run's detector, write one that needs no classifier into DIR: "
            "what ships with mnist-cnn for runs without their own (make detector)"
        ),
    )  # fmt: skip
    add_data_options(command)
    command.set_defaults(handler=command_not_a_digit)


def command_not_a_digit(arguments: argparse.Namespace) -> int:
    from dataclasses import replace

    from mnist_cnn.atomic_files import write_json_atomic
    from mnist_cnn.engines import keras_probability_function, load_model
    from mnist_cnn.errors import MnistCnnError
    from mnist_cnn.export import EXPORTER_PACKAGES, export_model
    from mnist_cnn.rejection import DetectorConfig, DetectorFiles, settings, train_detector
    from mnist_cnn.run_folder import RunFolder, save_model

    packaged = arguments.packaged is not None
    if packaged:
        if arguments.packaged.exists() and not arguments.packaged.is_dir():
            raise MnistCnnError(f"{arguments.packaged}: not a folder")
        arguments.packaged.mkdir(parents=True, exist_ok=True)
        files = DetectorFiles(arguments.packaged)
    else:
        if not arguments.run.is_dir():
            raise MnistCnnError(f"{arguments.run}: not a run folder")
        run = RunFolder(arguments.run)
        files = run.detector
        _require_digit_classes(run)
    # The other counts keep the defaults' proportions: a tenth of the digits also
    # redrawn with a pen, validation sets about a sixth of the training ones.
    config = replace(
        DetectorConfig(),
        digit_count=arguments.digits,
        pen_digit_count=arguments.digits // 10,
        validation_pen_digit_count=arguments.digits // 40,
        non_digit_count=arguments.non_digits,
        validation_non_digit_count=max(12, arguments.non_digits * 3 // 20),
        epochs=arguments.epochs,
        seed=arguments.seed,
    )
    dataset = load_dataset(arguments)
    classifier = None if packaged else load_model(run.model_file)
    probabilities = (
        None if classifier is None else keras_probability_function(classifier, compiled=True)
    )
    trained = train_detector(dataset, probabilities, config)
    save_model(trained.model, files.keras)
    print(f"wrote {files.keras}")
    if _installed(EXPORTER_PACKAGES["onnx"][0]):
        # Checked against Keras on a few hundred digits before it is kept, as exports are.
        export_model(files.keras, "onnx", files.onnx, check_images=dataset.test_images[:200])
        print(f"wrote {files.onnx}")
    else:
        logger.info("no ONNX export installed: the onnx engine keeps the confidence detector")
    # Written last: the detector is used only once its settings are there.
    write_json_atomic(files.settings, settings(trained, config, uses_confidence=not packaged))
    print(f"wrote {files.settings}")
    figures = trained.validation
    print(
        f"validation: {100 * figures['accepted_digits']:.1f}% of digits accepted, "
        f"{100 * figures['rejected_non_digits']:.1f}% of non-digits rejected, "
        f"AUROC {figures['auroc']:.4f} (threshold {trained.threshold:.3f})"
    )
    return 0


def _installed(packages: tuple[str, ...]) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in packages)


def _require_digit_classes(run: RunFolder) -> None:
    """A detector learns MNIST's digits against non-digits: a run of other classes is refused.

    Else it would be trained on digits its classifier never saw, and its threshold
    would refuse that run's own pictures.
    """
    from mnist_cnn.errors import MnistCnnError
    from mnist_cnn.rejection import DIGIT_CLASS_NAMES

    class_names = (run.read_config().get("data") or {}).get("class_names")
    if class_names is not None and tuple(class_names) != DIGIT_CLASS_NAMES:
        shown = ", ".join(str(name) for name in class_names[:12])
        raise MnistCnnError(
            f"{run.path}: its classes are {shown}; a 'not a digit' detector is learnt for "
            "the digits 0-9 only (the run answers 'not a digit' under --min-confidence)"
        )
