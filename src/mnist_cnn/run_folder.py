"""Run folders: the one module that knows what a training run keeps, and where.

A run folder is owned by one training at a time (an exclusive lock for the
life of the training) and by one run for ever (a fresh run refuses a folder
that already holds files; ``--resume`` continues the run that is there). Its
layout, every file written atomically (see ``atomic_files``)::

    <run>/
      config.json            every setting, the data's source, library versions (and, for a
                             fine-tuned run, ``finetuned_from``: its source run and corrections)
      model.keras            the model the run ends with (last, or best with keep=best)
      best.keras             the epoch with the best validation accuracy (with a split)
      history.csv            one row per epoch
      metrics.json           test accuracy and loss, timings, the first test image
      evaluation.json        per-class metrics, confusion, worst errors, calibration
      samples.png  predictions.png  training_curves.png
      confusion_matrix.png  misclassified.png  misclassified_why.png  calibration.png
      report.html            one self-contained page about the run
      model.onnx  saved_model/   written by ``mnist-cnn export``
      not_a_digit.keras  not_a_digit.onnx  not_a_digit.json
                             the learned "not a digit" detector, written by
                             ``mnist-cnn not-a-digit`` (``rejection``)
      checkpoints/           epoch-NNNN.keras (model + optimizer) and state.json,
                             kept by ``checkpoints.Checkpoints``
      member-<i>/            an ensemble member's own checkpoints/ and history.csv
      .lock                  held while a training writes here

Everything else asks this module for a path, or reads and writes through it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import io
import json
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnist_cnn.atomic_files import (
    TEMPORARY_PREFIX,
    atomic_path,
    write_json_atomic,
    write_text_atomic,
)
from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.rejection import DetectorFiles

if TYPE_CHECKING:
    from mnist_cnn.checkpoints import Checkpoints

LATEST_LINK = "latest"
LOCK_FILE = ".lock"
VERSIONED_PACKAGES = (
    "mnist-cnn",
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "jax",
    "torch",
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


@dataclass(frozen=True)
class RunFolder:
    """A run folder's paths, and the reading and writing of its files."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    # The files --------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def best_model_file(self) -> Path:
        return self.path / "best.keras"

    @property
    def history_file(self) -> Path:
        return self.path / "history.csv"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def evaluation_file(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def report_file(self) -> Path:
        return self.path / "report.html"

    @property
    def onnx_file(self) -> Path:
        return self.path / "model.onnx"

    @property
    def detector(self) -> DetectorFiles:
        """The run's own "not a digit" detector (``rejection``), used only once its settings
        file exists; without one the run uses the packaged detector."""
        return DetectorFiles(self.path)

    @property
    def saved_model_folder(self) -> Path:
        return self.path / "saved_model"

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def checkpoint_folder(self) -> Path:
        return self.path / "checkpoints"

    def member(self, index: int) -> RunFolder:
        """Ensemble member ``index``'s own folder, for its checkpoints and history."""
        return RunFolder(self.path / f"member-{index}")

    def members(self) -> list[RunFolder]:
        """Every ensemble member's folder, in member order."""
        folders = self.path.glob("member-*")
        return [RunFolder(folder) for folder in sorted(folders, key=_member_number)]

    def figure_file(self, name: str) -> Path:
        """``<name>.png``: samples, predictions, training_curves, confusion_matrix, ..."""
        return self.path / f"{name}.png"

    @property
    def checkpoints(self) -> Checkpoints:
        from mnist_cnn.checkpoints import Checkpoints

        return Checkpoints(self)

    @property
    def name(self) -> str:
        return self.path.resolve().name

    # Creating and owning ----------------------------------------------------------

    @classmethod
    def create_new(
        cls, runs_root: str | os.PathLike[str], preset: str, now: dt.datetime | None = None
    ) -> RunFolder:
        """A fresh ``<root>/<YYYYmmdd-HHMMSS>-<preset>`` folder (suffixed if taken)."""
        root = Path(runs_root)
        stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
        _make_folder(root)
        suffix = 1
        while True:
            candidate = root / (f"{stamp}-{preset}" + (f"-{suffix}" if suffix > 1 else ""))
            try:
                candidate.mkdir()  # atomic: two runs started in one second get two folders
            except FileExistsError:
                suffix += 1
                continue
            return cls(candidate)

    @contextlib.contextmanager
    def owned(self, *, resume: bool) -> Iterator[RunFolder]:
        """Hold the folder's exclusive lock for a training; check that it is ours to write.

        A fresh run needs an empty (or new) folder: one that holds another
        run's files would mix two runs (the old checkpoints and best.keras
        would be taken for the new run's). A resume needs the run's
        checkpoints, and clears the temporary files a killed run can leave.
        """
        import fcntl

        _make_folder(self.path)
        try:
            handle = open(self.lock_file, "a+")  # noqa: SIM115 - held for the whole training
        except OSError as error:
            raise MnistCnnError(f"{self.path}: cannot write here ({error.strerror})") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise MnistCnnError(
                    f"{self.path}: another training is writing this run folder; "
                    "wait for it to finish or choose another folder"
                ) from None
            # Checked under the lock, so two runs started at once cannot both find it empty.
            if resume:
                self.checkpoints.require_saved()
                self.remove_stray_temporaries()
            else:
                self.require_empty()
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield self

    def require_empty(self) -> None:
        if not self.path.is_dir():
            raise MnistCnnError(f"{self.path}: not a folder")
        others = sorted(entry.name for entry in self.path.iterdir() if entry.name != LOCK_FILE)
        if others:
            listed = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise MnistCnnError(
                f"{self.path}: the folder already holds files ({listed}); choose a new folder, "
                f"or continue an interrupted run there with 'mnist-cnn train --resume {self.path}'"
            )

    def remove_stray_temporaries(self) -> list[Path]:
        """Delete the ``.tmp-*`` files a killed writer left behind (never a whole file)."""
        strays = [path for path in self.path.rglob(f"{TEMPORARY_PREFIX}*") if path.is_file()]
        for path in strays:
            path.unlink(missing_ok=True)
        return strays

    def point_latest_at(self) -> None:
        """Make ``<parent>/latest`` a relative symlink to this folder, atomically."""
        run_dir = self.path.resolve()  # "runs/latest" itself must not become a loop
        link = run_dir.parent / LATEST_LINK
        if link.exists() and not link.is_symlink():
            return  # A real folder called "latest" belongs to the user; leave it alone.
        if link.is_symlink() and not _is_our_link(link):
            return  # A link of the user's own (to a path, not a sibling run): theirs too.
        temporary = run_dir.parent / f"{TEMPORARY_PREFIX}{LATEST_LINK}-{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(run_dir.name)
        os.replace(temporary, link)

    # Reading and writing ----------------------------------------------------------

    def write_config(
        self,
        config: TrainConfig,
        data_description: dict[str, Any],
        keep: str = "last",
        *,
        finetuned_from: dict[str, Any] | None = None,
    ) -> None:
        """``finetuned_from``: for a fine-tuned run, its source run, corrections and recipe."""
        stored = {
            "config": config.to_dict(),
            "data": data_description,
            "keep": keep,  # which model a resumed run ends with
            "backend": _keras_backend(),
            "versions": library_versions(),
            "created": dt.datetime.now().isoformat(timespec="seconds"),
        }
        if finetuned_from is not None:
            stored["finetuned_from"] = finetuned_from
        write_json_atomic(self.config_file, stored)

    def read_config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MnistCnnError(f"{self.path}: no config.json in this run folder") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MnistCnnError(f"{self.config_file}: not valid JSON ({error})") from None

    def read_train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.read_config().get("config", {}))

    def read_class_names(self, count: int) -> tuple[str, ...]:
        """The class names the run was trained with, or "0", "1", ... when unknown."""
        try:
            names = self.read_config()["data"]["class_names"]
        except (MnistCnnError, OSError, ValueError, KeyError, TypeError):
            names = None  # no readable config: a model file on its own
        if not isinstance(names, list) or len(names) != count:
            return tuple(str(index) for index in range(count))
        return tuple(str(name) for name in names)

    def write_history(self, history: Sequence[dict[str, float]]) -> None:
        write_history_file(self.history_file, history)

    def read_history(self) -> list[dict[str, float]]:
        if not self.history_file.exists():
            return []
        with open(self.history_file, newline="", encoding="utf-8") as handle:
            return [
                {
                    key: float(value) if value not in ("", None) else float("nan")
                    for key, value in row.items()
                }
                for row in csv.DictReader(handle)
            ]

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.metrics_file, metrics)

    def read_metrics(self) -> dict[str, Any]:
        if not self.metrics_file.exists():
            return {}
        try:
            return json.loads(self.metrics_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MnistCnnError(f"{self.metrics_file}: not valid JSON ({error})") from None

    def save_figure(self, figure: Any, name: str) -> Path:
        path = self.figure_file(name)
        save_figure(figure, path)
        return path

    def save_model(self, model: Any) -> None:
        save_model(model, self.model_file)


HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def write_history_file(path: Path, history: Sequence[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(HISTORY_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({key: _csv_number(value) for key, value in row.items()})
    write_text_atomic(path, buffer.getvalue())


def save_figure(figure: Any, path: Path) -> None:
    """Save a Matplotlib figure as PNG, atomically."""
    with atomic_path(path) as temporary_path:
        figure.savefig(temporary_path, format="png")


def save_model(model: Any, path: Path) -> None:
    with atomic_path(path) as temporary_path:
        model.save(temporary_path)


def _csv_number(value: Any) -> Any:
    """Six significant digits for floats: enough for a loss, readable in a table."""
    return f"{value:.6g}" if isinstance(value, float) else value


def _member_number(folder: Path) -> int:
    return int(folder.name.split("-")[1])


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MnistCnnError(f"{path}: not a folder") from None
    except OSError as error:
        raise MnistCnnError(f"{path}: cannot make this folder ({error.strerror})") from None


def _keras_backend() -> str | None:
    try:
        import keras
    except ImportError:
        return None
    return keras.backend.backend()


def _is_our_link(link: Path) -> bool:
    """Whether ``link`` is one that point_latest_at makes: a bare sibling name, to a run.

    A run's own link names a folder beside it that holds a config.json (or
    one that has since been deleted); a link to an absolute or nested path
    was made by someone else.
    """
    target = os.readlink(link)
    if os.sep in target or (os.altsep and os.altsep in target):
        return False
    sibling = link.parent / target
    return not sibling.exists() or RunFolder(sibling).config_file.is_file()
