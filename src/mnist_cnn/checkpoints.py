"""Checkpoints: a run's whole training state after every epoch, safe against crashes.

What ``--resume`` continues from: the model with its optimizer state (so the
schedule's position too) and the history so far, in the run folder's
``checkpoints/`` (``run_folder.RunFolder`` says where).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mnist_cnn.atomic_files import copy_atomic, write_json_atomic
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.run_folder import RunFolder, save_model

STATE_FILE = "state.json"


class Checkpoints:
    """The training state of a run folder, saved after every epoch, crash-safe.

    ``checkpoints/epoch-NNNN.keras`` holds the model with its optimizer state;
    ``checkpoints/state.json`` names the newest complete one and holds the
    history. The state file is written (atomically) only after its checkpoint
    is complete, so whatever moment a run is killed, the state on disk points
    at a whole checkpoint. With a validation split, ``best.keras`` keeps the
    epoch with the best validation accuracy.
    """

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.folder = run.checkpoint_folder

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_FILE

    def exists(self) -> bool:
        return self.state_path.exists()

    def read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MnistCnnError(
                f"{self.run.path}: no checkpoint to resume from "
                f"(no {self.folder.name}/{STATE_FILE})"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MnistCnnError(f"{self.state_path}: not valid JSON ({error})") from None
        expected = {"epoch": int, "checkpoint": str, "history": list}
        if not isinstance(state, dict) or any(
            not isinstance(state.get(key), kind) for key, kind in expected.items()
        ):
            raise MnistCnnError(
                f"{self.state_path}: damaged (it needs an epoch number, a checkpoint name "
                "and the history)"
            )
        return state

    def newest_checkpoint(self) -> Path:
        """The complete checkpoint the state names."""
        return self.folder / self.read_state()["checkpoint"]

    def completed_epochs(self) -> int:
        return int(self.read_state()["epoch"]) if self.exists() else 0

    def save(self, model: Any, epoch: int, history: list[dict[str, float]]) -> None:
        previous = self.read_state() if self.exists() else {}
        checkpoint = self.folder / f"epoch-{epoch:04d}.keras"
        save_model(model, checkpoint)
        best_accuracy = previous.get("best_val_accuracy")
        best_epoch = previous.get("best_epoch")
        accuracy = history[-1].get("val_accuracy", float("nan"))
        if accuracy == accuracy and (best_accuracy is None or accuracy > best_accuracy):  # not NaN
            copy_atomic(checkpoint, self.run.best_model_file)  # the same bytes, no re-save
            best_accuracy, best_epoch = accuracy, epoch
        write_json_atomic(
            self.state_path,
            {
                "epoch": epoch,
                "checkpoint": checkpoint.name,
                "best_val_accuracy": best_accuracy,
                "best_epoch": best_epoch,
                "history": history,
            },
        )
        # The readable history, always in step with the newest checkpoint.
        self.run.write_history(history)
        for old in self.folder.glob("epoch-*.keras"):
            if old != checkpoint:
                old.unlink(missing_ok=True)

    def member(self, index: int) -> Checkpoints:
        """The checkpoints of ensemble member ``index``, in its own folder."""
        return Checkpoints(self.run.member(index))

    def members(self) -> list[Checkpoints]:
        """Every ensemble member's checkpoints, in member order."""
        return [Checkpoints(member) for member in self.run.members()]

    def any_saved(self) -> bool:
        """A state to resume from: this run's, or any ensemble member's."""
        return self.exists() or any(member.exists() for member in self.members())

    def require_saved(self) -> None:
        """A state to resume from, readable: else one line saying what is wrong."""
        if self.exists() or not self.any_saved():
            self.read_state()  # checks it, or raises "no checkpoint to resume from"

    def best_epoch(self) -> int | None:
        return self.read_state().get("best_epoch") if self.exists() else None

    def restore(self) -> tuple[Any, int, list[dict[str, float]]]:
        """The model (with optimizer state), completed epochs, and history so far."""
        from mnist_cnn.engines import open_keras_file

        state = self.read_state()
        # A run folder may come from elsewhere: its archive is checked like any model's.
        path = self.folder / state["checkpoint"]
        model = open_keras_file(path, compile=True, failure="cannot load the checkpoint")
        return model, int(state["epoch"]), list(state["history"])
