"""The ``mnist-cnn`` command line.

Each subcommand parses its options, builds values, calls one library function
and reports. Heavy libraries (TensorFlow, Keras, Matplotlib) are imported
inside the subcommands, so ``mnist-cnn --help`` starts instantly.

Exit codes: 0 success, 1 some inputs of a batch failed, 2 usage or input error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_cnn.errors import MnistCnnError

if TYPE_CHECKING:
    from mnist_cnn.training import StopWhenAsked

EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DATA_ENVIRONMENT_VARIABLE = "MNIST_CNN_DATA"


def _quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up notices silenced.

    TensorFlow prints oneDNN and absl notices straight to file descriptor 2 at
    import, whatever TF_CPP_MIN_LOG_LEVEL says; they are noise to a CLI user.
    Import errors still surface as Python exceptions.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get(DATA_ENVIRONMENT_VARIABLE),
        help=(
            "a Keras-style .npz or a folder of the four IDX files "
            f"(default: ${DATA_ENVIRONMENT_VARIABLE}, else the cache, else the bundled MNIST)"
        ),
    )
    parser.add_argument(
        "--class-names",
        type=lambda text: [name.strip() for name in text.split(",")],
        default=None,
        help="comma-separated display names for the classes (default: 0, 1, 2, ...)",
    )


def _uses_tensorflow(handler):
    """Mark a subcommand that imports TensorFlow, so that it is imported quietly first."""
    handler.needs_tensorflow = True
    return handler


def _needs_tensorflow(handler) -> None:
    if getattr(handler, "needs_tensorflow", False):
        _quiet_tensorflow()


def _load_dataset(arguments: argparse.Namespace):
    from mnist_cnn.data import load_mnist

    return load_mnist(arguments.data, class_names=arguments.class_names)


def command_data(arguments: argparse.Namespace) -> int:
    import numpy as np

    dataset = _load_dataset(arguments)
    print(f"source: {dataset.source}")
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        array = getattr(dataset, name)
        print(f"{name:13s} shape {array.shape!s:16s} dtype {array.dtype}")
    train_counts = np.bincount(dataset.train_labels, minlength=dataset.num_classes)
    test_counts = np.bincount(dataset.test_labels, minlength=dataset.num_classes)
    print(f"{'class':>8s} {'train':>7s} {'test':>7s}")
    for index, class_name in enumerate(dataset.class_names):
        print(f"{class_name:>8s} {train_counts[index]:7d} {test_counts[index]:7d}")
    return 0


def command_show(arguments: argparse.Namespace) -> int:
    from mnist_cnn.plots import sample_figure
    from mnist_cnn.run_folder import save_figure

    dataset = _load_dataset(arguments)
    images = dataset.train_images if arguments.split == "train" else dataset.test_images
    labels = dataset.train_labels if arguments.split == "train" else dataset.test_labels
    if not -len(images) <= arguments.index < len(images):
        raise MnistCnnError(
            f"--index {arguments.index} is out of range: the {arguments.split} set has "
            f"{len(images)} images"
        )
    label = dataset.class_names[labels[arguments.index]]
    out = arguments.out or Path(f"sample-{arguments.split}-{arguments.index}.png")
    save_figure(
        sample_figure(images[arguments.index], f"{arguments.split}[{arguments.index}]: {label}"),
        out,
    )
    print(f"wrote {out} ({arguments.split} image {arguments.index}, label {label})")
    return 0


TRAINING_OPTIONS = (
    "preset",
    "epochs",
    "batch_size",
    "validation_split",
    "seed",
    "limit",
    "ensemble",
    "test_time_views",
    "elastic_alpha",
)


@_uses_tensorflow
def command_train(arguments: argparse.Namespace) -> int:
    from mnist_cnn.config import DEFAULT_PRESET, TrainConfig, preset_config
    from mnist_cnn.data import load_mnist
    from mnist_cnn.report import format_evaluation
    from mnist_cnn.run_folder import REPORT_FILE, new_run_dir, read_config
    from mnist_cnn.training import Checkpoints, StopWhenAsked

    if arguments.resume is not None:
        given = [name for name in TRAINING_OPTIONS if getattr(arguments, name) is not None]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise MnistCnnError(f"--resume continues a run with its own settings; drop {flags}")
        run_dir = arguments.resume.resolve()
        stored = read_config(run_dir)
        if not Checkpoints(run_dir).any_saved():
            Checkpoints(run_dir).read_state()  # raises "no checkpoint to resume from"
        config = TrainConfig.from_dict(stored["config"])
        data_path = arguments.data or _stored_path(stored)
        class_names = arguments.class_names or stored.get("data", {}).get("class_names")
    else:
        config = preset_config(
            arguments.preset or DEFAULT_PRESET,
            epochs=arguments.epochs,
            batch_size=arguments.batch_size,
            validation_split=arguments.validation_split,
            seed=arguments.seed,
            limit=arguments.limit,
            ensemble=arguments.ensemble,
            test_time_views=arguments.test_time_views,
            elastic_alpha=arguments.elastic_alpha,
        )
        run_dir = None
        data_path, class_names = arguments.data, arguments.class_names
    dataset = load_mnist(data_path, class_names=class_names)
    print(f"data: {dataset.source}")
    print(
        f"train images {dataset.train_images.shape}, test images {dataset.test_images.shape}, "
        f"{dataset.num_classes} classes"
    )

    from mnist_cnn.pipeline import train_run

    run_dir = run_dir or arguments.run_dir or new_run_dir(arguments.runs_root, config.preset)
    verb = "resuming" if arguments.resume else "training"
    print(f"{verb} preset {config.preset!r} in {run_dir}", flush=True)
    stopper = StopWhenAsked()
    try:
        with _ctrl_c_asks(stopper):
            summary = train_run(
                config,
                dataset,
                run_dir,
                data_path=data_path,
                resume=arguments.resume is not None,
                keep=arguments.keep,
                progress_bar=sys.stdout.isatty(),
                callbacks=[stopper],
            )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: every completed epoch is saved; continue with\n"
            f"  mnist-cnn train --resume {run_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
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
    print(f"report: {summary.run_dir / REPORT_FILE}")
    return 0


def _stored_path(stored: dict) -> Path | None:
    path = stored.get("data", {}).get("path")
    return Path(path) if path else None


def _evaluate(arguments: argparse.Namespace, run: Path, out_dir: Path | None = None):
    from mnist_cnn.data import load_mnist
    from mnist_cnn.pipeline import evaluate_run
    from mnist_cnn.run_folder import read_class_names, resolve_model_path

    model_path = resolve_model_path(run)  # a missing model is reported before data is loaded
    dataset = load_mnist(arguments.data, class_names=arguments.class_names)
    if arguments.class_names is None:
        # Display the names the run was trained with (e.g. Fashion-MNIST's).
        names = read_class_names(model_path.parent, dataset.num_classes)
        dataset = dataclasses.replace(dataset, class_names=names)
    return evaluate_run(run, dataset, out_dir)


@_uses_tensorflow
def command_evaluate(arguments: argparse.Namespace) -> int:
    from mnist_cnn.report import format_evaluation

    analysis, out_dir = _evaluate(arguments, arguments.run, arguments.out_dir)
    print(format_evaluation(analysis.to_dict()))
    print(
        f"wrote evaluation.json, confusion_matrix.png, misclassified.png and "
        f"calibration.png to {out_dir}"
    )
    return 0


def command_report(arguments: argparse.Namespace) -> int:
    from mnist_cnn.pipeline import write_report
    from mnist_cnn.run_folder import EVALUATION_FILE

    run_dir = arguments.run
    if not run_dir.is_dir():
        raise MnistCnnError(f"{run_dir}: no such run folder")
    if arguments.reevaluate or not (run_dir / EVALUATION_FILE).exists():
        _quiet_tensorflow()
        _evaluate(arguments, run_dir)
    path = write_report(run_dir)
    print(f"wrote {path}")
    return 0


def command_compare(arguments: argparse.Namespace) -> int:
    from mnist_cnn.plots import comparison_figure
    from mnist_cnn.report import comparison_rows, format_comparison
    from mnist_cnn.run_folder import save_figure

    rows = comparison_rows(arguments.runs)
    print(format_comparison(rows))
    save_figure(comparison_figure([(row["run"], row["history"]) for row in rows]), arguments.out)
    print(f"wrote {arguments.out}")
    return 0


def command_predict(arguments: argparse.Namespace) -> int:
    import csv
    import json

    from mnist_cnn.prediction import answer_pictures, read_pictures

    classifier = _load_classifier(arguments.model, arguments.engine)
    pictures = read_pictures(arguments.paths)
    answers = answer_pictures(
        pictures, classifier, multi=arguments.multi, min_confidence=arguments.min_confidence
    )
    for answer in answers:
        if answer.error:
            print(f"error: {answer.error}", file=sys.stderr)

    if arguments.json:
        print(json.dumps([answer.to_dict() for answer in answers], indent=2))
    elif arguments.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["file", "digit", "confidence", "uncertain", "top3", "note"])
        for answer in answers:
            writer.writerow(_csv_row(answer))
    else:
        print(_answers_table(answers))

    if arguments.show_preprocessed:
        from mnist_cnn.plots import preprocessed_strip_figure
        from mnist_cnn.run_folder import save_figure

        shown = [(answer.name, digit) for answer in answers for digit in answer.digits]
        if shown:
            figure = preprocessed_strip_figure(
                [digit.image for _, digit in shown],
                [f"{Path(name).name}: {digit.digit}" for name, digit in shown],
            )
            save_figure(figure, arguments.show_preprocessed)
            print(f"wrote {arguments.show_preprocessed}", file=sys.stderr)
    return EXIT_SOME_FAILED if any(answer.error for answer in answers) else 0


def _csv_row(answer) -> list:
    if answer.error:
        return [answer.name, "", "", "", "", answer.error]
    if not answer.digits:
        return [answer.name, "", "", "", "", answer.reason]
    top = " ".join(f"{name}:{p:.4f}" for name, p in answer.digits[0].top)
    return [answer.name, answer.text, f"{answer.confidence:.4f}", answer.uncertain, top, ""]


def _answers_table(answers) -> str:
    width = max([4, *(len(answer.name) for answer in answers)])

    def row(name: str, digit: str, confidence: str, note: str) -> str:
        return f"{name:{width}s}  {digit:>6s}  {confidence:>10s}  {note}"

    lines = [row("file", "digit", "confidence", "top 3")]
    for answer in answers:
        if answer.error:
            lines.append(row(answer.name, "-", "-", "error (see above)"))
        elif not answer.digits:
            lines.append(row(answer.name, "-", "-", answer.reason or ""))
        else:
            flag = "  (uncertain)" if answer.uncertain else ""
            if len(answer.digits) == 1:
                note = "  ".join(f"{name} {100 * p:.1f}%" for name, p in answer.digits[0].top)
            else:
                note = "digits " + " ".join(
                    f"{d.digit}:{100 * d.confidence:.0f}%" for d in answer.digits
                )
            lines.append(
                row(answer.name, answer.text, f"{100 * answer.confidence:.1f}%", note + flag)
            )
    return "\n".join(lines)


@_uses_tensorflow
def command_export(arguments: argparse.Namespace) -> int:
    from mnist_cnn.engines import load_onnx_classifier
    from mnist_cnn.export import engine_agreement, export_model

    path = export_model(arguments.run, arguments.format, arguments.out)
    print(f"wrote {path}")
    if arguments.format == "onnx" and arguments.check:
        from mnist_cnn.data import load_mnist
        from mnist_cnn.engines import load_model
        from mnist_cnn.prediction import predict_probabilities
        from mnist_cnn.preprocess import to_model_input

        images = to_model_input(load_mnist(arguments.data).test_images[: arguments.check])
        keras_output = predict_probabilities(load_model(arguments.run), images)
        onnx_output = load_onnx_classifier(path).probabilities(images)
        difference, agreement = engine_agreement(keras_output, onnx_output)
        print(
            f"checked on {len(images)} test images: largest probability difference "
            f"{difference:.1e}, same digit for {100 * agreement:.2f}%"
        )
    return 0


def command_serve(arguments: argparse.Namespace) -> int:
    try:
        import uvicorn

        from mnist_cnn.serve import create_app, model_metadata
    except ImportError as error:
        raise MnistCnnError(
            f"the web server needs the 'web' extra ({error.name} is missing): "
            "pip install 'mnist-cnn[web]'"
        ) from None
    classifier = _load_classifier(arguments.run, arguments.engine)
    metadata = model_metadata(arguments.run, classifier, arguments.engine)
    app = create_app(classifier, metadata, min_confidence=arguments.min_confidence)
    print(
        f"serving {classifier.name} ({arguments.engine}) on "
        f"http://{arguments.host}:{arguments.port}/  (API docs at /docs; Ctrl-C stops)",
        flush=True,
    )
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises it for the caller.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=arguments.host, port=arguments.port, log_level="info")
    print("server stopped", flush=True)
    return 0


def _load_classifier(run_or_model: Path, engine: str):
    """Load the model for ``engine``; only the Keras engine starts TensorFlow."""
    from mnist_cnn.engines import load_classifier

    if engine == "keras":
        _quiet_tensorflow()
    return load_classifier(run_or_model, engine)


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--min-confidence must be a number, got {text!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--min-confidence must be in [0, 1], got {text}")
    return value


def _add_inference_options(parser: argparse.ArgumentParser, engine_help: str) -> None:
    """--engine and --min-confidence, shared by predict and serve."""
    from mnist_cnn.prediction import DEFAULT_MIN_CONFIDENCE

    parser.add_argument(
        "--engine", choices=("keras", "onnx"), default="keras",
        help=f"{engine_help} (default: keras)",
    )  # fmt: skip
    parser.add_argument(
        "--min-confidence", type=_confidence, default=DEFAULT_MIN_CONFIDENCE,
        help=f"answers below this are marked uncertain (default: {DEFAULT_MIN_CONFIDENCE})",
    )  # fmt: skip


def _add_run_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "run", nargs="?", type=Path, default=Path("runs/latest"),
        help=f"{what} (default: runs/latest)",
    )  # fmt: skip


def _default_by_preset(field_name: str) -> str:
    """A TrainConfig field's default for help texts: "5 for best, else 1", or just "0"."""
    from mnist_cnn.config import PRESETS, TrainConfig

    usual = next(
        field.default for field in dataclasses.fields(TrainConfig) if field.name == field_name
    )
    changed = [
        f"{getattr(config, field_name):g} for {name}"
        for name, config in PRESETS.items()
        if getattr(config, field_name) != usual
    ]
    return ", ".join([*changed, f"else {usual:g}"]) if changed else f"{usual:g}"


def build_parser() -> argparse.ArgumentParser:
    from mnist_cnn.config import DEFAULT_PRESET, PRESETS, TEST_TIME_VIEWS

    parser = argparse.ArgumentParser(
        prog="mnist-cnn",
        description="Train, understand and use a convolutional network on MNIST digits.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = subcommands.add_parser(
        "data", help="load the dataset and print its shapes and class counts"
    )
    _add_data_options(data)
    data.set_defaults(handler=command_data)

    show = subcommands.add_parser("show", help="write one image as a black-on-white PNG")
    show.add_argument("--index", type=int, default=0, help="which image (default: 0)")
    show.add_argument(
        "--split", choices=("train", "test"), default="train", help="which set (default: train)"
    )
    show.add_argument(
        "--out", type=Path, default=None, help="PNG to write (default: sample-<split>-<index>.png)"
    )
    _add_data_options(show)
    show.set_defaults(handler=command_show)

    train = subcommands.add_parser(
        "train", help="train, evaluate, predict and plot, writing a run folder"
    )
    train.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help=f"settings to start from; 'seed' is the tutorial's model (default: {DEFAULT_PRESET})",
    )
    train.add_argument(
        "--epochs", type=int, default=None, help="passes over the data (default: the preset's)"
    )
    train.add_argument(
        "--batch-size", type=int, default=None, help="images per step (default: the preset's)"
    )
    train.add_argument(
        "--validation-split",
        type=float,
        default=None,
        help=(
            "fraction of the training images held out for validation "
            "(default: the preset's; seed uses 0.3)"
        ),
    )
    train.add_argument(
        "--seed", type=int, default=None, help="random seed for everything (default: 0)"
    )
    train.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on the first N training images only (default: all)",
    )
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
        "--run-dir",
        type=Path,
        default=None,
        help="folder to write (default: <runs-root>/<time>-<preset>)",
    )
    train.add_argument(
        "--runs-root",
        type=Path,
        default=Path("runs"),
        help="where new run folders go (default: runs)",
    )
    train.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run from its last completed epoch (default: a new run)",
    )
    train.add_argument(
        "--keep",
        choices=("last", "best"),
        default="last",
        help=(
            "model.keras is the last epoch's model, or the one with the best validation "
            "accuracy; best.keras is kept beside it when there is a validation split "
            "(default: last)"
        ),
    )
    _add_data_options(train)
    train.set_defaults(handler=command_train)

    evaluate = subcommands.add_parser(
        "evaluate",
        help="test metrics, per-class table, confusion matrix, worst errors and calibration",
    )
    _add_run_argument(evaluate, "run folder or .keras model file")
    evaluate.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to write the files (default: the run folder, or the model's folder)",
    )
    _add_data_options(evaluate)
    evaluate.set_defaults(handler=command_evaluate)

    report = subcommands.add_parser(
        "report", help="write report.html, one self-contained page about a run"
    )
    _add_run_argument(report, "run folder")
    report.add_argument(
        "--reevaluate",
        action="store_true",
        help="evaluate again even if evaluation.json exists (default: reuse it)",
    )
    _add_data_options(report)
    report.set_defaults(handler=command_report)

    compare = subcommands.add_parser("compare", help="compare runs in a table and one figure")
    compare.add_argument("runs", nargs="+", type=Path, help="run folders to compare")
    compare.add_argument(
        "--out", type=Path, default=Path("comparison.png"),
        help="figure of the validation curves (default: comparison.png)",
    )  # fmt: skip
    compare.set_defaults(handler=command_compare)

    predict = subcommands.add_parser(
        "predict",
        help="read digits in your own pictures (photos, drawings) or .npy arrays",
        description=(
            "Read handwritten digits. Pictures are made MNIST-like first: inverted if dark "
            "on light, lighting evened out, cropped, scaled into 20x20 and centred by mass. "
            "Exit code 0 when every input was answered, 1 when some failed, 2 for usage errors."
        ),
    )
    predict.add_argument(
        "paths", nargs="+", type=Path,
        help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP), folders, or .npy arrays",
    )  # fmt: skip
    predict.add_argument(
        "--model", type=Path, default=Path("runs/latest"),
        help="run folder or model file (default: runs/latest)",
    )  # fmt: skip
    _add_inference_options(predict, "keras, or onnx for a fast start without TensorFlow")
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    output.add_argument("--csv", action="store_true", help="print CSV (default: a table)")
    predict.add_argument(
        "--multi", action="store_true",
        help="read several digits, left to right, as one number (default: one digit)",
    )  # fmt: skip
    predict.add_argument(
        "--show-preprocessed", type=Path, default=None, metavar="OUT.png",
        help="write a strip of the 28x28 images the model saw (default: none)",
    )  # fmt: skip
    predict.set_defaults(handler=command_predict)

    export = subcommands.add_parser("export", help="write the model as ONNX or a SavedModel")
    _add_run_argument(export, "run folder or .keras model file")
    export.add_argument(
        "--format", choices=("onnx", "saved_model"), default="onnx",
        help="onnx (model.onnx) or saved_model (a TensorFlow SavedModel folder) (default: onnx)",
    )  # fmt: skip
    export.add_argument(
        "--out", type=Path, default=None, help="where to write (default: inside the run folder)"
    )
    export.add_argument(
        "--check", type=int, default=1000, metavar="N",
        help="compare ONNX with Keras on the first N test images, 0 to skip (default: 1000)",
    )  # fmt: skip
    _add_data_options(export)
    export.set_defaults(handler=command_export)

    serve = subcommands.add_parser("serve", help="the drawing page and REST API in the browser")
    _add_run_argument(serve, "run folder or model file")
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on; 0.0.0.0 opens it to the network (default: 127.0.0.1)",
    )  # fmt: skip
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    _add_inference_options(serve, "keras, or onnx (needs 'mnist-cnn export' first)")
    serve.set_defaults(handler=command_serve)
    return parser


@contextlib.contextmanager
def _ctrl_c_asks(stopper: StopWhenAsked) -> Iterator[None]:
    """While training, a first Ctrl-C asks ``stopper`` to stop after the current batch;
    a second one interrupts at once."""

    def on_interrupt(signal_number: int, frame: object) -> None:
        if stopper.asked:
            raise KeyboardInterrupt
        stopper.asked = True

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        _needs_tensorflow(arguments.handler)
        return arguments.handler(arguments)
    except MnistCnnError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. "| head"); that is not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
