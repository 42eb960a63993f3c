"""Can the model tell a digit from a dot, a line, a letter, a shape or a scribble?

Compares digit scores side by side: three from the classifier alone (its
largest probability, minus the entropy of its probabilities, minus the energy
of its logits) and the learned digit-or-not network of ``rejection``, alone
and multiplied by the largest probability. Each score's threshold is chosen
on validation data only: the last 10k MNIST training images (and 500 of them
redrawn with a pen) against validation non-digits of the TRAINING family,
keeping ``DetectorConfig.digit_accept_target`` of the validation digits. The
figures are then on data nothing was chosen on: MNIST's 10k test digits, 1,000
of them redrawn with a pen, and HELD_OUT non-digits (other fonts, letters,
symbols and seeds).

Usage: python benchmarks/not_a_digit.py --model RUN [--non-digits 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from machine import describe

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"


def classifier_scores(model, model_inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Largest probability, negative entropy and negative energy, one per image.

    For a model over test-time views, the probabilities are its own (the views'
    average) and the energy is the views' mean energy.
    """
    import keras

    from mnist_cnn.models import net_over_views, shifted_views
    from mnist_cnn.preprocess import INPUT_SHAPE

    net, views = net_over_views(model)
    features = keras.Model(net.inputs, net.layers[-2].output)
    inputs = keras.Input(shape=INPUT_SHAPE)
    # The last hidden layer's features of each view, shifted as the saved model shifts
    # them: (views, N, features).
    views_features = keras.Model(
        inputs, keras.ops.stack([features(view) for view in shifted_views(inputs, views)])
    )
    kernel, bias = (keras.ops.convert_to_numpy(weight) for weight in net.layers[-1].weights)
    stacked = np.concatenate(
        [
            keras.ops.convert_to_numpy(views_features(model_inputs[start : start + 1000]))
            for start in range(0, len(model_inputs), 1000)
        ],
        axis=1,
    )
    per_view = (stacked @ kernel + bias).astype(np.float64)  # each view's logits

    def softmax(logits: np.ndarray) -> np.ndarray:
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)

    def energy(logits: np.ndarray) -> np.ndarray:
        top = logits.max(axis=1)
        return top + np.log(np.exp(logits - top[:, None]).sum(axis=1))

    probabilities = np.mean([softmax(logits) for logits in per_view], axis=0)
    entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, None))).sum(axis=1)
    return {
        "confidence": probabilities.max(axis=1),
        "entropy": -entropy,
        # Energy is -logsumexp(logits) (Liu et al. 2020); higher scores are more digit-like.
        "energy": np.mean([energy(logits) for logits in per_view], axis=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a run folder (a single model)")
    parser.add_argument("--non-digits", type=int, default=3000, help="held-out non-digits")
    parser.add_argument("--pen-digits", type=int, default=1000, help="test digits redrawn")
    parser.add_argument("--out", type=Path, default=RESULTS / "not_a_digit.json")
    parser.add_argument(
        "--stored",
        action="store_true",
        help="measure the run's own not_a_digit.keras instead of training one (default: train)",
    )
    parser.add_argument(
        "--packaged",
        action="store_true",
        help="measure the detector that ships with mnist-cnn (its network alone) as 'learned'",
    )
    arguments = parser.parse_args()

    from mnist_cnn.data import load_mnist
    from mnist_cnn.engines import keras_probability_function, load_model
    from mnist_cnn.models import forward_flops_per_image
    from mnist_cnn.non_digits import HELD_OUT, KINDS, TRAINING, make_non_digits
    from mnist_cnn.preprocess import to_model_input
    from mnist_cnn.rejection import (
        VALIDATION_SEED,
        VALIDATION_SPLIT,
        DetectorConfig,
        choose_threshold,
        learned_scores,
        network_function,
        pen_digits,
        separation,
        train_detector,
    )

    config = DetectorConfig()
    dataset = load_mnist()
    model = load_model(arguments.model)
    started = time.perf_counter()

    validation_digits = dataset.train_images[-VALIDATION_SPLIT:]
    validation = {
        "digits": validation_digits,
        "pen digits": pen_digits(
            validation_digits[: config.validation_pen_digit_count], VALIDATION_SEED
        ),
        "non-digits": make_non_digits(
            TRAINING, config.validation_non_digit_count, VALIDATION_SEED
        ).images,
    }
    held_out = make_non_digits(HELD_OUT, arguments.non_digits)
    test = {
        "digits": dataset.test_images,
        # A seed range no training or validation pen digit uses.
        "pen digits": pen_digits(dataset.test_images[: arguments.pen_digits], 900_000),
        "non-digits": held_out.images,
    }
    made_seconds = time.perf_counter() - started

    started = time.perf_counter()
    packaged_threshold = None
    if arguments.packaged:
        from mnist_cnn.engines import open_keras_file
        from mnist_cnn.rejection import PACKAGED_DETECTOR, read_settings

        detector_model = open_keras_file(PACKAGED_DETECTOR.keras)
        packaged_threshold, _ = read_settings(PACKAGED_DETECTOR.settings)
        learned_validation = json.loads(PACKAGED_DETECTOR.settings.read_text())["validation"]
    elif arguments.stored:
        from mnist_cnn.engines import open_keras_file
        from mnist_cnn.run_folder import RunFolder

        run = RunFolder(arguments.model)
        detector_model = open_keras_file(run.detector.keras)
        stored_settings = json.loads(run.detector.settings.read_text(encoding="utf-8"))
        learned_validation = stored_settings["validation"]
    else:
        probabilities = keras_probability_function(model, compiled=True)
        trained = train_detector(dataset, probabilities, config)
        detector_model, learned_validation = trained.model, trained.validation
    trained_seconds = time.perf_counter() - started
    learned = network_function(detector_model)

    def all_scores(images: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        per_set = {}
        for name, pictures in images.items():
            inputs = to_model_input(pictures)
            scores = classifier_scores(model, inputs)
            scores["learned"] = learned(inputs)
            scores["learned x confidence"] = learned_scores(scores["learned"], scores["confidence"])
            per_set[name] = scores
        return per_set

    validation_scores, test_scores = all_scores(validation), all_scores(test)
    test_predictions = np.concatenate(
        [
            np.argmax(model.predict(to_model_input(dataset.test_images), verbose=0), axis=1)
            == dataset.test_labels
        ]
    )
    rows = {}
    for score in validation_scores["digits"]:
        threshold = choose_threshold(
            np.concatenate(
                [validation_scores["digits"][score], validation_scores["pen digits"][score]]
            ),
            config.digit_accept_target,
        )
        figures = separation(
            test_scores["digits"][score], test_scores["non-digits"][score], threshold
        )
        accepted = test_scores["digits"][score] >= threshold
        non_digit_scores = test_scores["non-digits"][score]
        rows[score] = {
            "threshold": threshold,
            **figures,
            "accepted_pen_digits": float(np.mean(test_scores["pen digits"][score] >= threshold)),
            "accuracy_on_accepted_digits": float(test_predictions[accepted].mean()),
            "rejected_by_kind": {
                kind: float(np.mean(non_digit_scores[held_out.kinds == kind] < threshold))
                for kind in KINDS
            },
            "validation": separation(
                validation_scores["digits"][score],
                validation_scores["non-digits"][score],
                threshold,
            ),
        }

    if packaged_threshold is not None:
        # What ships, at the threshold stored with it (chosen on validation when it was made).
        packaged = test_scores["digits"]["learned"], test_scores["non-digits"]["learned"]
        rows["packaged detector at its stored threshold"] = {
            "threshold": packaged_threshold,
            **separation(*packaged, packaged_threshold),
            "accepted_pen_digits": float(
                np.mean(test_scores["pen digits"]["learned"] >= packaged_threshold)
            ),
            "accuracy_on_accepted_digits": float(
                test_predictions[packaged[0] >= packaged_threshold].mean()
            ),
            "rejected_by_kind": {
                kind: float(np.mean(packaged[1][held_out.kinds == kind] < packaged_threshold))
                for kind in KINDS
            },
        }

    # Runs without a learned detector use the confidence at min_confidence (0.5),
    # a threshold chosen earlier on validation data (results/min_confidence.json).
    fallback = test_scores["digits"]["confidence"], test_scores["non-digits"]["confidence"]
    rows["confidence at 0.5 (runs without a detector)"] = {
        "threshold": 0.5,
        **separation(*fallback, 0.5),
        "accepted_pen_digits": float(np.mean(test_scores["pen digits"]["confidence"] >= 0.5)),
        "rejected_by_kind": {
            kind: float(np.mean(fallback[1][held_out.kinds == kind] < 0.5)) for kind in KINDS
        },
    }

    result = {
        "machine": describe(),
        # Work per picture instead of a timing: two cores are shared while this runs.
        "flops_per_image": {
            "classifier": forward_flops_per_image(model),
            "detector": forward_flops_per_image(detector_model),
        },
        "model": str(arguments.model),
        "classifier_test_accuracy": float(test_predictions.mean()),
        "detector_config": config.__dict__,
        "detector": (
            "the packaged one (src/mnist_cnn/detectors)"
            if arguments.packaged
            else "the run's own (not_a_digit.keras)"
            if arguments.stored
            else "trained here"
        ),
        "learned_validation": learned_validation,
        "test_set": {
            "digits": len(test["digits"]),
            "pen_digits": len(test["pen digits"]),
            "held_out_non_digits": len(held_out.images),
            "held_out_blank": held_out.blank,
            "kinds": {kind: int((held_out.kinds == kind).sum()) for kind in KINDS},
        },
        "seconds": {"making pictures": made_seconds, "training the detector": trained_seconds},
        "scores": rows,
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"classifier test accuracy {100 * result['classifier_test_accuracy']:.2f}%")
    header = f"{'score':22s} {'AUROC':>7s} {'digits':>7s} {'pen':>7s} {'non-dig':>8s}  " + " ".join(
        f"{kind:>8s}" for kind in KINDS
    )
    print(header)
    for score, row in rows.items():
        kinds = " ".join(f"{100 * row['rejected_by_kind'][kind]:7.1f}%" for kind in KINDS)
        print(
            f"{score[:22]:22s} {row['auroc']:7.4f} {100 * row['accepted_digits']:6.2f}% "
            f"{100 * row['accepted_pen_digits']:6.2f}% {100 * row['rejected_non_digits']:7.2f}%  "
            f"{kinds}"
        )
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
