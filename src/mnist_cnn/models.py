"""The networks, and how they are compiled for training."""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnist_cnn.config import Precision, TrainConfig, check_test_time_views
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.preprocess import INPUT_SHAPE

if TYPE_CHECKING:
    import keras


def build_model(config: TrainConfig, num_classes: int = 10, name: str | None = None) -> keras.Model:
    """The network named by ``config.architecture``, not yet compiled.

    Input (N, 28, 28, 1) float32 in [0, 1]; output (N, num_classes) softmax
    probabilities. ``name`` tells apart the members of an ensemble.
    """
    import keras
    from keras import layers

    builders = {
        "tutorial": _tutorial_layers,
        "fast": _fast_layers,
        "accurate": _accurate_layers,
        "best": _best_layers,
        "deep": _deep_layers,
        "keras_io": _keras_io_layers,
    }
    if config.architecture not in builders:
        raise MnistCnnError(
            f"unknown architecture {config.architecture!r}; choose from {', '.join(builders)}"
        )
    # Layers take the global dtype policy when they are made: set it for this net only.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy(config.precision))
    try:
        body = builders[config.architecture](layers)
    finally:
        keras.config.set_dtype_policy(previous)
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            *body,
            # Softmax in float32 whatever the body computes in: bfloat16's 8-bit mantissa
            # would round probabilities near 1 and make the loss coarse.
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name=name or f"mnist_cnn_{config.architecture}",
    )


@functools.cache
def native_bfloat16() -> bool:
    """Whether training here gets bfloat16 arithmetic from the hardware, and so gains by it.

    True for TensorFlow on a CPU with AVX512-BF16 or AMX-BF16, where oneDNN runs
    bfloat16 convolutions natively (measured: README, "Presets and speed"). False
    elsewhere: other CPUs emulate bfloat16 (slower than float32), and bfloat16 on
    GPUs and on the JAX and PyTorch backends has not been measured here.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()  # not Linux, or not readable: assume none


def _machine_precision(precision: Precision) -> Precision:
    """``precision``, with "auto" replaced by what this machine will use."""
    if precision != "auto":
        return precision
    return "bfloat16" if native_bfloat16() else "float32"


def resolve_precision(config: TrainConfig) -> TrainConfig:
    """``config`` with ``precision="auto"`` replaced by what this machine will use."""
    if config.precision != "auto":
        return config
    return dataclasses.replace(config, precision=_machine_precision(config.precision))


def dtype_policy(precision: Precision) -> str:
    """The Keras dtype policy that trains at ``precision`` (weights stay float32)."""
    return "mixed_bfloat16" if _machine_precision(precision) == "bfloat16" else "float32"


def in_float32(network: keras.Model) -> keras.Model:
    """``network`` as it is saved and read: a float32 copy with its weights, and no loss.

    A net trained in bfloat16 is saved and served in float32: the same weights,
    predictions on any CPU (emulated bfloat16 is slow) and plain ONNX export. A
    compiled net loses its loss and optimizer in the copy, so that its saved file
    opens with plain ``keras.saving.load_model`` even when training used this
    package's own loss (``losses``); checkpoints keep them. ``network`` itself
    when there is nothing to change.
    """
    float32 = all(layer.dtype_policy.name == "float32" for layer in network.layers)
    if float32 and not network.compiled:
        return network
    config = network.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    copy = network.__class__.from_config(config)
    copy.set_weights(network.get_weights())
    return copy


def ensemble_model(members: list[keras.Model]) -> keras.Model:
    """One model that averages the members' probabilities; it saves and loads as one file."""
    import keras

    inputs = keras.Input(shape=INPUT_SHAPE)
    averaged = keras.layers.Average(name="average")([member(inputs) for member in members])
    return keras.Model(inputs, averaged, name=f"ensemble_of_{len(members)}")


# Test-time views: the image itself, its four 1-pixel shifts along the axes,
# then the four diagonal ones (rows, columns; positive is down and right).
VIEW_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def average_over_shifts(model: keras.Model, views: int) -> keras.Model:
    """``model`` itself for one view; else one model averaging its probabilities over shifts.

    The first ``views`` of ``VIEW_SHIFTS`` are made with padding and cropping
    layers, so the result saves, loads in safe mode and exports to ONNX as a
    plain Keras model; it costs ``views`` forward passes per image.
    """
    import keras
    from keras import layers

    check_test_time_views(views)
    if views == 1:
        return model
    inputs = keras.Input(shape=INPUT_SHAPE)
    outputs = [model(view) for view in shifted_views(inputs, views)]
    averaged = layers.Average(name=AVERAGE_VIEWS)(outputs)
    return keras.Model(inputs, averaged, name=f"{model.name}_over_{views}_views")


# The layer that averages the views' probabilities: how net_over_views knows such a model.
AVERAGE_VIEWS = "average_views"


def shifted_views(inputs: Any, views: int) -> list[Any]:
    """The first ``views`` of ``VIEW_SHIFTS`` of a Keras tensor of images, as layers."""
    from keras import layers

    shifted = []
    for rows, columns in VIEW_SHIFTS[:views]:
        view = inputs
        if (rows, columns) != (0, 0):
            # Zeros come in on one side and the far edge's pixels drop off.
            padding = ((max(rows, 0), max(-rows, 0)), (max(columns, 0), max(-columns, 0)))
            cropping = ((max(-rows, 0), max(rows, 0)), (max(-columns, 0), max(columns, 0)))
            view = layers.Cropping2D(cropping)(layers.ZeroPadding2D(padding)(inputs))
        shifted.append(view)
    return shifted


def net_over_views(model: keras.Model) -> tuple[keras.Model, int]:
    """The net that a model from ``average_over_shifts`` averages, and its view count.

    A model over no views is its own net, with one view.
    """
    if model.layers[-1].name != AVERAGE_VIEWS:
        return model, 1
    (net,) = [layer for layer in model.layers if hasattr(layer, "layers")]
    return net, len(model.layers[-1].input)


def _tutorial_layers(layers):
    # The classic TensorFlow/Keras tutorial, layer for layer: 1,199,882 parameters.
    return [
        layers.Conv2D(32, kernel_size=3, activation="relu"),
        layers.Conv2D(64, kernel_size=3, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
    ]


def _fast_layers(layers):
    # Pooling before the ReLU gives the same result as after it (both are
    # monotone) on a quarter of the values.
    return [
        layers.Conv2D(24, kernel_size=5),  # (N, 24, 24, 24)
        layers.MaxPooling2D(pool_size=2),  # (N, 12, 12, 24)
        layers.ReLU(),
        layers.Conv2D(32, kernel_size=3),  # (N, 10, 10, 32)
        layers.MaxPooling2D(pool_size=2),  # (N, 5, 5, 32)
        layers.ReLU(),
        layers.Flatten(),  # (N, 800)
        layers.Dense(256, activation="relu"),
    ]


def _batch_norm_net(layers, conv1: int, conv2: int, dense: int, dropout: float) -> list:
    """The fast net's shape with batch norm and dropout, at the given widths."""
    return [
        *_normalised_convolution(layers, conv1, kernel_size=5, pool=True),  # (N, 12, 12, conv1)
        *_normalised_convolution(layers, conv2, kernel_size=3, pool=True),  # (N, 5, 5, conv2)
        *_batch_norm_head(layers, dense, dropout),  # from (N, 25 * conv2)
    ]


def _normalised_convolution(layers, width: int, kernel_size: int, pool: bool) -> list:
    """A "valid" convolution, batch norm, 2x2 max-pooling if asked, then the ReLU."""
    # No biases: batch norm's offset does their job. Pooling before the ReLU does the
    # same work on a quarter of the values.
    return [
        layers.Conv2D(width, kernel_size=kernel_size, use_bias=False),
        layers.BatchNormalization(),
        *([layers.MaxPooling2D(pool_size=2)] if pool else []),
        layers.ReLU(),
    ]


def _batch_norm_head(layers, dense: int, dropout: float) -> list:
    """Flattened maps into a batch-normalised dense layer, then dropout."""
    return [
        layers.Flatten(),
        layers.Dense(dense, use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Dropout(dropout),
    ]


def _accurate_layers(layers):
    # Twice the fast net's width, with batch norm and dropout so that it can use
    # augmented data for several epochs without overfitting. A VGG-style stack
    # of "same" 3x3 convolutions at 28x28 measured 8x slower per epoch. The accurate
    # preset trained it until the fast net with test-time views did better on the
    # held-out split in a seventh of the time; runs that name it still train.
    return _batch_norm_net(layers, conv1=32, conv2=64, dense=256, dropout=0.3)


def _best_layers(layers):
    # The "accurate" architecture at 1.5x its width. The best preset trained it until the
    # deep net did better on the held-out split; runs that name it still train.
    return _batch_norm_net(layers, conv1=48, conv2=96, dense=384, dropout=0.4)


def _deep_layers(layers):
    # The best preset's net: two 3x3 convolutions where the other nets have one, in each
    # of two blocks (the shape of Deotte's well-known Kaggle MNIST nets), more
    # non-linearity for about 1.7x the arithmetic of the "best" architecture. "valid"
    # padding keeps the maps small; a stack of "same" convolutions at 28x28 measured 8x
    # slower per epoch than the fast net.
    def block(width: int) -> list:
        return [
            *_normalised_convolution(layers, width, kernel_size=3, pool=False),
            *_normalised_convolution(layers, width, kernel_size=3, pool=True),
        ]

    return [
        *block(32),  # (N, 12, 12, 32)
        *block(64),  # (N, 4, 4, 64)
        *_batch_norm_head(layers, dense=256, dropout=0.4),  # from (N, 1024)
    ]


def _keras_io_layers(layers):
    # keras-io examples/vision/mnist_convnet.py, as a peer in benchmarks.
    return [
        layers.Conv2D(32, kernel_size=3, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Conv2D(64, kernel_size=3, activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Flatten(),
        layers.Dropout(0.5),
    ]


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> float | object:
    """A constant rate, or a linear warm-up to the peak followed by cosine decay to zero.

    The warm-up-then-anneal shape is the one-cycle policy; Keras's
    ``CosineDecay`` with ``warmup_target`` implements it and saves with the model.
    """
    import keras

    if config.schedule == "constant":
        return config.peak_learning_rate
    total_steps = max(1, config.epochs * steps_per_epoch)
    warmup_steps = round(config.warmup_fraction * total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.peak_learning_rate / 10,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=config.peak_learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
        alpha=0.0,
    )


def compile_model(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """The config's optimizer (the tutorial's Adam by default), sparse categorical
    cross-entropy and accuracy, as in the tutorial."""
    from mnist_cnn.losses import SmoothedSparseCrossentropy

    model.compile(
        optimizer=_optimizer(config, learning_rate_schedule(config, steps_per_epoch)),
        loss=(
            SmoothedSparseCrossentropy(config.label_smoothing)
            if config.label_smoothing
            else "sparse_categorical_crossentropy"
        ),
        metrics=["accuracy"],
        jit_compile=compiles_steps(),
    )
    return model


def compiles_steps() -> bool:
    """Whether training steps are compiled (``jit_compile``) on this Keras backend."""
    import keras

    # Only on JAX, which trains fast only compiled (the GPU tuning sweeps used it). XLA
    # made one epoch of the fast net 2.9x slower on TensorFlow on the CPU (10.8 s against
    # 3.7 s, compiling included). On PyTorch, eager steps beat torch.compile on the CPU
    # (benchmarks/torch_compile.py: fast 8.7 s against 32.7 s, and best's second epoch 49 s
    # against 56 s after its compiling), and eager is Keras's own default there.
    return keras.backend.backend() == "jax"


# The momentum of the "sgd" optimizer: the usual value for image classifiers.
SGD_MOMENTUM = 0.9


def _optimizer(config: TrainConfig, learning_rate: float | object) -> keras.optimizers.Optimizer:
    """The config's optimizer; weight decay decoupled from the gradient in both.

    Decoupled (Loshchilov and Hutter's AdamW), so that it shrinks every weight
    alike instead of being rescaled by Adam's moments.
    """
    import keras

    weight_decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=learning_rate,
            momentum=SGD_MOMENTUM,
            nesterov=True,
            weight_decay=weight_decay,
        )
    return keras.optimizers.Adam(
        learning_rate=learning_rate,
        beta_1=config.adam_beta_1,
        beta_2=config.adam_beta_2,
        weight_decay=weight_decay,
    )


def steps_per_epoch(train_count: int, batch_size: int) -> int:
    return math.ceil(train_count / batch_size)


def count_parameters(model: keras.Model) -> int:
    return int(model.count_params())


def forward_flops_per_image(model: keras.Model) -> int:
    """Multiply-adds times two of the convolution and dense layers, for one image."""
    import keras
    from keras import layers

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            # An ensemble member, or a model averaged over shifted views: one
            # forward pass each time the outer graph calls it.
            calls = max(1, len(getattr(layer, "_inbound_nodes", ())))
            flops += calls * forward_flops_per_image(layer)
        elif isinstance(layer, layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_height, kernel_width = layer.kernel_size
            input_channels = layer.input.shape[-1]
            flops += 2 * height * width * filters * kernel_height * kernel_width * input_channels
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return int(flops)
