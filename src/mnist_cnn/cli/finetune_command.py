"""``mnist-cnn finetune``: a new run that has learnt from a user's corrections."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mnist_cnn.cli.common import (
    add_data_dir_option,
    add_run_argument,
    bounded,
    data_path,
    showing,
)

logger = logging.getLogger(__name__)
DEFAULT_RUNS_ROOT = Path("runs")
RUN_NAME_SUFFIX = "finetuned"  # new runs are <runs-root>/<time>-<preset>-finetuned


def register(subcommands: argparse._SubParsersAction) -> None:
    # The defaults are FinetuneConfig's, repeated so that --help needs no numpy;
    # a test keeps them equal.
    finetune = subcommands.add_parser(
        "finetune",
        help="train a new run from RUN on users' corrections, replaying MNIST so it keeps it",
    )
    add_run_argument(finetune, "the run to start from; it is only read")
    finetune.add_argument(
        "--feedback", type=Path, default=None, metavar="DB",
        help=(
            "the corrections: a feedback database, or an .npz of x_train/y_train "
            "(and x_test/y_test), as 'mnist-cnn feedback export' writes "
            "(default: the database in --data-dir, where 'serve' keeps the page's)"
        ),
    )  # fmt: skip
    add_data_dir_option(finetune)
    finetune.add_argument(
        "--run-dir", type=Path, default=None,
        help="folder to write, new or empty (default: <runs-root>/<time>-<preset>-finetuned)",
    )  # fmt: skip
    finetune.add_argument(
        "--runs-root", type=Path, default=None,
        help=f"where new run folders go (default: {DEFAULT_RUNS_ROOT})",
    )  # fmt: skip
    finetune.add_argument(
        "--epochs", type=bounded(int, 1, 1000), default=5,
        help="passes over the corrections, each with freshly replayed MNIST images (default: 5)",
    )  # fmt: skip
    finetune.add_argument(
        "--holdout", type=bounded(float, 0, 0.9), default=0.2, metavar="FRACTION",
        help="share of the corrections held out (seeded) to measure the effect (default: 0.2)",
    )  # fmt: skip
    finetune.add_argument(
        "--replay", type=bounded(float, 0, 1000), default=20.0, metavar="RATIO",
        help="MNIST training images mixed in per correction, against forgetting (default: 20)",
    )  # fmt: skip
    finetune.add_argument(
        "--seed", type=int, default=0,
        help="seeds the hold-out, the replayed images and the training (default: 0)",
    )  # fmt: skip
    finetune.add_argument(
        "--data", type=Path, default=None,
        help=(
            "the MNIST-style data to replay and to measure on, as for train "
            "(default: $MNIST_CNN_DATA, else the cache, else the bundled MNIST)"
        ),
    )  # fmt: skip
    finetune.set_defaults(handler=command_finetune)


def command_finetune(arguments: argparse.Namespace) -> int:
    from mnist_cnn.corrections import check_labels, read_corrections
    from mnist_cnn.engines import check_keras_archive, resolve_keras_path
    from mnist_cnn.errors import MnistCnnError
    from mnist_cnn.finetuning import FinetuneConfig
    from mnist_cnn.run_folder import RunFolder

    # Every refusal that needs no Keras comes before Keras starts (a few seconds).
    source = RunFolder(arguments.run)
    if not source.path.is_dir():
        raise MnistCnnError(f"{source.path}: not a run folder")
    stored = source.read_config()
    train_config = source.read_train_config()
    check_keras_archive(resolve_keras_path(source.path))
    if arguments.run_dir is not None and arguments.run_dir.exists():
        try:
            RunFolder(arguments.run_dir).require_empty()
        except MnistCnnError:
            raise MnistCnnError(
                f"{arguments.run_dir}: already exists and is not an empty folder; "
                "finetune writes a new run, so choose a new --run-dir"
            ) from None
    config = FinetuneConfig(
        epochs=arguments.epochs,
        holdout_fraction=arguments.holdout,
        replay_ratio=arguments.replay,
        seed=arguments.seed,
    )
    if arguments.feedback is None:
        from mnist_cnn.feedback import database_path

        arguments.feedback = database_path(arguments.data_dir)
    corrections = read_corrections(arguments.feedback)
    class_names = (stored.get("data") or {}).get("class_names")
    if isinstance(class_names, list):
        check_labels(corrections, len(class_names))  # and again against the model itself
    from mnist_cnn.data import load_mnist
    from mnist_cnn.finetuning import finetune_run

    given_data = data_path(arguments)
    if given_data is None:
        given_data = (stored.get("data") or {}).get("path")  # the data the run trained on
    dataset = load_mnist(given_data)
    runs_root = arguments.runs_root or DEFAULT_RUNS_ROOT
    run_dir = (
        arguments.run_dir
        or RunFolder.create_new(runs_root, f"{train_config.preset}-{RUN_NAME_SUFFIX}").path
    )
    logger.info(
        "fine-tuning %s on %d corrections from %s into %s",
        source.path, len(corrections), arguments.feedback, run_dir,
    )  # fmt: skip
    summary = finetune_run(
        source.path,
        corrections,
        dataset,
        run_dir,
        config,
        data_path=given_data,
        progress_bar=sys.stdout.isatty() and showing(logging.INFO),
        log=logger.info,
    )
    _report(summary)
    return 0


def _report(summary) -> None:
    result = summary.result

    def percent(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.2f}%"

    print(f"{'':40} {'before':>9} {'after':>9}")
    print(
        f"{f'held-out corrections ({result.held_out})':40} "
        f"{percent(result.held_out_accuracy_before):>9} "
        f"{percent(result.held_out_accuracy_after):>9}"
    )
    print(
        f"{'MNIST validation (last 10k training)':40} "
        f"{percent(result.validation_accuracy_before):>9} "
        f"{percent(result.validation_accuracy_after):>9}"
    )
    print(
        f"{'MNIST test':40} {percent(summary.test_accuracy_before):>9} "
        f"{percent(summary.test_accuracy_after):>9}"
    )
    print(
        f"trained on {result.trained_on} corrections with {result.replayed_per_epoch} "
        f"replayed MNIST images per epoch in {result.train_seconds:.1f}s; "
        f"results in {summary.run_dir}"
    )
    if not result.guard_passed:
        logger.warning(
            "warning: MNIST validation accuracy fell by %.2f points (more than %.2f); "
            "the new run is kept in %s, but runs/latest still points at the old model",
            100 * result.validation_drop,
            100 * result.max_validation_drop,
            summary.run_dir,
        )
