"""Why this answer: saliency maps, and everywhere they are shown (CLI, API, report, page)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mnist_cnn.engines import Classifier, load_classifier, load_model
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.explain import METHODS, occlusion_maps, saliency_maps
from mnist_cnn.preprocess import to_model_input

INK = 25  # a pixel above this grey level (of 255) is ink


@pytest.fixture(scope="module")
def model(trained_run):
    return load_model(trained_run.run_dir)


@pytest.fixture(scope="module")
def digits(mnist):
    """Twenty real test digits, two of each class."""
    chosen = np.concatenate([np.flatnonzero(mnist.test_labels == c)[:2] for c in range(10)])
    return mnist.test_images[chosen], mnist.test_labels[chosen]


def assert_maps_lean_on_the_ink(maps, images):
    assert maps.shape == images.shape and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    for saliency in maps:
        assert saliency.max() == pytest.approx(1.0) and saliency.std() > 0.01  # not constant
    ink = images > INK
    on_ink = np.array([saliency[mask].mean() for saliency, mask in zip(maps, ink, strict=True)])
    on_paper = np.array([saliency[~mask].mean() for saliency, mask in zip(maps, ink, strict=True)])
    # Each map leans on the strokes: at least three times brighter on ink than on paper.
    assert (on_ink > 3 * on_paper).all(), (on_ink, on_paper)


@pytest.mark.parametrize("method", METHODS)
def test_maps_are_28x28_in_0_1_and_lean_on_the_ink(model, digits, method):
    images, labels = digits
    assert_maps_lean_on_the_ink(saliency_maps(model, images, labels, method), images)


def test_erasing_the_brightest_ink_lowers_the_answer_far_more_than_erasing_any(model, digits):
    images, labels = digits
    probabilities = load_classifier_from(model).probabilities
    maps = saliency_maps(model, images, labels)

    def answer_after_erasing(scores):
        erased = images.copy()
        for image, score in zip(erased, scores, strict=True):
            ink = np.flatnonzero(image.reshape(-1) > INK)
            top = ink[np.argsort(score.reshape(-1)[ink])[::-1][: len(ink) // 10]]
            image.reshape(-1)[top] = 0
        return probabilities(to_model_input(erased))[np.arange(len(labels)), labels].mean()

    random_scores = np.random.default_rng(0).random(images.shape)
    assert answer_after_erasing(maps) < answer_after_erasing(random_scores) - 0.1


def load_classifier_from(model) -> Classifier:
    from mnist_cnn.engines import keras_probability_function

    return Classifier("model", tuple("0123456789"), keras_probability_function(model))


@pytest.mark.parametrize("method", METHODS)
def test_an_ensemble_of_one_model_twice_explains_as_the_model_does(model, digits, method):
    from mnist_cnn.config import preset_config
    from mnist_cnn.models import average_over_shifts, build_model, ensemble_model

    # The model computes in float32 (as every saved run's does), over the preset's views:
    # so must its twin.
    config = preset_config("fast", precision="float32")
    twin = average_over_shifts(build_model(config, name="twin"), config.test_time_views)
    twin.set_weights(model.get_weights())
    images, labels = digits
    alone = saliency_maps(model, images[:6], labels[:6], method)
    together = saliency_maps(ensemble_model([model, twin]), images[:6], labels[:6], method)
    np.testing.assert_allclose(together, alone, atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_a_model_over_test_time_views_has_maps_too(model, digits, method):
    from mnist_cnn.models import average_over_shifts, net_over_views

    images, labels = digits
    # The run's model already averages 5 views of its net; 9 views of that net here.
    net, _ = net_over_views(model)
    views = average_over_shifts(net, 9)
    assert_maps_lean_on_the_ink(saliency_maps(views, images[:6], labels[:6], method), images[:6])


@pytest.fixture(scope="module")
def onnx_file(trained_run, tmp_path_factory):
    from mnist_cnn.export import export_model

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_model(trained_run.run_dir, "onnx", out).path


@pytest.mark.slow
def test_occlusion_works_through_the_onnx_engine_as_through_keras(onnx_file, model, digits):
    images, labels = digits
    through_onnx = saliency_maps(load_classifier(onnx_file, "onnx"), images, labels)
    np.testing.assert_allclose(through_onnx, saliency_maps(model, images, labels), atol=1e-2)


def test_integrated_gradients_through_a_classifier_says_to_use_occlusion(trained_run, digits):
    images, labels = digits
    with pytest.raises(MnistCnnError, match="use occlusion"):
        saliency_maps(load_classifier(trained_run.run_dir), images, labels, "integrated_gradients")


def test_bad_arguments_are_refused_in_one_line(model, digits):
    images, labels = digits
    with pytest.raises(MnistCnnError, match="unknown saliency method 'gradcam'"):
        saliency_maps(model, images, labels, "gradcam")
    with pytest.raises(ValueError, match=r"images must be \(N, 28, 28\)"):
        saliency_maps(model, images[:, :20], labels)
    with pytest.raises(ValueError, match="20 images but 3 classes"):
        saliency_maps(model, images, labels[:3])


def test_a_blank_image_has_a_blank_map_not_a_division_by_zero():
    def uniform(model_inputs):
        return np.full((len(model_inputs), 10), 0.1, dtype=np.float32)

    maps = occlusion_maps(uniform, np.zeros((2, 28, 28), np.uint8), [3, 4])
    assert maps.shape == (2, 28, 28) and not maps.any()


# The command line ---------------------------------------------------------------


def test_predict_explain_writes_a_grid_capped_with_a_note(trained_run, mnist, tmp_path):
    from mnist_cnn.cli import main
    from mnist_cnn.cli.predict_command import MAX_EXPLAINED

    folder = tmp_path / "digits"
    folder.mkdir()
    for index in range(MAX_EXPLAINED + 4):
        Image.fromarray(255 - mnist.test_images[index]).save(folder / f"{index:02d}.png")
    out = tmp_path / "why.png"
    assert main(["predict", "-q", "--model", str(trained_run.run_dir), "--explain", str(out),
                 str(folder)]) == 0  # fmt: skip
    with Image.open(out) as figure:
        assert figure.format == "PNG"
        # Six columns of 1.6 inches at 100 dpi; six rows of 1.75 inches, and the note.
        assert figure.size == (960, 1085)


@pytest.mark.slow
def test_predict_explain_works_with_the_onnx_engine(onnx_file, mnist, tmp_path):
    from mnist_cnn.cli import main

    picture, out = tmp_path / "seven.png", tmp_path / "why.png"
    Image.fromarray(255 - mnist.test_images[0]).save(picture)
    assert main(["predict", "-q", "--engine", "onnx", "--model", str(onnx_file),
                 "--explain", str(out), str(picture)]) == 0  # fmt: skip
    with Image.open(out) as figure:
        assert figure.size == (320, 175)  # one picture, drawn two columns wide to fit its caption


def test_predict_explain_onto_a_folder_is_one_line(trained_run, mnist, tmp_path, capsys):
    from mnist_cnn.cli import main

    picture = tmp_path / "seven.png"
    Image.fromarray(255 - mnist.test_images[0]).save(picture)
    out = tmp_path / "a-folder"
    out.mkdir()
    assert main(["predict", "-q", "--model", str(trained_run.run_dir), "--explain", str(out),
                 str(picture)]) == 2  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "a-folder" in error and "\n" not in error


# The API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(trained_run):
    from mnist_cnn.serve import create_app, model_metadata

    classifier = load_classifier(trained_run.run_dir)
    with TestClient(create_app(classifier, model_metadata(classifier, "keras"))) as test_client:
        yield test_client


def test_the_api_sends_saliency_only_when_asked(client, mnist):
    body = {"pixels": mnist.test_images[0].tolist()}
    plain = client.post("/api/predict", json=body).json()
    assert plain["digit"] == 7 and "saliency" not in plain
    explained = client.post("/api/predict?include=saliency", json=body).json()
    saliency = np.array(explained["saliency"])
    assert saliency.shape == (28, 28) and saliency.min() >= 0 and saliency.max() == 1
    seen = np.array(
        client.post("/api/predict?include=preprocessed", json=body).json()["preprocessed"]
    )
    assert saliency[seen > INK].mean() > 3 * saliency[seen <= INK].mean()
    assert explained["probabilities"] == plain["probabilities"]
    refused = client.post("/api/predict?include=reasons", json=body)
    assert refused.status_code == 422 and list(refused.json()) == ["detail"]


def test_the_api_explains_every_digit_of_a_number(client, mnist):
    pixels = np.zeros((28, 56), np.uint8)
    pixels[:, :28], pixels[:, 28:] = mnist.test_images[0], mnist.test_images[1]
    image = Image.fromarray(pixels).resize((112, 56))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    answer = client.post(
        "/api/predict?multi=true&include=saliency&include=preprocessed",
        files={"file": ("two.png", buffer.getvalue(), "image/png")},
    ).json()
    assert answer["number"] == "72" and "saliency" not in answer  # it is on each digit
    for digit in answer["digits"]:
        assert np.array(digit["saliency"]).shape == (28, 28)


def test_the_openapi_schema_documents_saliency(client):
    schema = client.get("/openapi.json").json()
    assert "saliency" in schema["components"]["schemas"]["AnswerResult"]["properties"]
    assert "include=saliency" in json.dumps(schema["paths"]["/api/predict"])


# The report ---------------------------------------------------------------------


def test_the_run_folder_and_report_show_the_worst_errors_and_why(trained_run):
    figure = trained_run.run_dir / "misclassified_why.png"
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.size[0] >= 600
    report = (trained_run.run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="figure-misclassified_why"' in report
    assert "The worst errors, and why" in report
