"""``mnist-cnn train``: the tutorial's eleven steps into a run folder, or ``--resume`` one."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_cnn.cli.common import add_data_options, data_path, showing
from mnist_cnn.errors import MnistCnnError

if TYPE_CHECKING:
    from mnist_cnn.pipeline import RunSummary
    from mnist_cnn.training import StopWhenAsked

EXIT_INTERRUPTED = 130
logger = logging.getLogger(__name__)
DEFAULT_RUNS_ROOT = Path("runs")
# Options that choose what a run is: a resumed run keeps its own, so each is refused there.
RUN_DEFINING_OPTIONS = (
    "preset",
    "epochs",
    "batch_size",
    "validation_split",
    "seed",
    "limit",
    "ensemble",
    "test_time_views",
    "elastic_alpha",
    "label_smoothing",
    "pen_style_share",
    "precision",
    "run_dir",
    "runs_root",
    "data",
    "class_names",
)


def register(subcommands: argparse._SubParsersAction) -> None:
    train = subcommands.add_parser(
        "train", help="train, evaluate, predict and plot, writing a run folder"
    )
    _add_recipe_options(train)
    _add_run_options(train)
    add_data_options(train)
    train.set_defaults(handler=command_train)


def _add_recipe_options(train: argparse.ArgumentParser) -> None:
    """What the run trains: the preset and the settings that change it."""
    from mnist_cnn.config import (
        DEFAULT_PRESET,
        PRECISIONS,
        PRESET_ALIASES,
        PRESETS,
        TEST_TIME_VIEWS,
    )

    train.add_argument(
        "--preset", choices=(*PRESETS, *PRESET_ALIASES), default=None,
        help=(
            "settings to start from; 'tutorial' is the tutorial's model "
            f"(default: {DEFAULT_PRESET})"
        ),
    )  # fmt: skip
    train.add_argument(
        "--epochs", type=int, default=None, help="passes over the data (default: the preset's)"
    )
    train.add_argument(
        "--batch-size", type=int, default=None, help="images per step (default: the preset's)"
    )
    train.add_argument(
        "--validation-split", type=float, default=None,
        help=(
            "fraction of the training images held out for validation "
            "(default: the preset's; tutorial uses 0.3)"
        ),
    )  # fmt: skip
    train.add_argument(
        "--seed", type=int, default=None, help="random seed for everything (default: 0)"
    )
    train.add_argument(
        "--limit", type=int, default=None,
        help="train on the first N training images only (default: all)",
    )  # fmt: skip
    train.add_argument(
        "--ensemble", type=int, default=None, metavar="K",
        help="train K models (seeds seed..seed+K-1) and average their probabilities (default: 1)",
    )  # fmt: skip
    train.add_argument(
        "--test-time-views", type=int, choices=TEST_TIME_VIEWS, default=None,
        help=(
            "the saved model averages its probabilities over the image and its 4 (or 8) "
            "1-pixel shifts, at 5 (or 9) times the prediction cost "
            f"(default: {_default_by_preset('test_time_views')})"
        ),
    )  # fmt: skip
    train.add_argument(
        "--elastic-alpha", type=float, default=None, metavar="ALPHA",
        help=(
            "strength of the random elastic distortion of training images "
            "(Simard et al. 2003; 34 moves pixels about 1.4 px), 0 turns it off "
            f"(default: {_default_by_preset('elastic_alpha')})"
        ),
    )  # fmt: skip
    train.add_argument(
        "--label-smoothing", type=float, default=None, metavar="SHARE",
        help=(
            "share of each training target spread evenly over all classes, in [0, 1) "
            f"(default: {_default_by_preset('label_smoothing')})"
        ),
    )  # fmt: skip
    train.add_argument(
        "--pen-style-share", type=float, default=None, metavar="SHARE",
        help=(
            "share of the training digits redrawn with a thick marker or a thin pen that "
            "skips and prepared as a photo of them would be, in [0, 1] "
            f"(default: {_default_by_preset('pen_style_share')})"
        ),
    )  # fmt: skip
    train.add_argument(
        "--precision", choices=PRECISIONS, default=None,
        help=(
            "arithmetic while training: bfloat16 keeps float32 weights and is faster on CPUs "
            "with AVX512-BF16 or AMX; auto uses it there and float32 elsewhere; the saved "
            f"model is float32 either way (default: {_default_by_preset('precision')})"
        ),
    )  # fmt: skip


def _add_run_options(train: argparse.ArgumentParser) -> None:
    """Where the run goes, how it continues, and which model it keeps."""
    train.add_argument(
        "--run-dir", type=Path, default=None,
        help="folder to write, new or empty (default: <runs-root>/<time>-<preset>)",
    )  # fmt: skip
    train.add_argument(
        "--runs-root", type=Path, default=None,
        help=f"where new run folders go (default: {DEFAULT_RUNS_ROOT})",
    )  # fmt: skip
    train.add_argument(
        "--resume", type=Path, default=None, metavar="RUN_DIR",
        help="continue an interrupted run from its last completed epoch (default: a new run)",
    )  # fmt: skip
    train.add_argument(
        "--keep", choices=("last", "best"), default=None,
        help=(
            "model.keras is the last epoch's model, or the one with the best validation "
            "accuracy; best.keras is kept beside it when there is a validation split "
            "(default: last, or what the resumed run chose)"
        ),
    )  # fmt: skip
    train.add_argument(
        "--tensorboard", type=Path, default=None, metavar="DIR",
        help=(
            "write TensorBoard logs (losses, accuracies, weight histograms, the graph) "
            "to DIR; view them with: tensorboard --logdir DIR (default: none)"
        ),
    )  # fmt: skip


def command_train(arguments: argparse.Namespace) -> int:
    # Every refusal that needs no Keras comes before Keras starts (a few seconds).
    if arguments.tensorboard is not None:
        _require_tensorboard()
    prepare = _prepare_resume if arguments.resume is not None else _prepare_new_run
    run_dir, start = prepare(arguments)
    stopper = _stopper()
    callbacks = [stopper]
    if arguments.tensorboard is not None:
        from mnist_cnn.training import tensorboard_callback

        callbacks.append(tensorboard_callback(arguments.tensorboard))
        logger.info("TensorBoard logs in %s", arguments.tensorboard)
    try:
        with _ctrl_c_asks(stopper):
            summary = start(callbacks)
    except KeyboardInterrupt:
        from mnist_cnn.run_folder import RunFolder

        if RunFolder(run_dir).checkpoints.any_saved():
            advice = (
                "every completed epoch is saved; continue with\n"
                f"  mnist-cnn train --resume {run_dir}"
            )
        else:
            advice = f"no epoch was completed, so there is nothing to resume; delete {run_dir}"
        print(f"\ninterrupted: {advice}", file=sys.stderr)
        return EXIT_INTERRUPTED
    _report(summary)
    return 0


Start = Callable[[list], "RunSummary"]  # runs the training with these callbacks


def _prepare_resume(arguments: argparse.Namespace) -> tuple[Path, Start]:
    from mnist_cnn.run_folder import RunFolder

    given = [name for name in RUN_DEFINING_OPTIONS if getattr(arguments, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise MnistCnnError(f"--resume continues a run with its own settings; drop {flags}")
    run = RunFolder(arguments.resume)
    run.read_train_config()
    run.checkpoints.require_saved()
    from mnist_cnn.pipeline import resume_run

    logger.info("resuming %s", run.path)
    return run.path, lambda callbacks: resume_run(
        run.path, keep=arguments.keep, progress_bar=_keras_progress_bar(), callbacks=callbacks
    )


def _prepare_new_run(arguments: argparse.Namespace) -> tuple[Path, Start]:
    from mnist_cnn.run_folder import RunFolder

    config = _config_from(arguments)
    from mnist_cnn.errors import one_line

    own_data = data_path(arguments)
    if config.pen_style_share and arguments.pen_style_share is None and own_data is not None:
        # Pen styles redraw handwritten digits; other data (Fashion-MNIST, KMNIST) would be
        # turned into pen strokes. Only an explicit --pen-style-share keeps them there.
        logger.warning(
            "note: training on %s, not MNIST, so the preset's pen styles are off (they "
            "redraw handwritten digits); --pen-style-share %g turns them on",
            one_line(str(own_data)),
            config.pen_style_share,
        )
        config = dataclasses.replace(config, pen_style_share=0.0)
    if arguments.run_dir is not None and arguments.run_dir.exists():
        RunFolder(arguments.run_dir).require_empty()  # before the data is loaded
    from mnist_cnn.data import load_mnist

    dataset = load_mnist(data_path(arguments), class_names=arguments.class_names)
    from mnist_cnn.pipeline import describe_dataset, train_run

    logger.info(describe_dataset(dataset))
    logger.debug("settings: %s", config.to_dict())
    runs_root = arguments.runs_root or DEFAULT_RUNS_ROOT
    run_dir = arguments.run_dir or RunFolder.create_new(runs_root, config.preset).path
    logger.info("training preset %r in %s", config.preset, run_dir)
    return run_dir, lambda callbacks: train_run(
        config,
        dataset,
        run_dir,
        data_path=data_path(arguments),
        keep=arguments.keep or "last",
        progress_bar=_keras_progress_bar(),
        callbacks=callbacks,
    )


def _keras_progress_bar() -> bool:
    """Keras's bar on a terminal (it writes to stdout); -q hides it with the epoch lines."""
    return sys.stdout.isatty() and showing(logging.INFO)


def _require_tensorboard() -> None:
    """Refused before the data loads: Keras's callback needs the tensorboard package."""
    try:
        found = importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
        found = False
    if not found:
        raise MnistCnnError(
            "--tensorboard needs the tensorboard package (not installed): "
            "pip install 'mnist-cnn[tensorboard]'"
        )


def _config_from(arguments: argparse.Namespace):
    from mnist_cnn.config import DEFAULT_PRESET, PRESET_ALIASES, preset_config

    preset = arguments.preset or DEFAULT_PRESET
    if preset in PRESET_ALIASES:
        logger.warning(
            "note: the preset %r is now called %r; the old name will go in a later release",
            preset,
            PRESET_ALIASES[preset],
        )
    return preset_config(
        preset,
        epochs=arguments.epochs,
        batch_size=arguments.batch_size,
        validation_split=arguments.validation_split,
        seed=arguments.seed,
        limit=arguments.limit,
        ensemble=arguments.ensemble,
        test_time_views=arguments.test_time_views,
        elastic_alpha=arguments.elastic_alpha,
        label_smoothing=arguments.label_smoothing,
        pen_style_share=arguments.pen_style_share,
        precision=arguments.precision,
    )


def _report(summary: RunSummary) -> None:
    from mnist_cnn.report import format_evaluation
    from mnist_cnn.run_folder import RunFolder

    metrics = summary.metrics
    first = metrics["first_test_image"]
    print(f"test accuracy {100 * metrics['test_accuracy']:.2f}% (loss {metrics['test_loss']:.4f})")
    print(
        f"first test image: predicted {first['predicted']} "
        f"({100 * first['confidence']:.1f}%), actual {first['actual']}"
    )
    print()
    print(format_evaluation(summary.analysis.to_dict()))
    print(f"training took {metrics['train_seconds']:.1f}s; results in {summary.run_dir}")
    print(f"report: {RunFolder(summary.run_dir).report_file}")


def _default_by_preset(field_name: str) -> str:
    """A TrainConfig field's default for help texts: "5 for best, else 1", or just "0"."""
    from mnist_cnn.config import PRESETS, TrainConfig

    usual = next(
        field.default for field in dataclasses.fields(TrainConfig) if field.name == field_name
    )

    def shown(value: object) -> str:
        return f"{value:g}" if isinstance(value, int | float) else str(value)

    changed = [
        f"{shown(getattr(config, field_name))} for {name}"
        for name, config in PRESETS.items()
        if getattr(config, field_name) != usual
    ]
    return ", ".join([*changed, f"else {shown(usual)}"]) if changed else shown(usual)


def _stopper() -> StopWhenAsked:
    from mnist_cnn.training import StopWhenAsked

    return StopWhenAsked()


@contextlib.contextmanager
def _ctrl_c_asks(stopper: StopWhenAsked) -> Iterator[None]:
    """While training, a first Ctrl-C asks ``stopper`` to stop after the current batch;
    a second one interrupts at once. Outside ``fit`` (between epochs, or while the
    finished run is evaluated and drawn) no batch end would see the request, so
    the first one interrupts at once."""

    def on_interrupt(signal_number: int, frame: object) -> None:
        if stopper.asked or not stopper.fitting:
            raise KeyboardInterrupt
        stopper.asked = True

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
