"""Training digits redrawn with people's pens (pen_styles), on real MNIST digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from mnist_cnn import pen_styles
from mnist_cnn.config import ConfigError, preset_config
from mnist_cnn.preprocess import BOX_SIZE, THICK_STROKE_WIDTH, _pen_width, stroke_width
from mnist_cnn.training import split_for_training


def _pieces(mask: np.ndarray) -> int:
    return ndimage.label(mask, structure=np.ones((3, 3)))[1]


def _box(mask: np.ndarray) -> int:
    """The longer side of the ink's box."""
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    return int(max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1))


def test_no_share_changes_nothing_and_the_input_is_never_changed(mnist):
    digits = mnist.train_images[:40]
    before = digits.copy()
    assert np.array_equal(pen_styles.redrawn_with_pens(digits, 0.0, seed=0), digits)
    redrawn = pen_styles.redrawn_with_pens(digits, 0.5, seed=0)
    assert np.array_equal(digits, before)
    assert redrawn.dtype == np.uint8 and redrawn.shape == digits.shape


def test_the_chosen_share_is_redrawn_the_same_way_for_the_same_seed(mnist):
    digits = mnist.train_images[:40]
    redrawn = pen_styles.redrawn_with_pens(digits, 0.5, seed=3)
    changed = (redrawn != digits).any(axis=(1, 2))
    # 20 picked; a digit the skipping pen wore away entirely would keep its MNIST form.
    assert 18 <= changed.sum() <= 20
    assert np.array_equal(pen_styles.redrawn_with_pens(digits, 0.5, seed=3), redrawn)
    assert not np.array_equal(pen_styles.redrawn_with_pens(digits, 0.5, seed=4), redrawn)


def test_a_digit_worn_to_a_few_dots_keeps_its_mnist_form(mnist):
    digits = mnist.train_images[:400]
    redrawn = pen_styles.redrawn_with_pens(digits, 1.0, seed=0)
    changed = (redrawn != digits).any(axis=(1, 2))
    ink = np.count_nonzero(redrawn > 127, axis=(1, 2))
    assert (ink[changed] >= pen_styles.MIN_INK_PIXELS).all()
    # Some were worn that far (the skipping pen), and kept their MNIST form.
    assert 0 < (~changed).sum() < 40


def test_both_pens_are_used_a_marker_adding_ink_and_a_skipping_pen_taking_it_away(mnist):
    generator = np.random.default_rng(0)
    more, less = 0, 0
    for digit in mnist.train_images[:40]:
        ink = pen_styles._redrawn_ink(digit, generator)
        original = pen_styles._upscaled_shape(digit).sum()
        inked = (ink > 0.5).sum()
        more += inked > 1.3 * original
        less += inked < 0.9 * original
    # MARKER_SHARE is a half: each pen draws about 20 of the 40.
    assert more >= 10 and less >= 10 and more + less == 40


def test_a_marker_draws_thick_strokes_that_the_preparation_thins(mnist):
    generator = np.random.default_rng(0)
    thinned = 0
    for digit in mnist.train_images[:12]:
        shape = pen_styles._upscaled_shape(digit)
        marked = pen_styles._marker(shape, generator)
        # The nib is at least 14% of the digit's height, and MNIST's pen about 13%: the
        # marked strokes are clearly thicker than the digit's own.
        assert _pen_width(marked) > 1.3 * _pen_width(shape)
        ink = pen_styles.fit_digit(ndimage.gaussian_filter(marked.astype(np.float32), 0.7))
        prepared = _pen_width(ink > 127)
        # The marker's pen where the digit fits 20x20, as fit_digit scales it.
        at_box_size = _pen_width(marked) * BOX_SIZE / _box(marked)
        # Strokes come out no thicker than MNIST's thickest (half a pixel of rounding),
        # and a marker well over that is thinned.
        assert prepared <= THICK_STROKE_WIDTH + 0.5
        if at_box_size > THICK_STROKE_WIDTH + 0.5:
            assert prepared < 0.8 * at_box_size
            thinned += 1
    assert thinned >= 6


def test_a_skipping_pen_breaks_the_strokes_and_the_bridges_join_some_again(mnist):
    generator = np.random.default_rng(0)
    broken, rejoined = [], []
    for digit in mnist.train_images[:30]:
        shape = pen_styles._upscaled_shape(digit)
        skipped = pen_styles._skipping(shape, generator)
        assert stroke_width(skipped) < stroke_width(shape)  # a thinner pen
        assert not (skipped & ~shape).any()  # it only takes ink away
        bridges = pen_styles.rejoining_bridges(skipped)
        if bridges.any():
            assert _pieces(skipped | bridges) < _pieces(skipped)
        broken.append(_pieces(skipped) > _pieces(shape))
        rejoined.append(_pieces(skipped | bridges) < _pieces(skipped))
    assert sum(broken) >= 20  # most digits are cut into more pieces
    # ... and the preprocessing's bridges join pieces again in some of them (not all:
    # where a pen skips more than BRIDGE_PENS of its widths, prepare_digit would not either).
    assert sum(rejoined) >= 0.2 * sum(broken)


def test_training_redraws_only_the_digits_it_trains_on(mnist):
    dataset = mnist.limited(100)
    config = preset_config("fast", validation_split=0.2, pen_style_share=0.5, seed=1)
    plain = split_for_training(dataset, preset_config("fast", validation_split=0.2))
    split = split_for_training(dataset, config)
    assert np.array_equal(split.validation_images, plain.validation_images)
    assert np.array_equal(split.train_labels, plain.train_labels)
    changed = (split.train_images != plain.train_images).any(axis=(1, 2, 3))
    assert 36 <= changed.sum() <= 40  # half of the 80 trained on
    # ... redrawn as the run's seed says, so a resumed run redraws the same digits.
    expected = pen_styles.redrawn_with_pens(mnist.train_images[:80], 0.5, seed=1)
    assert np.array_equal(split.train_images[..., 0], expected / np.float32(255))
    # Callers that read only the held-out digits or the counts can skip the redrawing.
    counted = split_for_training(dataset, config, with_pen_styles=False)
    assert np.array_equal(counted.train_images, plain.train_images)
    assert np.array_equal(counted.validation_images, split.validation_images)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ConfigError, match="pen_style_share must be in"):
        preset_config("accurate", pen_style_share=share)


@pytest.mark.parametrize("explicit", [False, True])
def test_training_on_other_data_turns_the_presets_pen_styles_off_unless_asked(
    tmp_path, capsys, mnist, explicit
):
    from tests.helpers import run_cli_here

    # Any dataset given with --data may not be digits (Fashion-MNIST, KMNIST).
    data = tmp_path / "other.npz"
    np.savez(
        data, x_train=mnist.train_images[:64], y_train=mnist.train_labels[:64],
        x_test=mnist.test_images[:16], y_test=mnist.test_labels[:16],
    )  # fmt: skip
    run_dir = tmp_path / "run"
    options = ["--pen-style-share", "0.1"] if explicit else []
    result = run_cli_here(
        capsys, "train", "--preset", "accurate", "--data", str(data), "--epochs", "1",
        "--run-dir", str(run_dir), *options,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stored = json.loads((run_dir / "config.json").read_text())["config"]
    if explicit:
        assert stored["pen_style_share"] == 0.1
        assert "pen styles are off" not in result.stderr
    else:
        assert stored["pen_style_share"] == 0.0
        assert f"note: training on {data}, not MNIST, so the preset's pen styles are off" in (
            result.stderr
        )
