"""Losses that Keras does not ship in the form training needs.

Registered with Keras, so a checkpoint compiled with one loads again
(``engines.open_keras_file`` imports this module first).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mnist_cnn")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy against integer labels with label smoothing.

    Keras's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``, and
    one-hot labels would change every input pipeline: the labels are one-hot
    encoded here, inside the loss, and the target becomes
    ``(1 - smoothing) * one_hot + smoothing / classes``.
    """

    def __init__(self, label_smoothing: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("name", "smoothed_sparse_crossentropy")
        super().__init__(**kwargs)
        self.label_smoothing = label_smoothing

    def call(self, labels: Any, probabilities: Any) -> Any:
        classes = ops.shape(probabilities)[-1]
        one_hot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), classes)
        return keras.losses.categorical_crossentropy(
            one_hot, probabilities, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
