"""``evaluate``, ``report``, ``compare`` and ``export``: work on finished runs."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mnist_cnn.cli.common import (
    add_data_options,
    add_run_argument,
    bounded,
    data_path,
    load_dataset,
)
from mnist_cnn.cli.progress import progress_bar
from mnist_cnn.errors import MnistCnnError

logger = logging.getLogger(__name__)

# export.FORMATS, repeated so that --help needs no numpy; a test keeps them equal.
EXPORT_FORMATS = ("onnx", "saved_model")


def register(subcommands: argparse._SubParsersAction) -> None:
    evaluate = subcommands.add_parser(
        "evaluate",
        help="test metrics, per-class table, confusion matrix, worst errors and calibration",
    )
    add_run_argument(evaluate, "run folder or .keras model file")
    evaluate.add_argument(
        "--out-dir", type=Path, default=None,
        help="where to write the files (default: the run folder, or the model's folder)",
    )  # fmt: skip
    add_data_options(evaluate)
    evaluate.set_defaults(handler=command_evaluate)

    report = subcommands.add_parser(
        "report", help="write report.html, one self-contained page about a run"
    )
    add_run_argument(report, "run folder")
    report.add_argument(
        "--reevaluate", action="store_true",
        help="evaluate again even if evaluation.json exists (default: reuse it)",
    )  # fmt: skip
    add_data_options(report)
    report.set_defaults(handler=command_report)

    compare = subcommands.add_parser("compare", help="compare runs in a table and one figure")
    compare.add_argument("runs", nargs="+", type=Path, help="run folders to compare")
    compare.add_argument(
        "--out", type=Path, default=Path("comparison.png"),
        help="figure of the validation curves (default: comparison.png)",
    )  # fmt: skip
    compare.set_defaults(handler=command_compare)

    export = subcommands.add_parser("export", help="write the model as ONNX or a SavedModel")
    add_run_argument(export, "run folder or .keras model file")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, default="onnx",
        help="onnx (model.onnx) or saved_model (a TensorFlow SavedModel folder) (default: onnx)",
    )  # fmt: skip
    export.add_argument(
        "--out", type=Path, default=None, help="where to write (default: inside the run folder)"
    )
    export.add_argument(
        "--check", type=bounded(int, 0, 10_000_000), default=1000, metavar="N",
        help="compare the export with Keras on the first N test images, 0 to skip (default: 1000)",
    )  # fmt: skip
    add_data_options(export)
    export.set_defaults(handler=command_export)


def _evaluate(arguments: argparse.Namespace, run: Path, out_dir: Path | None = None):
    from mnist_cnn.engines import resolve_keras_path
    from mnist_cnn.pipeline import evaluate_run

    resolve_keras_path(run)  # a missing model is reported before the data is loaded
    dataset = load_dataset(arguments)  # and bad data before Keras starts
    with progress_bar("evaluate") as progress:
        return evaluate_run(
            run,
            dataset,
            out_dir,
            use_run_class_names=arguments.class_names is None,
            progress=progress,
        )


def command_evaluate(arguments: argparse.Namespace) -> int:
    from mnist_cnn.report import format_evaluation

    analysis, out_dir = _evaluate(arguments, arguments.run, arguments.out_dir)
    print(format_evaluation(analysis.to_dict()))
    print(
        "wrote evaluation.json, confusion_matrix.png, misclassified.png, "
        f"misclassified_why.png and calibration.png to {out_dir}"
    )
    return 0


def command_report(arguments: argparse.Namespace) -> int:
    from mnist_cnn.pipeline import write_report
    from mnist_cnn.run_folder import RunFolder

    run = RunFolder(arguments.run)
    if not run.path.is_dir():
        raise MnistCnnError(f"{run.path}: no such run folder")
    if arguments.reevaluate or not run.evaluation_file.exists():
        _evaluate(arguments, run.path)
    print(f"wrote {write_report(run.path)}")
    return 0


def command_compare(arguments: argparse.Namespace) -> int:
    from mnist_cnn.plots import comparison_figure
    from mnist_cnn.report import comparison_rows, format_comparison
    from mnist_cnn.run_folder import save_figure

    total = len(arguments.runs) + 1  # each run read, then the figure
    with progress_bar("compare") as progress:
        rows = comparison_rows(arguments.runs, progress=lambda done, _: progress(done, total))
        figure = comparison_figure([(row["run"], row["history"]) for row in rows])
        save_figure(figure, arguments.out)
        progress(total, total)
    print(format_comparison(rows))
    print(f"wrote {arguments.out}")
    return 0


def command_export(arguments: argparse.Namespace) -> int:
    from mnist_cnn.export import export_model

    # Steps: the check images loaded, the export written and checked. export_model
    # is one step for now; the bar at 1/2 says that it is at work, not how far.
    with progress_bar(f"export {arguments.format}") as progress:
        check_images = None
        if arguments.check:
            from mnist_cnn.data import load_mnist

            check_images = load_mnist(data_path(arguments)).test_images[: arguments.check]
        progress(1, 2)
        result = export_model(
            arguments.run, arguments.format, arguments.out, check_images=check_images
        )
        progress(2, 2)
    print(f"wrote {result.path}")
    if result.checked_images and result.agreement is not None:
        print(
            f"checked on {result.checked_images} test images: largest probability difference "
            f"{result.largest_difference:.1e}, same digit for {100 * result.agreement:.2f}%"
        )
    return 0
