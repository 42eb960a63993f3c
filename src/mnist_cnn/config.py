"""Training presets as frozen dataclasses.

Every setting a run depends on lives in one ``TrainConfig``. The CLI builds it
from a preset plus the user's overrides, and the run folder keeps it as
``config.json`` so that a run can be understood and repeated later.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from mnist_cnn.errors import MnistCnnError

Architecture = Literal["tutorial", "fast", "accurate", "best", "deep", "keras_io"]
Schedule = Literal["constant", "warmup_cosine"]
# "sgd" is stochastic gradient descent with Nesterov momentum 0.9 (models.SGD_MOMENTUM);
# the Adam betas then do nothing.
Optimizer = Literal["adam", "sgd"]
OPTIMIZERS: tuple[Optimizer, ...] = ("adam", "sgd")
# The arithmetic while training (models.dtype_policy): "bfloat16" computes in bfloat16 with
# float32 weights (Keras's mixed_bfloat16); "auto" takes bfloat16 where the hardware has it
# (models.native_bfloat16). Saved models compute in float32 either way.
Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "float32", "bfloat16")
# How many views the saved model averages over: the image, then 1-pixel shifts (models.VIEW_SHIFTS).
TEST_TIME_VIEWS = (1, 5, 9)


def check_test_time_views(views: int) -> None:
    """The one check of a view count, for configs and for ``models.average_over_shifts``."""
    if views not in TEST_TIME_VIEWS:
        choices = ", ".join(map(str, TEST_TIME_VIEWS))
        raise ConfigError("test_time_views", f"must be one of {choices}, got {views}")


class ConfigError(MnistCnnError):
    """A setting out of its range. The message names the field; the CLI names its flag."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does."""

    preset: str  # the name the settings came from, for reports
    architecture: Architecture  # which network models.build_model makes
    epochs: int  # full passes over the training images
    batch_size: int  # images per optimizer step
    validation_split: float  # fraction held out from the end of the training set, as Keras does
    peak_learning_rate: float  # the optimizer's step size; the top of the schedule if any
    schedule: Schedule = "constant"  # how the learning rate moves over the run
    optimizer: Optimizer = "adam"  # the tutorial's Adam, or SGD with Nesterov momentum
    warmup_fraction: float = 0.0  # share of all steps spent rising to the peak
    adam_beta_1: float = 0.9  # Keras's default; lower forgets old gradients faster
    adam_beta_2: float = 0.999  # Keras's default
    label_smoothing: float = 0.0  # share of each target spread over all classes, 0 turns it off
    weight_decay: float = 0.0  # decoupled (AdamW-style) decay per step, times the learning rate
    max_shift_pixels: float = 0.0  # random translation per image, 0 turns augmentation off
    whole_pixel_shifts: bool = False  # round shifts to whole pixels: no blur from resampling
    max_rotation_degrees: float = 0.0  # random rotation per image
    max_zoom_fraction: float = 0.0  # random scaling per image, 0.1 is 90% to 110%
    elastic_alpha: float = 0.0  # strength of the random elastic distortion, 0 turns it off
    elastic_sigma: float = 4.0  # smoothness of its displacement field, in pixels
    erasing_probability: float = 0.0  # chance that a random patch of an image is blanked out
    # Share of the training digits redrawn with a thick marker or a skipping pen and prepared
    # as people's pictures are (pen_styles), once per run; 0 turns it off.
    pen_style_share: float = 0.0
    seed: int = 0  # seeds Python, NumPy and TensorFlow through keras.utils.set_random_seed
    limit: int | None = None  # train on the first N training images only, for quick tries
    ensemble: int = 1  # models trained with seeds seed, seed+1, ...; their probabilities averaged
    test_time_views: int = 1  # the saved model averages over the image and 4 or 8 1-pixel shifts
    precision: Precision = "float32"  # training arithmetic; a run's config.json names the one used

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # NaN passes every comparison below, and infinity most: refuse both first.
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(field.name, f"must be a finite number, got {value}")
        if self.epochs < 1:
            raise ConfigError("epochs", f"must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError("batch_size", f"must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ConfigError("validation_split", f"must be in [0, 1), got {self.validation_split}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError("label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", f"must be at least 0, got {self.weight_decay}")
        if not 0.0 <= self.erasing_probability <= 1.0:
            raise ConfigError(
                "erasing_probability", f"must be in [0, 1], got {self.erasing_probability}"
            )
        if not 0.0 <= self.pen_style_share <= 1.0:
            raise ConfigError("pen_style_share", f"must be in [0, 1], got {self.pen_style_share}")
        if self.elastic_alpha < 0:
            raise ConfigError("elastic_alpha", f"must be at least 0, got {self.elastic_alpha}")
        if self.elastic_sigma <= 0:
            raise ConfigError("elastic_sigma", f"must be above 0, got {self.elastic_sigma}")
        if self.ensemble < 1:
            raise ConfigError("ensemble", f"must be at least 1, got {self.ensemble}")
        check_test_time_views(self.test_time_views)
        if self.optimizer not in OPTIMIZERS:
            choices = ", ".join(OPTIMIZERS)
            raise ConfigError("optimizer", f"must be one of {choices}, got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            choices = ", ".join(PRECISIONS)
            raise ConfigError("precision", f"must be one of {choices}, got {self.precision!r}")
        if self.limit is not None and self.limit < 2:
            raise ConfigError("limit", f"must be at least 2, got {self.limit}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        try:
            return cls(**{key: value for key, value in values.items() if key in known})
        except TypeError as error:
            raise MnistCnnError(f"incomplete training settings ({error})") from None


# A small, wide net for one epoch at batch 128, with a warm-up-then-cosine schedule and
# aggressive Adam betas, its saved model averaging over 5 test-time views. On the held-out
# last 10k (3 seeds) it gave 99.07%, against 99.15% (2 seeds) for two epochs at batch 256
# with no views, in about half the training time: 4.1 s to 99.0% on the test set on an AMD
# EPYC, where two epochs took 5.6-8.4 s (medians of four runs) against the 6 s that issue 19
# asks for (benchmarks/results/tune_fast-one-epoch.json, time_to_accuracy*.json). The views
# cost reading time, not training time: 5 passes of a 2.5 MFLOP net per image. accurate is
# built from this config: it inherits every field it does not set.
_FAST = TrainConfig(
    preset="fast",
    architecture="fast",
    epochs=1,
    batch_size=128,
    validation_split=0.0,
    peak_learning_rate=0.01,
    schedule="warmup_cosine",
    warmup_fraction=0.2,
    adam_beta_1=0.7,
    adam_beta_2=0.9,
    test_time_views=5,
    # bfloat16 where the CPU has it (AVX512-BF16, AMX): 1.2x faster to the same test
    # accuracy on an Intel Xeon with AMX, 1.6x on an AMD EPYC, measured with the two-epoch
    # recipe (README, "Presets and speed").
    precision="auto",
)

PRESETS: dict[str, TrainConfig] = {
    # The classic TensorFlow/Keras tutorial, unchanged: the baseline every
    # speed-up is measured against.
    "tutorial": TrainConfig(
        preset="tutorial",
        architecture="tutorial",
        epochs=5,
        batch_size=128,
        validation_split=0.3,
        peak_learning_rate=0.001,
    ),
    "fast": _FAST,
    # The fast net and schedule for 6 epochs on images randomly shifted by whole pixels
    # and rotated, its saved model averaging over 9 test-time views. On the held-out
    # split (3 seeds) it beat the batch-norm net it replaced (99.52% against 99.44%)
    # in a seventh of the time: batch norm more than doubled the fast net's epoch on this CPU
    # (README, "Presets and speed"; benchmarks/results/tune_accurate-fast-net.json).
    "accurate": dataclasses.replace(
        _FAST,
        preset="accurate",
        epochs=6,
        batch_size=256,
        max_shift_pixels=2.0,
        whole_pixel_shifts=True,
        max_rotation_degrees=10.0,
        test_time_views=9,
        # A tenth of the digits redrawn with a thick marker or a skipping pen and prepared
        # as people's pictures are: on two validation sets of people-style pictures the
        # whole set gained 0.19 and 0.17 points (3 seeds each), broken strokes 0.7 and 1.9,
        # with the held-out MNIST accuracy unchanged (99.48% both)
        # (README, "Your own handwriting"; benchmarks/results/tune_accurate-pen-styles.json).
        pen_style_share=0.1,
    ),
    # The deep net (two 3x3 convolutions per block, batch norm and dropout) for 40 epochs
    # with decoupled weight decay on images shifted by up to 3 whole pixels and rotated by
    # up to 15 degrees, its saved model averaging over 5 test-time views; with --ensemble K,
    # K such models average their probabilities. Of the calibrated candidates it did best on
    # the held-out split (3 seeds: 99.68% per model, 99.74% for the 3 averaged, against 99.66%
    # and 99.67-99.71% for the 1.5x-wide one-convolution-per-block net it replaced; README,
    # "Presets and speed"; benchmarks/results/tune_best*.json). Label smoothing 0.1 did better
    # held out (99.72%) but left every answer about 91% sure (calibration error 0.2% -> 8.8%),
    # so it is not used (tune_best-smoothing.json).
    "best": TrainConfig(
        preset="best",
        architecture="deep",
        epochs=40,
        batch_size=128,
        validation_split=0.0,
        peak_learning_rate=0.004,
        schedule="warmup_cosine",
        warmup_fraction=0.2,
        weight_decay=0.05,
        max_shift_pixels=3.0,
        whole_pixel_shifts=True,
        max_rotation_degrees=15.0,
        test_time_views=5,
    ),
    # The keras-io "Simple MNIST convnet" example, as a peer in benchmarks.
    "keras_io": TrainConfig(
        preset="keras_io",
        architecture="keras_io",
        epochs=15,
        batch_size=128,
        validation_split=0.1,
        peak_learning_rate=0.001,
    ),
}

DEFAULT_PRESET = "fast"
# Old names that still work, each with the note the CLI prints.
PRESET_ALIASES = {"seed": "tutorial"}


def preset_name(name: str) -> str:
    """The preset's current name: aliases resolved, unknown names refused."""
    name = PRESET_ALIASES.get(name, name)
    if name not in PRESETS:
        raise MnistCnnError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return name


def preset_config(name: str, **overrides: Any) -> TrainConfig:
    """The preset called ``name`` with the given fields replaced (None means keep)."""
    name = preset_name(name)
    changes = {key: value for key, value in overrides.items() if value is not None}
    return dataclasses.replace(PRESETS[name], **changes)
