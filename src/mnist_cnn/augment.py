"""Augmentation: random distortions of training batches, outside the saved model.

Training images are shifted, rotated, zoomed or elastically distorted in the
input pipeline (tf.data on TensorFlow, a compiled ``PyDataset`` on JAX), so the
saved model holds no random layers and loads anywhere.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from mnist_cnn.config import TrainConfig
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.models import steps_per_epoch


class ElasticDistortion(keras.layers.Layer):
    """Simard et al. (2003)'s elastic distortion of a batch of (N, H, W, 1) images.

    Each pixel is resampled from a place moved by a random field: uniform noise
    in [-1, 1] per pixel and axis, smoothed by a Gaussian of ``sigma`` pixels and
    scaled by ``alpha``. It imitates the wobble of real pen strokes, which the
    affine layers cannot. Keras's own ``RandomElasticTransform`` draws the same
    noise for both axes (every pixel moves along the diagonal) and loops over
    the batch, so it is not used.
    """

    def __init__(self, alpha: float, sigma: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha, self.sigma, self.seed = alpha, sigma, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # A kernel out to 3 sigma, at most the image's size (MNIST's border is blank anyway).
        radius = min(round(3 * sigma), 13)
        offsets = np.arange(-radius, radius + 1, dtype="float32")
        weights = np.exp(-(offsets**2) / (2 * sigma**2))
        weights /= weights.sum()
        # Depthwise kernels for a separable blur, one pass down the rows and one along
        # the columns, each of the field's two axes (channels) on its own.
        self.down_kernel = np.tile(weights[:, None, None, None], (1, 1, 2, 1))
        self.across_kernel = np.tile(weights[None, :, None, None], (1, 1, 2, 1))

    def call(self, images: Any, training: bool = False) -> Any:
        if not training or not self.alpha:
            return images
        from keras import ops

        height, width = images.shape[1], images.shape[2]
        batch = ops.shape(images)[0]
        noise = keras.random.uniform(
            (batch, height, width, 2), minval=-1.0, maxval=1.0, seed=self.seed_generator
        )
        blurred = ops.depthwise_conv(noise, self.down_kernel, padding="same")
        field = self.alpha * ops.depthwise_conv(blurred, self.across_kernel, padding="same")
        rows = ops.arange(height, dtype="float32")[None, :, None] + field[..., 0]
        columns = ops.arange(width, dtype="float32")[None, None, :] + field[..., 1]
        return _bilinear_sample(images, rows, columns)[..., None]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "sigma": self.sigma, "seed": self.seed}


def _bilinear_sample(images: Any, rows: Any, columns: Any) -> Any:
    """``images[n, rows, columns, 0]`` at fractional places, zero outside the image.

    Written with ``take_along_axis`` because ``ops.image.map_coordinates``
    needs the batch size when the graph is built, which tf.data does not know.
    """
    from keras import ops

    height, width = images.shape[1], images.shape[2]
    pixels = ops.reshape(images, (-1, height * width))
    top, left = ops.floor(rows), ops.floor(columns)
    sampled = 0.0
    for row_step in (0, 1):
        for column_step in (0, 1):
            row, column = top + row_step, left + column_step
            weight = (1 - ops.abs(rows - row)) * (1 - ops.abs(columns - column))
            inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
            flat = ops.clip(row, 0, height - 1) * width + ops.clip(column, 0, width - 1)
            flat = ops.reshape(ops.cast(flat, "int32"), (-1, height * width))
            value = ops.reshape(ops.take_along_axis(pixels, flat, axis=1), ops.shape(rows))
            sampled = sampled + ops.where(inside, weight * value, 0.0)
    return sampled


def augmentation_layers(config: TrainConfig, seed: int) -> keras.Sequential | None:
    """Random elastic distortions, zooms, rotations, shifts and erasing for training batches.

    None when all are turned off.
    """
    pipeline = []
    if config.elastic_alpha:
        pipeline.append(
            ElasticDistortion(config.elastic_alpha, config.elastic_sigma, seed=seed + 3)
        )
    if config.max_zoom_fraction:
        pipeline.append(
            keras.layers.RandomZoom(config.max_zoom_fraction, fill_mode="constant", seed=seed + 2)
        )
    if config.max_rotation_degrees:
        pipeline.append(
            keras.layers.RandomRotation(
                config.max_rotation_degrees / 360.0, fill_mode="constant", seed=seed
            )
        )
    if config.max_shift_pixels:
        fraction = config.max_shift_pixels / IMAGE_SIZE
        pipeline.append(
            keras.layers.RandomTranslation(
                fraction,
                fraction,
                fill_mode="constant",
                # Nearest-pixel sampling of a shift copies pixels whole, where a
                # fractional bilinear shift blurs the strokes that the sharp
                # test images do not have.
                interpolation="nearest" if config.whole_pixel_shifts else "bilinear",
                seed=seed + 1,
            )
        )
    if config.erasing_probability:
        # Last, so that the blank patch keeps its square edges. Patches of 2-10% of the
        # image (Keras's default reaches a third, which can erase what makes a 7 a 7).
        pipeline.append(
            keras.layers.RandomErasing(
                factor=(config.erasing_probability, config.erasing_probability),
                scale=(0.02, 0.1),
                fill_value=0.0,
                value_range=(0.0, 1.0),
                seed=seed + 4,
            )
        )
    return keras.Sequential(pipeline, name="augmentation") if pipeline else None


class AugmentedBatches(keras.utils.PyDataset):
    """Batches of ``images`` in order, each passed through ``augment``.

    On JAX the augmentation is compiled (its random state passed in and out),
    which is several times faster than calling the layers eagerly per batch.
    """

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, batch_size: int, augment: keras.Sequential
    ) -> None:
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.augment = batch_size, augment
        self._compiled = None
        if keras.backend.backend() == "jax":
            import jax

            augment.build((None, *images.shape[1:]))
            self._state = [variable.value for variable in augment.non_trainable_variables]
            self._compiled = jax.jit(self._stateless_augment)

    def _stateless_augment(self, state: list, batch: Any) -> tuple[Any, list]:
        return self.augment.stateless_call([], state, batch, training=True)

    def __len__(self) -> int:
        return steps_per_epoch(len(self.images), self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self._compiled is None:
            return self.augment(self.images[batch], training=True), self.labels[batch]
        augmented, self._state = self._compiled(self._state, self.images[batch])
        return augmented, self.labels[batch]


def epoch_inputs(
    images: np.ndarray, labels: np.ndarray, batch_size: int, augment: keras.Sequential | None
) -> dict[str, Any]:
    """``fit`` arguments for one epoch over ``images`` in their order, augmented if asked."""
    if augment is None:
        return {"x": images, "y": labels, "batch_size": batch_size, "shuffle": False}
    if keras.backend.backend() != "tensorflow":
        # Other backends (JAX on a GPU for the tuning sweep) augment batch by batch.
        return {"x": AugmentedBatches(images, labels, batch_size, augment), "shuffle": False}
    import tensorflow as tf

    # Augmenting in the input pipeline keeps the saved model free of random
    # layers, and lets tf.data overlap it with the training step.
    dataset = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(batch_size)
        .map(
            lambda batch, batch_labels: (augment(batch, training=True), batch_labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    return {"x": dataset, "shuffle": False}
