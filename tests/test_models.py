"""The networks: the tutorial's exactly, and every preset trains a step and round-trips."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from mnist_cnn.config import PRESETS, TrainConfig, preset_config
from mnist_cnn.engines import load_model
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.models import (
    VIEW_SHIFTS,
    average_over_shifts,
    build_model,
    compile_model,
    compiles_steps,
    ensemble_model,
    forward_flops_per_image,
    in_float32,
    native_bfloat16,
    net_over_views,
    resolve_precision,
)
from mnist_cnn.run_folder import save_model


def test_tutorial_preset_is_the_tutorial_model_layer_for_layer():
    model = build_model(PRESETS["tutorial"], num_classes=10)
    assert model.count_params() == 1_199_882
    summary = [
        (type(layer).__name__, getattr(layer, "filters", None) or getattr(layer, "units", None))
        for layer in model.layers
    ]
    assert summary == [
        ("Conv2D", 32),
        ("Conv2D", 64),
        ("MaxPooling2D", None),
        ("Dropout", None),
        ("Flatten", None),
        ("Dense", 128),
        ("Dropout", None),
        ("Dense", 10),
    ]
    assert model.layers[3].rate == 0.25 and model.layers[6].rate == 0.5
    assert model.output_shape == (None, 10)
    assert PRESETS["tutorial"].batch_size == 128
    assert PRESETS["tutorial"].validation_split == 0.3


def test_tutorial_preset_compiles_with_adam_and_sparse_crossentropy():
    model = compile_model(build_model(PRESETS["tutorial"]), PRESETS["tutorial"], steps_per_epoch=10)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "sparse_categorical_crossentropy"


@pytest.mark.parametrize(
    ("backend", "compiled"), [("tensorflow", False), ("jax", True), ("torch", False)]
)
def test_training_steps_are_compiled_only_on_jax(monkeypatch, backend, compiled):
    # XLA was slower on TensorFlow and torch.compile slower than eager steps on PyTorch
    # (benchmarks/torch_compile.py); JAX is fast only compiled.
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    assert compiles_steps() is compiled


def test_the_compiled_model_takes_the_backends_step_compilation():
    model = compile_model(build_model(PRESETS["fast"]), PRESETS["fast"], steps_per_epoch=1)
    assert model.jit_compile is compiles_steps()


def test_weight_decay_shrinks_the_weights_apart_from_the_gradient():
    # Decoupled weight decay (AdamW): with no gradient at all (a zero loss), each step
    # still multiplies every weight by 1 - decay x learning rate.
    config = preset_config("fast", weight_decay=0.5, schedule="constant", precision="float32")
    model = compile_model(build_model(config), config, steps_per_epoch=1)
    assert model.optimizer.weight_decay == 0.5
    assert (
        compile_model(build_model(PRESETS["fast"]), PRESETS["fast"], 1).optimizer.weight_decay
        is None
    )
    kernel = model.layers[-1].kernel
    before = np.asarray(kernel.value).copy()
    model.optimizer.apply_gradients([(np.zeros(before.shape, np.float32), kernel)])
    shrink = 1 - 0.5 * config.peak_learning_rate
    np.testing.assert_allclose(np.asarray(kernel.value), before * shrink, rtol=1e-6)


def test_output_size_follows_the_class_count():
    assert build_model(PRESETS["fast"], num_classes=3).output_shape == (None, 3)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_a_step_and_survives_save_and_load(name, tmp_path):
    config = PRESETS[name]
    model = compile_model(build_model(config), config, steps_per_epoch=2)
    images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    labels = np.arange(8) % 10
    before = [weight.copy() for weight in model.get_weights()]
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    after = model.get_weights()
    assert any(not np.array_equal(old, new) for old, new in zip(before, after, strict=True))
    path = tmp_path / "model.keras"
    save_model(model, path)
    loaded = load_model(path)
    # load_model gives the net in float32 (presets may train in bfloat16): the same weights.
    np.testing.assert_allclose(loaded(images).numpy(), in_float32(model)(images).numpy(), atol=1e-6)


def test_flops_count_of_the_fast_net():
    model = build_model(PRESETS["fast"])
    # conv 5x5x1->24 on 24x24, conv 3x3x24->32 on 10x10, dense 800->256, dense 256->10.
    expected = 2 * (24 * 24 * 24 * 25 + 10 * 10 * 32 * 9 * 24 + 800 * 256 + 256 * 10)
    assert forward_flops_per_image(model) == expected


def test_sgd_takes_nesterov_steps_and_decays_the_weights_apart_from_the_gradient(tmp_path):
    from mnist_cnn.engines import open_keras_file
    from mnist_cnn.models import SGD_MOMENTUM

    config = preset_config(
        "fast", optimizer="sgd", weight_decay=0.5, schedule="constant", precision="float32"
    )
    model = compile_model(build_model(config), config, steps_per_epoch=1)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.nesterov and model.optimizer.momentum == SGD_MOMENTUM
    kernel = model.layers[-1].kernel
    before = np.asarray(kernel.value).copy()
    # A first step from rest, gradient g: Nesterov's update is lr * (1 + momentum) * g,
    # and the decoupled decay multiplies the weight by 1 - decay x lr beforehand.
    gradient = np.full(before.shape, 0.1, np.float32)
    model.optimizer.apply_gradients([(gradient, kernel)])
    rate = config.peak_learning_rate
    expected = before * (1 - 0.5 * rate) - rate * (1 + SGD_MOMENTUM) * gradient
    np.testing.assert_allclose(np.asarray(kernel.value), expected, rtol=1e-5, atol=1e-7)
    # A checkpoint (what --resume reads) keeps the optimizer and its momentum.
    model = compile_model(build_model(config), config, steps_per_epoch=1)
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    model.fit(images, np.arange(4), batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "checkpoint.keras")
    loaded = open_keras_file(tmp_path / "checkpoint.keras", compile=True)
    assert isinstance(loaded.optimizer, keras.optimizers.SGD) and loaded.optimizer.nesterov
    assert loaded.optimizer.momentum == SGD_MOMENTUM
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations)
    for stored, trained in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(stored), np.asarray(trained))


def test_unknown_preset_and_bad_settings_are_user_errors():
    with pytest.raises(MnistCnnError, match="unknown preset 'turbo'"):
        preset_config("turbo")
    with pytest.raises(MnistCnnError, match="validation_split must be in"):
        preset_config("tutorial", validation_split=1.5)
    with pytest.raises(MnistCnnError, match=r"^epochs must be at least 1"):
        dataclasses.replace(PRESETS["fast"], epochs=0)
    with pytest.raises(MnistCnnError, match="elastic_sigma must be above 0, got 0"):
        preset_config("best", elastic_sigma=0.0)
    with pytest.raises(MnistCnnError, match=r"weight_decay must be at least 0, got -0\.1"):
        preset_config("best", weight_decay=-0.1)
    with pytest.raises(MnistCnnError, match=r"erasing_probability must be in \[0, 1\], got 1.5"):
        preset_config("best", erasing_probability=1.5)
    with pytest.raises(MnistCnnError, match="optimizer must be one of adam, sgd, got 'rmsprop'"):
        preset_config("best", optimizer="rmsprop")


def test_config_round_trips_through_a_dict():
    config = preset_config("accurate", seed=7, limit=100)
    assert TrainConfig.from_dict(config.to_dict()) == config


def _pixels_model():
    """A 'network' that outputs its input's pixels, to see exactly what each view shows."""
    inputs = keras.Input(shape=(28, 28, 1))
    return keras.Model(inputs, keras.layers.Flatten()(inputs), name="pixels")


@pytest.mark.parametrize("views", [5, 9])
def test_views_average_the_image_and_its_one_pixel_shifts(views):
    image = np.zeros((1, 28, 28, 1), dtype=np.float32)
    image[0, 10, 12, 0] = 1.0  # one lit pixel
    image[0, 27, 0, 0] = 1.0  # and one in the corner, which shifts partly off the canvas
    net = _pixels_model()
    averaged = average_over_shifts(net, views)
    output = averaged(image).numpy().reshape(28, 28)
    expected = np.zeros((28, 28))
    for rows, columns in VIEW_SHIFTS[:views]:
        for row, column in ((10, 12), (27, 0)):
            if 0 <= row + rows < 28 and 0 <= column + columns < 28:
                expected[row + rows, column + columns] += 1.0 / views
    np.testing.assert_allclose(output, expected, atol=1e-7)
    assert expected[10, 12] == pytest.approx(1.0 / views) and expected[9, 12] > 0
    # The net inside and the view count come back out, for tools that score each view.
    assert net_over_views(averaged) == (net, views)


def test_view_averaged_ensemble_saves_loads_and_counts_every_pass(tmp_path):
    config = PRESETS["fast"]
    ensemble = ensemble_model([build_model(config, name=f"member_{i}") for i in range(2)])
    model = average_over_shifts(ensemble, 5)
    images = np.random.default_rng(1).random((6, 28, 28, 1), dtype=np.float32)
    save_model(model, tmp_path / "views.keras")
    loaded = load_model(tmp_path / "views.keras")  # safe mode: no Lambda layers inside
    np.testing.assert_allclose(loaded(images).numpy(), model(images).numpy(), atol=1e-6)
    one_pass = forward_flops_per_image(build_model(config))
    assert forward_flops_per_image(ensemble) == 2 * one_pass
    assert forward_flops_per_image(loaded) == 5 * 2 * one_pass
    assert average_over_shifts(ensemble, 1) is ensemble
    with pytest.raises(MnistCnnError, match="test_time_views must be one of 1, 5, 9, got 3"):
        average_over_shifts(ensemble, 3)
    with pytest.raises(MnistCnnError, match="test_time_views must be one of 1, 5, 9, got 2"):
        preset_config("best", test_time_views=2)


def test_bfloat16_trains_in_bfloat16_and_hands_back_the_same_net_in_float32():
    config = dataclasses.replace(PRESETS["fast"], precision="bfloat16")
    model = compile_model(build_model(config), config, steps_per_epoch=2)
    policies = [layer.dtype_policy.name for layer in model.layers]
    # The body computes in bfloat16 with float32 weights; the softmax stays float32.
    assert policies[:-1] == ["mixed_bfloat16"] * (len(policies) - 1)
    assert policies[-1] == "float32"
    assert all(weight.dtype == np.float32 for weight in model.get_weights())
    images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    model.fit(images, np.arange(8) % 10, batch_size=4, epochs=1, verbose=0)

    served = in_float32(model)
    assert {layer.dtype_policy.name for layer in served.layers} == {"float32"}
    for trained, copied in zip(model.get_weights(), served.get_weights(), strict=True):
        np.testing.assert_array_equal(trained, copied)
    # Same weights, finer arithmetic: the probabilities agree to bfloat16's rounding.
    np.testing.assert_allclose(served(images).numpy(), model(images).numpy(), atol=0.02)
    assert in_float32(served) is served  # nothing to do for a float32 net
    # The global policy is left as it was for whatever the caller builds next.
    assert keras.config.dtype_policy().name == "float32"


def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it():
    resolved = resolve_precision(PRESETS["fast"])
    assert PRESETS["fast"].precision == "auto"
    assert resolved.precision == ("bfloat16" if native_bfloat16() else "float32")
    assert resolve_precision(PRESETS["tutorial"]).precision == "float32"  # asked for, kept
    with pytest.raises(MnistCnnError, match="precision must be one of auto, float32, bfloat16"):
        preset_config("fast", precision="half")


def test_label_smoothing_spreads_the_target_over_all_classes():
    from mnist_cnn.losses import SmoothedSparseCrossentropy

    probabilities = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], dtype=np.float32)
    labels = np.array([0, 1])
    # By hand: the target is 0.9 on the label plus 0.1 / 3 on every class.
    targets = np.full((2, 3), 0.1 / 3) + 0.9 * np.eye(3)[labels]
    expected = np.mean(-np.sum(targets * np.log(probabilities), axis=1))
    loss = SmoothedSparseCrossentropy(0.1)(labels, probabilities)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # Labels as a column, as some pipelines hand them, give the same loss.
    column = SmoothedSparseCrossentropy(0.1)(labels[:, None], probabilities)
    np.testing.assert_allclose(float(column), expected, rtol=1e-5)
    # Without smoothing it is the ordinary sparse cross-entropy: -log p(label).
    plain = SmoothedSparseCrossentropy(0.0)(labels, probabilities)
    np.testing.assert_allclose(float(plain), -np.mean(np.log([0.7, 0.05])), rtol=1e-5)


def test_a_checkpoint_compiled_with_label_smoothing_loads_with_it(tmp_path):
    from mnist_cnn.engines import open_keras_file

    # float32: the net computes as saved, and in_float32 has only the loss to drop.
    config = dataclasses.replace(PRESETS["fast"], label_smoothing=0.2, precision="float32")
    model = compile_model(build_model(config), config, steps_per_epoch=2)
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    model.fit(images, np.arange(4), batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "checkpoint.keras"
    model.save(path)
    loaded = open_keras_file(path, compile=True)
    assert loaded.loss.label_smoothing == 0.2
    # The model a run keeps carries no loss: plain Keras, without this package, opens it.
    kept = tmp_path / "model.keras"
    save_model(in_float32(model), kept)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, keras, numpy as np\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, kept, tmp_path / "images.npy", tmp_path / "out.npy"],
        check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model(images).numpy(), atol=1e-6)
    assert preset_config("best", label_smoothing=0.1).label_smoothing == 0.1
    with pytest.raises(MnistCnnError, match=r"label_smoothing must be in \[0, 1\), got 1.0"):
        preset_config("best", label_smoothing=1.0)


def test_the_best_preset_trains_the_deep_net_with_two_convolutions_per_block():
    config = PRESETS["best"]
    assert config.architecture == "deep"
    model = compile_model(build_model(config), config, steps_per_epoch=2)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(layer.filters, layer.kernel_size) for layer in convolutions] == [
        (32, (3, 3)), (32, (3, 3)), (64, (3, 3)), (64, (3, 3)),
    ]  # fmt: skip
    # 28 -> 26 -> 24, pooled to 12 -> 10 -> 8, pooled to 4: 4 * 4 * 64 into dense 256.
    expected = 2 * (
        26 * 26 * 32 * 9 + 24 * 24 * 32 * 9 * 32 + 10 * 10 * 64 * 9 * 32
        + 8 * 8 * 64 * 9 * 64 + 1024 * 256 + 256 * 10
    )  # fmt: skip
    assert forward_flops_per_image(model) == expected
    images = np.random.default_rng(2).random((8, 28, 28, 1), dtype=np.float32)
    before = [weight.copy() for weight in model.get_weights()]
    model.fit(images, np.arange(8) % 10, batch_size=4, epochs=1, verbose=0)
    assert any(
        not np.array_equal(old, new) for old, new in zip(before, model.get_weights(), strict=True)
    )
