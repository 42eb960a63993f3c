"""Training on real MNIST slices: it learns, it is reproducible, the split is Keras's."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mnist_cnn.config import preset_config
from mnist_cnn.evaluation import evaluate
from mnist_cnn.training import split_for_training, train


def test_fast_preset_on_a_slice_learns_real_digits(trained_run, mnist):
    # The session fixture trains the fast preset (two epochs) on 10k images, 9k of them
    # for training: a correctness check, not a speed check.
    assert trained_run.metrics["test_accuracy"] >= 0.97
    from mnist_cnn.engines import load_model

    model = load_model(trained_run.run_dir)
    evaluation = evaluate(model, mnist.test_images[:2000], mnist.test_labels[:2000])
    assert evaluation.accuracy >= 0.95


@pytest.mark.slow
def test_same_seed_gives_the_same_metrics_and_another_seed_does_not(mnist):
    def run(seed):
        config = preset_config("fast", limit=2000, validation_split=0.2, seed=seed, epochs=2)
        result = train(config, mnist)
        return result.history, evaluate(
            result.model, mnist.test_images[:500], mnist.test_labels[:500]
        )

    (history_a, evaluation_a), (history_b, evaluation_b) = run(5), run(5)
    assert evaluation_a.loss == evaluation_b.loss
    assert [row["val_loss"] for row in history_a] == [row["val_loss"] for row in history_b]
    _, evaluation_c = run(6)
    assert evaluation_c.loss != evaluation_a.loss


def test_validation_is_the_tail_of_the_training_set_as_in_keras(mnist):
    config = preset_config("seed", limit=1000)
    split = split_for_training(mnist, config)
    assert len(split.train_images) == 700 and len(split.validation_images) == 300
    np.testing.assert_array_equal(split.validation_labels, mnist.train_labels[700:1000])
    assert split.train_images.shape == (700, 28, 28, 1)
    assert split.train_images.dtype == np.float32
    assert split.train_images.min() >= 0.0 and split.train_images.max() == 1.0


def test_history_has_one_row_per_epoch_with_timing(mnist):
    config = preset_config("fast", limit=600, validation_split=0.5, epochs=3)
    result = train(config, mnist)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    for row in result.history:
        assert row["seconds"] > 0
        assert all(
            not math.isnan(row[key]) for key in ("loss", "accuracy", "val_loss", "val_accuracy")
        )


@pytest.mark.slow
def test_ensemble_averages_its_members_and_round_trips(mnist, tmp_path):
    import keras

    from mnist_cnn.engines import load_model
    from mnist_cnn.run_folder import save_model

    lines = []
    # One view, so that the members sit right under the ensemble (test_models covers views
    # around an ensemble).
    config = preset_config("fast", limit=1500, epochs=1, ensemble=2, seed=3, test_time_views=1)
    result = train(config, mnist, log=lines.append)
    assert lines == ["model 1/2 (seed 3)", "model 2/2 (seed 4)"]
    model = result.model
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert len(members) == 2
    images = np.asarray(mnist.test_images[:50], dtype=np.float32)[..., None] / 255
    expected = (members[0](images).numpy() + members[1](images).numpy()) / 2
    np.testing.assert_allclose(model(images).numpy(), expected, atol=1e-6)
    assert [row["epoch"] for row in result.history] == [1]
    save_model(model, tmp_path / "ensemble.keras")
    loaded = load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded(images).numpy(), expected, atol=1e-6)


def test_augmentation_moves_digits_but_keeps_their_ink(mnist):
    from mnist_cnn.augment import augmentation_layers

    config = preset_config("best", max_zoom_fraction=0.1)
    augment = augmentation_layers(config, seed=3)
    assert [type(layer).__name__ for layer in augment.layers] == [
        "RandomZoom",
        "RandomRotation",
        "RandomTranslation",
    ]
    images = mnist.train_images[:64, :, :, None].astype("float32") / 255.0
    moved = np.asarray(augment(images, training=True))
    assert moved.shape == images.shape
    assert np.mean(np.abs(moved - images) > 0.1) > 0.02  # pixels really moved
    ink_ratio = moved.sum(axis=(1, 2, 3)) / images.sum(axis=(1, 2, 3))
    assert np.all((ink_ratio > 0.7) & (ink_ratio < 1.3))  # digits stay on the canvas
    assert augmentation_layers(preset_config("fast"), seed=3) is None


def test_random_erasing_blanks_one_small_rectangle_in_the_chosen_share_of_images():
    from mnist_cnn.augment import augmentation_layers

    config = preset_config(
        "best", max_shift_pixels=0.0, max_rotation_degrees=0.0, erasing_probability=0.5
    )
    augment = augmentation_layers(config, seed=1)
    assert [type(layer).__name__ for layer in augment.layers] == ["RandomErasing"]
    images = np.ones((400, 28, 28, 1), np.float32)
    erased = np.asarray(augment(images, training=True))[..., 0] == 0.0
    counts = erased.sum(axis=(1, 2))
    assert 0.4 < np.mean(counts > 0) < 0.6  # half the images, give or take chance
    for mask in erased[counts > 0]:
        rows, columns = np.nonzero(mask)
        box = (rows.max() - rows.min() + 1) * (columns.max() - columns.min() + 1)
        assert box == mask.sum()  # one solid rectangle
        assert 0.01 < mask.mean() < 0.15  # a small patch, not a third of the digit
    # Left alone when not training, as for every augmentation layer.
    assert np.array_equal(np.asarray(augment(images, training=False)), images)
    # And applied where training feeds it: the input pipeline's batches.
    from mnist_cnn.augment import epoch_inputs

    inputs = epoch_inputs(images, np.zeros(len(images), np.int64), 100, augment)
    batch, _ = next(iter(inputs["x"]))
    assert 0.3 < np.mean((np.asarray(batch)[..., 0] == 0.0).any(axis=(1, 2))) < 0.7


def test_whole_pixel_shifts_copy_pixels_without_blurring_them(mnist):
    from mnist_cnn.augment import augmentation_layers

    images = mnist.train_images[:32, :, :, None].astype("float32") / 255.0
    padded = np.pad(images[..., 0], ((0, 0), (2, 2), (2, 2)))

    def whole_pixel_copies(shifted):
        """For each image: is it its original moved by whole pixels, at most 2 each way?"""
        return [
            any(
                np.array_equal(image, original[2 + rows : 30 + rows, 2 + columns : 30 + columns])
                for rows in range(-2, 3)
                for columns in range(-2, 3)
            )
            for image, original in zip(shifted[..., 0], padded, strict=True)
        ]

    for whole_pixels in (True, False):
        config = preset_config(
            "best", max_shift_pixels=2.0, max_rotation_degrees=0.0, whole_pixel_shifts=whole_pixels
        )
        shifted = np.asarray(augmentation_layers(config, seed=2)(images, training=True))
        assert not np.allclose(shifted, images)
        copies = whole_pixel_copies(shifted)
        # Bilinear shifts by fractions of a pixel blend neighbours into new grey values.
        assert all(copies) if whole_pixels else not any(copies)


def test_bilinear_sampling_moves_whole_pixels_exactly_and_averages_between_them():
    from mnist_cnn.augment import _bilinear_sample

    images = np.random.default_rng(0).random((2, 6, 5, 1)).astype("float32")
    rows = np.broadcast_to(np.arange(6, dtype="float32")[None, :, None], (2, 6, 5))
    columns = np.broadcast_to(np.arange(5, dtype="float32")[None, None, :], (2, 6, 5))
    np.testing.assert_allclose(_bilinear_sample(images, rows, columns), images[..., 0], atol=1e-6)
    # Reading one row further down moves the picture up; zeros come in at the bottom.
    moved = np.asarray(_bilinear_sample(images, rows + 1, columns))
    np.testing.assert_allclose(moved[:, :-1], images[:, 1:, :, 0], atol=1e-6)
    np.testing.assert_array_equal(moved[:, -1], 0.0)
    halfway = np.asarray(_bilinear_sample(images, rows, columns + 0.5))
    np.testing.assert_allclose(
        halfway[..., :-1], (images[:, :, :-1, 0] + images[:, :, 1:, 0]) / 2, atol=1e-6
    )


def test_elastic_distortion_moves_each_pixel_by_a_smooth_field_on_both_axes(mnist):
    from mnist_cnn.augment import ElasticDistortion

    # Distorting a ramp of the column (row) index reads back where each pixel
    # came from: the displacement field itself.
    height = width = 28
    row_ramp = np.broadcast_to(np.arange(height, dtype="float32")[:, None], (height, width))
    column_ramp = row_ramp.T
    fields = []
    for ramp in (row_ramp, column_ramp):
        layer = ElasticDistortion(alpha=34.0, sigma=4.0, seed=5)
        moved = np.asarray(layer(ramp[None, :, :, None], training=True))[0, :, :, 0]
        fields.append((moved - ramp)[8:20, 8:20])  # the middle: no zeros read from outside
    down, across = fields
    for field in fields:
        assert 0.3 < field.std() < 3.0  # alpha 34, sigma 4: about a pixel, as in Simard et al.
        assert np.abs(np.diff(field, axis=0)).mean() < 0.3 * np.abs(field).mean() + 0.05  # smooth
    # The two axes move independently (Keras's RandomElasticTransform moves both alike).
    assert abs(np.corrcoef(down.ravel(), across.ravel())[0, 1]) < 0.9

    images = mnist.train_images[:64, :, :, None].astype("float32") / 255.0
    layer = ElasticDistortion(alpha=34.0, sigma=4.0, seed=1)
    distorted = np.asarray(layer(images, training=True))
    assert distorted.shape == images.shape
    assert np.mean(np.abs(distorted - images) > 0.1) > 0.02
    ink_ratio = distorted.sum(axis=(1, 2, 3)) / images.sum(axis=(1, 2, 3))
    # Strokes are stretched and squeezed (by up to about a third at alpha 34, sigma 4),
    # but on average the ink stays.
    assert 0.95 < np.median(ink_ratio) < 1.05 and np.all((ink_ratio > 0.4) & (ink_ratio < 2))
    assert not np.allclose(np.asarray(layer(images, training=True)), distorted)  # fresh each call
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)


@pytest.mark.slow
def test_training_with_elastic_distortion_runs_in_the_input_pipeline(mnist):
    from mnist_cnn.augment import augmentation_layers

    config = preset_config("fast", limit=4096, epochs=2, elastic_alpha=34.0)
    assert [type(layer).__name__ for layer in augmentation_layers(config, seed=0).layers] == [
        "ElasticDistortion"
    ]
    result = train(config, mnist)
    assert result.history[-1]["accuracy"] > 0.7


def test_augmented_batches_cover_every_image_in_order_with_labels_untouched(mnist):
    from mnist_cnn.augment import AugmentedBatches, augmentation_layers

    images = mnist.train_images[:300, :, :, None].astype("float32") / 255.0
    labels = mnist.train_labels[:300].astype("int32")
    batches = AugmentedBatches(
        images, labels, batch_size=128, augment=augmentation_layers(preset_config("best"), 0)
    )
    assert len(batches) == 3
    sizes = [len(batches[index][1]) for index in range(len(batches))]
    assert sizes == [128, 128, 44]
    augmented, batch_labels = batches[2]
    np.testing.assert_array_equal(batch_labels, labels[256:])
    assert np.asarray(augmented).shape == (44, 28, 28, 1)
    assert not np.allclose(np.asarray(augmented), images[256:])


@pytest.mark.slow
def test_test_time_views_wrap_the_trained_net_and_the_kept_best_checkpoint(mnist, tmp_path):
    import keras

    from mnist_cnn.engines import load_model
    from mnist_cnn.models import average_over_shifts
    from mnist_cnn.pipeline import train_run

    config = preset_config("fast", limit=800, epochs=2, validation_split=0.25, test_time_views=5)
    images = np.asarray(mnist.test_images[:40], dtype=np.float32)[..., None] / 255
    result = train(config, mnist)
    (network,) = [layer for layer in result.model.layers if isinstance(layer, keras.Model)]
    expected = average_over_shifts(network, 5)(images).numpy()
    np.testing.assert_allclose(result.model(images).numpy(), expected, atol=1e-6)
    assert not np.allclose(network(images).numpy(), expected, atol=1e-3)  # the views matter

    summary = train_run(config, mnist, tmp_path / "run", keep="best", log=lambda line: None)
    kept = load_model(summary.run_dir)
    assert kept.get_layer("average_views") is not None
    (best_network,) = [layer for layer in kept.layers if isinstance(layer, keras.Model)]
    best = load_model(summary.run_dir / "best.keras")
    np.testing.assert_allclose(
        kept(images).numpy(), average_over_shifts(best, 5)(images).numpy(), atol=1e-6
    )
    assert best_network.count_params() == best.count_params()


def test_a_callback_that_asks_to_stop_ends_the_run_after_that_epoch(mnist):
    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    config = preset_config("fast", limit=600, validation_split=0.5, epochs=3, precision="float32")
    result = train(config, mnist, callbacks=[StopAfterFirst()])
    assert [row["epoch"] for row in result.history] == [1]


def test_a_run_names_the_precision_it_trained_in_and_keeps_float32_models(trained_run):
    from mnist_cnn.engines import load_model
    from mnist_cnn.models import native_bfloat16
    from mnist_cnn.run_folder import RunFolder

    run = RunFolder(trained_run.run_dir)
    # The fast preset asks for "auto": the run folder says what that meant here.
    assert run.read_train_config().precision == ("bfloat16" if native_bfloat16() else "float32")
    model = load_model(run.model_file)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    # best.keras is the checkpoint as it trained; loading it gives the float32 net too.
    best = load_model(run.best_model_file)
    assert {layer.dtype_policy.name for layer in best.layers} == {"float32"}
