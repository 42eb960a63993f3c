"""``mnist-cnn predict``: read the digits in people's own pictures."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mnist_cnn.cli.common import DEFAULT_RUN, add_inference_options, load_classifier, print_error
from mnist_cnn.cli.progress import Progress, progress_bar

EXIT_SOME_FAILED = 1
# Digits drawn by --explain: six rows of six stay readable on a screen, and each
# costs 169 forward passes (explain.OCCLUSION_*), so a big folder stays quick.
MAX_EXPLAINED = 36
logger = logging.getLogger(__name__)


def register(subcommands: argparse._SubParsersAction) -> None:
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
        "--model", type=Path, default=DEFAULT_RUN,
        help=f"run folder or model file (default: {DEFAULT_RUN})",
    )  # fmt: skip
    add_inference_options(predict, "keras, or onnx for a fast start without TensorFlow")
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
    predict.add_argument(
        "--explain", type=Path, default=None, metavar="OUT.png",
        help=(
            "write each digit's 28x28 image with a map of where its answer leans, "
            f"the first {MAX_EXPLAINED} digits at most (default: none)"
        ),
    )  # fmt: skip
    predict.set_defaults(handler=command_predict)


def command_predict(arguments: argparse.Namespace) -> int:
    import csv
    import json

    from mnist_cnn.prediction import answer_pictures
    from mnist_cnn.reading import read_pictures

    # Checked before the model loads, so a typo costs no reading and makes no folder.
    for option, out in (("--show-preprocessed", arguments.show_preprocessed),
                        ("--explain", arguments.explain)):  # fmt: skip
        if out is not None:
            _check_output_file(out, option)
    classifier = load_classifier(arguments.model, arguments.engine)
    # One picture needs no bar; a folder, an array or a list of files may take a while.
    many = len(arguments.paths) > 1 or any(
        path.is_dir() or path.suffix.lower() == ".npy" for path in arguments.paths
    )
    with progress_bar("pictures read", enabled=many) as progress:
        answers = answer_pictures(
            _counted(read_pictures(arguments.paths), progress),
            classifier,
            multi=arguments.multi,
            min_confidence=arguments.min_confidence,
        )
    for answer in answers:
        if answer.error:
            print_error(answer.error)

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
        _write_preprocessed(answers, arguments.show_preprocessed)
    if arguments.explain:
        _write_explained(answers, classifier, arguments.explain)
    return EXIT_SOME_FAILED if any(answer.error for answer in answers) else 0


def _check_output_file(out: Path, option: str) -> None:
    """Refuse an output path that could not be written: a folder, or one in no folder."""
    from mnist_cnn.errors import MnistCnnError

    if out.is_dir():
        raise MnistCnnError(f"{out}: is a folder; {option} needs a file name such as why.png")
    if not out.parent.is_dir():
        problem = "is not a folder" if out.parent.exists() else "no such folder"
        raise MnistCnnError(f"{out.parent}: {problem} (for {option} {out})")


def _counted(pictures: Iterable[Any], progress: Progress) -> Iterator[Any]:
    """The pictures, reporting each one once the reader asks for the next.

    How many a folder or an array holds is known only at the end, so the
    total is None: the bar counts.
    """
    for count, picture in enumerate(pictures, start=1):
        yield picture
        progress(count, None)


def _write_preprocessed(answers, out: Path) -> None:
    from mnist_cnn.plots import preprocessed_strip_figure
    from mnist_cnn.run_folder import save_figure

    shown = [(answer.name, digit) for answer in answers for digit in answer.digits]
    if shown:
        figure = preprocessed_strip_figure(
            [digit.image for _, digit in shown],
            [f"{Path(name).name}: {digit.digit}" for name, digit in shown],
        )
        save_figure(figure, out)
        logger.info("wrote %s", out)


def _write_explained(answers, classifier, out: Path) -> None:
    """The ``--explain`` figure: each digit read, with its saliency map over it."""
    import numpy as np

    from mnist_cnn.explain import saliency_maps
    from mnist_cnn.plots import saliency_figure
    from mnist_cnn.run_folder import save_figure

    read = [(answer.name, digit) for answer in answers for digit in answer.digits]
    shown = read[:MAX_EXPLAINED]
    note = (
        f"the first {len(shown)} of {len(read)} digits read ({MAX_EXPLAINED} at most)"
        if len(read) > len(shown)
        else None
    )
    if not shown:
        figure = saliency_figure(
            np.zeros((0, 28, 28)), np.zeros((0, 28, 28)), [], note="no digit read"
        )
    else:
        images = np.stack([digit.image for _, digit in shown])
        maps = saliency_maps(classifier, images, [digit.class_index for _, digit in shown])
        figure = saliency_figure(
            images,
            maps,
            [_explained_caption(Path(name).name, digit) for name, digit in shown],
            note=note,
        )
    save_figure(figure, out)
    logger.info("wrote %s", out)


def _explained_caption(name: str, digit) -> str:
    """The caption under a map: the answer, or "not a digit" with the guess the map explains."""
    if digit.not_a_digit:
        return f"{name}: not a digit ({digit.digit}?)"
    return f"{name}: {digit.digit} ({100 * digit.confidence:.0f}%)"


def _csv_row(answer) -> list:
    if answer.error:
        return [answer.name, "", "", "", "", answer.error]
    if not answer.digits:
        return [answer.name, "", "", "", "", answer.reason]
    top = " ".join(f"{name}:{p:.4f}" for name, p in answer.digits[0].top)
    note = answer.reason or _not_a_digit_note(answer)
    return [answer.name, answer.text, f"{answer.confidence:.4f}", answer.uncertain, top, note]


def _not_a_digit_note(answer) -> str:
    """Which pieces of a number were not digits ("" when all were)."""
    skipped = sum(digit.not_a_digit for digit in answer.digits)
    return f"{skipped} piece(s) not a digit, left out" if skipped else ""


def _answers_table(answers) -> str:
    from mnist_cnn.errors import one_line

    names = [one_line(answer.name) for answer in answers]
    width = max([4, *(len(name) for name in names)])

    def row(name: str, digit: str, confidence: str, note: str) -> str:
        return f"{name:{width}s}  {digit:>6s}  {confidence:>10s}  {note}"

    lines = [row("file", "digit", "confidence", "top 3")]
    for name, answer in zip(names, answers, strict=True):
        if answer.error:
            lines.append(row(name, "-", "-", "error (see above)"))
        elif not answer.digits:
            lines.append(row(name, "-", "-", answer.reason or ""))
        elif answer.reason:  # every digit refused: "not a digit", with the best guess
            guess = answer.digits[0] if len(answer.digits) == 1 else None
            note = f" (best guess {guess.digit}, {100 * guess.confidence:.1f}%)" if guess else ""
            lines.append(row(name, "-", "-", answer.reason + note))
        else:
            flag = "  (uncertain)" if answer.uncertain else ""
            if len(answer.digits) == 1:
                note = "  ".join(f"{label} {100 * p:.1f}%" for label, p in answer.digits[0].top)
            else:
                note = "digits " + " ".join(
                    "?:not a digit" if d.not_a_digit else f"{d.digit}:{100 * d.confidence:.0f}%"
                    for d in answer.digits
                )
            lines.append(row(name, answer.text, f"{100 * answer.confidence:.1f}%", note + flag))
    return "\n".join(lines)
