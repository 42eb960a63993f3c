"""Why this answer: saliency maps over the 28x28 image the model saw.

Two methods, each from (N, 28, 28) uint8 images and the class to explain for
each one to (N, 28, 28) float32 maps in [0, 1], 1 where the answer leans most:

- **occlusion** (the default): erase a small square of the image (set it to
  paper), see how much the chosen class's log-probability falls, and credit
  the fall to the square's pixels. It needs only forward passes, so it works
  through any ``engines.Classifier``: Keras, ONNX Runtime, the server's shared
  batches, ensembles and test-time views alike.
- **integrated gradients** (Sundararajan et al. 2017): the gradient of the
  chosen probability along the straight path from a blank image to the
  image, times the image. It needs a Keras model (ONNX Runtime has no
  gradients) and reads pixel by pixel, so it is speckled on 28x28 strokes.

Grad-CAM is not offered: the fast net's last convolution is 10x10 (5x5 after
pooling), which at 28x28 is a blur of blocks, and an ensemble or a model
averaged over shifted views has no single last convolution to take.
Which of the two reads better was measured (``benchmarks/compare_saliency.py``,
README "Why this answer"): the default is the one whose top pixels, erased,
lower the answer more.

Both keep only the evidence *for* the answer (a square whose erasing raises
the probability gets 0), and each map is scaled by its own maximum, so a map
shows where, not how much; a map of zeros means no pixel mattered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.engines import Classifier, ProbabilityFunction, keras_probability_function
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.preprocess import to_model_input

if TYPE_CHECKING:
    import keras

    from mnist_cnn.prediction import Answer

METHODS = ("occlusion", "integrated_gradients")
DEFAULT_METHOD = "occlusion"
# A 4x4 square is about a pen stroke's width on MNIST's 20x20 digit box: small
# enough to tell strokes apart, big enough that erasing it can change an answer.
# Moved by 2 pixels, 169 squares cover the image, every pixel by 1 to 4 of them.
OCCLUSION_PATCH = 4
OCCLUSION_STRIDE = 2
# Copies of images classified in one forward pass (169 per image): bounded so
# that a folder of pictures never holds more than a few megabytes of copies.
OCCLUSION_BATCH = 2048
# Points along the path from the blank image; 32 keep the sum of the
# attributions within a few percent of the change in probability on our nets.
INTEGRATED_GRADIENTS_STEPS = 32


def saliency_maps(
    classifier: Classifier | keras.Model,
    images: np.ndarray,
    classes: Sequence[int] | np.ndarray,
    method: str = DEFAULT_METHOD,
) -> np.ndarray:
    """(N, 28, 28) uint8 images and N classes -> (N, 28, 28) float32 maps in [0, 1].

    ``classifier``: an ``engines.Classifier`` (any engine) or a Keras model
    (an ensemble, a model averaged over views). ``classes``: the class to
    explain per image, usually the answer. Integrated gradients needs a Keras
    model; asked of a classifier it is refused with one line.
    """
    if method not in METHODS:
        raise MnistCnnError(f"unknown saliency method {method!r}; choose {' or '.join(METHODS)}")
    images, classes = _checked(images, classes)
    if method == "integrated_gradients":
        if isinstance(classifier, Classifier):
            raise MnistCnnError(
                f"{classifier.name}: integrated gradients need a Keras model's gradients; "
                "use occlusion, which works through any engine (ONNX Runtime has no gradients)"
            )
        return integrated_gradients_maps(classifier, images, classes)
    if isinstance(classifier, Classifier):
        probabilities = classifier.probabilities
    else:
        probabilities = keras_probability_function(classifier, OCCLUSION_BATCH)
    return occlusion_maps(probabilities, images, classes)


def occlusion_maps(
    probabilities: ProbabilityFunction,
    images: np.ndarray,
    classes: Sequence[int] | np.ndarray,
    patch: int = OCCLUSION_PATCH,
    stride: int = OCCLUSION_STRIDE,
    batch_size: int = OCCLUSION_BATCH,
) -> np.ndarray:
    """Occlusion maps through a probability function (N, 28, 28, 1) -> (N, classes).

    Each pixel's value is the mean fall in the class's log-probability over
    the squares that cover it, negative falls counted as 0, scaled to [0, 1].
    Log-probability, because a confident answer saturates: from 0.999 to 0.99
    is a fall of 0.009 in probability but ten times the odds against, and
    erasing the top-ranked pixels lowered held-out answers a little more with
    it (README, "Why this answer").
    """
    images, classes = _checked(images, classes)
    masks = _square_masks(patch, stride)  # (S, 28, 28) bool, True inside square s
    squares = len(masks)
    model_inputs = to_model_input(images)  # (N, 28, 28, 1)
    original = _log_chosen(probabilities(model_inputs), classes)  # (N,)
    falls = np.empty((len(images), squares), dtype=np.float32)  # (N, S)
    images_per_batch = max(1, batch_size // squares)
    keep = (~masks)[..., np.newaxis].astype(np.float32)  # (S, 28, 28, 1): 0 inside the square
    for start in range(0, len(images), images_per_batch):
        chunk = model_inputs[start : start + images_per_batch]  # (n, 28, 28, 1)
        occluded = (chunk[:, np.newaxis] * keep[np.newaxis]).reshape(-1, *chunk.shape[1:])
        chunk_classes = np.repeat(classes[start : start + len(chunk)], squares)
        chosen = _log_chosen(probabilities(occluded), chunk_classes).reshape(len(chunk), squares)
        falls[start : start + len(chunk)] = (
            original[start : start + len(chunk), np.newaxis] - chosen
        )
    flat_masks = masks.reshape(squares, -1).astype(np.float32)  # (S, 784)
    coverage = flat_masks.sum(axis=0)  # (784,) squares covering each pixel, at least 1
    maps = (np.maximum(falls, 0.0) @ flat_masks) / coverage  # (N, 784)
    return _scaled(maps.reshape(-1, IMAGE_SIZE, IMAGE_SIZE))


def integrated_gradients_maps(
    model: keras.Model,
    images: np.ndarray,
    classes: Sequence[int] | np.ndarray,
    steps: int = INTEGRATED_GRADIENTS_STEPS,
) -> np.ndarray:
    """Integrated gradients of the class's probability from a blank image, scaled to [0, 1].

    The blank image is paper (zeros), so paper pixels get exactly 0: the map
    can only light up ink. Works for any Keras model taking (N, 28, 28, 1),
    an ensemble or a model over test-time views included.
    """
    images, classes = _checked(images, classes)
    model_inputs = to_model_input(images)  # (N, 28, 28, 1)
    # Midpoints of ``steps`` equal intervals along the path: the Riemann sum's best rule.
    alphas = ((np.arange(steps, dtype=np.float32) + 0.5) / steps)[:, np.newaxis, np.newaxis]
    maps = np.empty(images.shape, dtype=np.float32)
    for index, (model_input, chosen_class) in enumerate(zip(model_inputs, classes, strict=True)):
        path = alphas[..., np.newaxis] * model_input[np.newaxis]  # (steps, 28, 28, 1)
        gradients = _class_gradients(model, path, np.full(steps, chosen_class))
        maps[index] = (model_input * gradients.mean(axis=0))[..., 0]
    return _scaled(np.maximum(maps, 0.0))


def _class_gradients(model: keras.Model, model_inputs: np.ndarray, classes: np.ndarray) -> Any:
    """d probability[class] / d input, (M, 28, 28, 1) float32, on the Keras backend in use.

    Keras 3 has no backend-neutral gradient, so this is the one place that
    asks each backend its own way. Only TensorFlow is tested here; the JAX
    and PyTorch branches follow those libraries' documented APIs, untested.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.convert_to_tensor(model_inputs)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            chosen = tf.gather(model(inputs, training=False), classes, axis=1, batch_dims=1)
        return keras.ops.convert_to_numpy(tape.gradient(chosen, inputs))
    if backend == "jax":  # untested: JAX is not installed where this was written
        import jax
        import jax.numpy as jnp

        def total(inputs: Any) -> Any:
            outputs = model(inputs, training=False)
            return jnp.sum(jnp.take_along_axis(outputs, jnp.asarray(classes)[:, None], axis=1))

        return np.asarray(jax.grad(total)(jnp.asarray(model_inputs)))
    if backend == "torch":  # untested: PyTorch is not installed where this was written
        import torch

        inputs = torch.tensor(model_inputs, requires_grad=True)
        outputs = model(inputs, training=False)
        index = torch.as_tensor(classes, dtype=torch.long)[:, None]
        torch.gather(outputs, 1, index).sum().backward()
        return inputs.grad.detach().cpu().numpy()
    raise MnistCnnError(f"integrated gradients are not available on the {backend} backend")


def explain_answers(
    answers: Sequence[Answer], classifier: Classifier, method: str = DEFAULT_METHOD
) -> list[Answer]:
    """The answers with a saliency map on every digit read, for the class it was read as."""
    digits = [digit for answer in answers for digit in answer.digits]
    if not digits:
        return list(answers)
    maps = iter(
        saliency_maps(
            classifier,
            np.stack([digit.image for digit in digits]),
            [digit.class_index for digit in digits],
            method,
        )
    )
    return [
        dataclasses.replace(
            answer,
            digits=[dataclasses.replace(digit, saliency=next(maps)) for digit in answer.digits],
        )
        for answer in answers
    ]


def _checked(
    images: np.ndarray, classes: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images must be (N, 28, 28), got {images.shape}")
    if len(classes) != len(images):
        raise ValueError(f"{len(images)} images but {len(classes)} classes")
    return images, classes


def _log_chosen(probabilities: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each row's log-probability of its class: (M, classes), (M,) -> (M,) float32."""
    chosen = np.asarray(probabilities, dtype=np.float32)[np.arange(len(classes)), classes]
    # float32 softmax rounds tiny probabilities to 0; the floor keeps the log finite.
    return np.log(np.maximum(chosen, 1e-12))


def _square_masks(patch: int, stride: int) -> np.ndarray:
    """(S, 28, 28) bool: squares of side ``patch`` every ``stride`` pixels, the last at the edge."""
    if not 1 <= patch <= IMAGE_SIZE or stride < 1:
        raise ValueError(f"patch must be 1 to {IMAGE_SIZE} and stride at least 1")
    starts = sorted({*range(0, IMAGE_SIZE - patch + 1, stride), IMAGE_SIZE - patch})
    masks = np.zeros((len(starts) ** 2, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for index, (row, column) in enumerate((row, column) for row in starts for column in starts):
        masks[index, row : row + patch, column : column + patch] = True
    return masks


def _scaled(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum: [0, 1], all zeros where nothing counted."""
    maps = np.asarray(maps, dtype=np.float32)
    peaks = maps.reshape(len(maps), -1).max(axis=1, initial=0.0)
    safe = np.where(peaks > 0, peaks, 1.0)[:, np.newaxis, np.newaxis]
    return np.clip(maps / safe, 0.0, 1.0).astype(np.float32)
