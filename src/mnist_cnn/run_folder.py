"""Run folders: where a training run keeps its model, settings, history and figures.

A run folder holds ``model.keras``, ``config.json``, ``history.csv``,
``metrics.json``, ``samples.png``, ``predictions.png`` and
``training_curves.png``. Every file is written atomically (see ``atomic_files``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from mnist_cnn.atomic_files import atomic_path, write_json_atomic, write_text_atomic
from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import MnistCnnError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
EVALUATION_FILE = "evaluation.json"
REPORT_FILE = "report.html"
LATEST_LINK = "latest"
VERSIONED_PACKAGES = (
    "mnist-cnn",
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "numpy",
    "matplotlib",
    "pillow",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def new_run_dir(runs_root: Path, preset: str, now: dt.datetime | None = None) -> Path:
    """A fresh ``<root>/<YYYYmmdd-HHMMSS>-<preset>`` folder (suffixed if taken)."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    runs_root.mkdir(parents=True, exist_ok=True)
    candidate = runs_root / f"{stamp}-{preset}"
    suffix = 2
    while candidate.exists():
        candidate = runs_root / f"{stamp}-{preset}-{suffix}"
        suffix += 1
    candidate.mkdir()
    return candidate


def point_latest_at(run_dir: Path) -> None:
    """Make ``<run_dir's parent>/latest`` a relative symlink to ``run_dir``, atomically."""
    run_dir = run_dir.resolve()  # "runs/latest" itself must not become a loop
    link = run_dir.parent / LATEST_LINK
    if link.exists() and not link.is_symlink():
        return  # A real folder called "latest" belongs to the user; leave it alone.
    temporary = run_dir.parent / f".tmp-{LATEST_LINK}-{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_dir.name)
    os.replace(temporary, link)


def write_config(run_dir: Path, config: TrainConfig, data_description: dict[str, Any]) -> None:
    write_json_atomic(
        run_dir / CONFIG_FILE,
        {
            "config": config.to_dict(),
            "data": data_description,
            "versions": library_versions(),
            "created": dt.datetime.now().isoformat(timespec="seconds"),
        },
    )


def read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MnistCnnError(f"{run_dir}: no {CONFIG_FILE} in this run folder") from None
    except json.JSONDecodeError as error:
        raise MnistCnnError(f"{path}: not valid JSON ({error})") from None


def read_class_names(run_dir: Path, count: int) -> tuple[str, ...]:
    """The class names a run was trained with, or "0", "1", ... when unknown."""
    try:
        names = read_config(run_dir)["data"]["class_names"]
    except (MnistCnnError, OSError, ValueError, KeyError, TypeError):
        names = None  # no readable config: a model file on its own
    if not isinstance(names, list) or len(names) != count:
        return tuple(str(index) for index in range(count))
    return tuple(str(name) for name in names)


def write_history(
    run_dir: Path, history: Sequence[dict[str, float]], columns: Sequence[str]
) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({key: _format_number(value) for key, value in row.items()})
    write_text_atomic(run_dir / HISTORY_FILE, buffer.getvalue())


def read_history(run_dir: Path) -> list[dict[str, float]]:
    path = run_dir / HISTORY_FILE
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            {
                key: float(value) if value not in ("", None) else float("nan")
                for key, value in row.items()
            }
            for row in csv.DictReader(handle)
        ]


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    write_json_atomic(run_dir / METRICS_FILE, metrics)


def read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def save_figure(figure: Any, path: Path) -> None:
    """Save a Matplotlib figure as PNG, atomically."""
    with atomic_path(path) as temporary_path:
        figure.savefig(temporary_path, format="png")


def save_model(model: Any, path: Path) -> None:
    with atomic_path(path) as temporary_path:
        model.save(temporary_path)


def resolve_model_path(run_or_model: Path) -> Path:
    """A run folder (or ``runs/latest``) to its ``model.keras``; a model file to itself."""
    if run_or_model.is_dir():
        model_path = run_or_model / MODEL_FILE
        if not model_path.exists():
            raise MnistCnnError(f"{run_or_model}: no {MODEL_FILE} in this run folder")
        return model_path
    if not run_or_model.exists():
        raise MnistCnnError(f"{run_or_model}: no such run folder or model file")
    return run_or_model


def _format_number(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
