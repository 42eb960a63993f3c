"""Reports: the console summary of an evaluation and the self-contained HTML report."""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mnist_cnn.errors import MnistCnnError
from mnist_cnn.run_folder import RunFolder

REPORT_IMAGES = (
    "training_curves",
    "confusion_matrix",
    "misclassified",
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


def _data_uri(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


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
        images[name] = _data_uri(path) if path.exists() else None
    environment = Environment(
        loader=PackageLoader("mnist_cnn", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        run_name=run.name,
        created=stored.get("created"),
        config=stored.get("config", {}),
        data=stored.get("data", {}),
        versions=stored.get("versions", {}),
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
