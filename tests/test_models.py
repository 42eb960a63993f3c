"""The networks: the tutorial's exactly, and every preset trains a step and round-trips."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from mnist_cnn.config import PRESETS, TrainConfig, preset_config
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.models import build_model, compile_model, forward_flops_per_image
from mnist_cnn.runs import load_model, save_model


def test_seed_preset_is_the_tutorial_model_layer_for_layer():
    model = build_model(PRESETS["seed"], num_classes=10)
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
    assert PRESETS["seed"].batch_size == 128
    assert PRESETS["seed"].validation_split == 0.3


def test_seed_preset_compiles_with_adam_and_sparse_crossentropy():
    model = compile_model(build_model(PRESETS["seed"]), PRESETS["seed"], steps_per_epoch=10)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "sparse_categorical_crossentropy"


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
    np.testing.assert_allclose(loaded(images).numpy(), model(images).numpy(), atol=1e-6)


def test_flops_count_of_the_fast_net():
    model = build_model(PRESETS["fast"])
    # conv 5x5x1->24 on 24x24, conv 3x3x24->32 on 10x10, dense 800->256, dense 256->10.
    expected = 2 * (24 * 24 * 24 * 25 + 10 * 10 * 32 * 9 * 24 + 800 * 256 + 256 * 10)
    assert forward_flops_per_image(model) == expected


def test_unknown_preset_and_bad_settings_are_user_errors():
    with pytest.raises(MnistCnnError, match="unknown preset 'turbo'"):
        preset_config("turbo")
    with pytest.raises(MnistCnnError, match="--validation-split must be in"):
        preset_config("seed", validation_split=1.5)
    with pytest.raises(MnistCnnError, match="--epochs must be at least 1"):
        dataclasses.replace(PRESETS["fast"], epochs=0)


def test_config_round_trips_through_a_dict():
    config = preset_config("accurate", seed=7, limit=100)
    assert TrainConfig.from_dict(config.to_dict()) == config
