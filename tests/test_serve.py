"""The REST API with the framework's test client: every endpoint and every bad input."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mnist_cnn.decoding import array_to_gray
from mnist_cnn.engines import Classifier, load_classifier
from mnist_cnn.explain import explain_answers
from mnist_cnn.prediction import Answer, answer_pictures
from mnist_cnn.reading import Picture
from mnist_cnn.serve import MAX_BODY_BYTES, Batcher, create_app, model_metadata
from mnist_cnn.serve.schemas import AnswerResult


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(trained_run):
    classifier = load_classifier(trained_run.run_dir)
    app = create_app(classifier, model_metadata(classifier, "keras"))
    with TestClient(app) as test_client:  # runs the lifespan: the batcher is started
        yield test_client


@pytest.fixture
def seven_png(mnist):
    big = Image.fromarray(255 - mnist.test_images[0]).resize((200, 200))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_and_model(client, trained_run):
    health = client.get("/api/health").json()
    assert health == {"status": "ok", "model": trained_run.run_dir.name, "preset": "fast"}
    model = client.get("/api/model").json()
    assert model["class_names"] == [str(digit) for digit in range(10)]
    assert model["input_shape"] == [28, 28, 1]
    assert model["test_accuracy"] == pytest.approx(trained_run.metrics["test_accuracy"])


def test_model_metadata_never_shows_where_the_model_lives(client, trained_run):
    response = client.get("/api/model")
    assert str(trained_run.run_dir.parent) not in response.text
    model = response.json()
    assert model["name"] == trained_run.run_dir.name
    assert model["file"] == "model.keras" and model["engine"] == "keras"


@pytest.fixture(scope="module")
def classifier(trained_run):
    return load_classifier(trained_run.run_dir)


def test_the_api_answer_is_the_cli_answer_with_the_preprocessed_image(client, classifier, mnist):
    pixels = mnist.test_images[1]
    api_answer = client.post(
        "/api/predict?include=preprocessed", json={"pixels": pixels.tolist()}
    ).json()
    (answer,) = answer_pictures([Picture("pixels", gray=array_to_gray(pixels))], classifier)
    expected = answer.to_dict(include_preprocessed=True)
    assert set(api_answer) == set(expected)
    for key in ("file", "digit", "name", "uncertain", "number", "digits", "reason", "error"):
        assert api_answer[key] == expected[key], key
    assert api_answer["preprocessed"] == expected["preprocessed"]
    assert api_answer["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)
    assert "preprocessed" not in answer.to_dict()


def test_every_kind_of_answer_has_the_one_documented_shape(classifier, mnist):
    strip = np.concatenate([np.pad(mnist.test_images[i], ((4, 4), (8, 8))) for i in (0, 1)], axis=1)
    single, blank = answer_pictures(
        [Picture("seven", gray=array_to_gray(mnist.test_images[0])),
         Picture("blank", gray=np.zeros((40, 40), np.float32))],
        classifier,
    )  # fmt: skip
    (several,) = answer_pictures(
        [Picture("strip", gray=array_to_gray(strip))], classifier, multi=True
    )
    failed = Answer(name="gone.png", error="gone.png: no such file")
    explained = explain_answers([single, several], classifier)
    fields = set(AnswerResult.model_fields)
    optional = {"preprocessed", "saliency"}  # only when asked for
    for answer in (single, blank, several, failed, *explained):
        for include_preprocessed in (False, True):
            shown = answer.to_dict(include_preprocessed)
            AnswerResult.model_validate(shown)  # extra="forbid": no key outside the schema
            assert set(shown) == fields - (optional - set(shown))
            assert ("preprocessed" in shown) == include_preprocessed
    assert single.to_dict()["digit"] == 7 and single.to_dict()["name"] == "7"
    assert blank.to_dict()["digit"] is None and blank.to_dict()["reason"] == "no digit found"
    shown = several.to_dict()
    assert shown["number"] == "72" and shown["digit"] is None and shown["top"] is None
    assert [digit["digit"] for digit in shown["digits"]] == [7, 2]
    assert failed.to_dict()["error"] == "gone.png: no such file"
    assert np.array(explained[0].to_dict()["saliency"]).shape == (28, 28)
    assert all("saliency" in digit for digit in explained[1].to_dict()["digits"])


def test_predict_an_uploaded_image(client, seven_png):
    response = client.post(
        "/api/predict?include=preprocessed", files={"file": ("seven.png", seven_png, "image/png")}
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["digit"] == 7 and answer["name"] == "7" and answer["file"] == "seven.png"
    assert answer["top"][0] == {"digit": 7, "name": "7", "probability": answer["confidence"]}
    assert len(answer["top"]) == 3 and answer["number"] == "7" and answer["digits"] is None
    assert answer["confidence"] == pytest.approx(max(answer["probabilities"]), abs=1e-5)
    assert len(answer["probabilities"]) == 10
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-3)
    preprocessed = np.array(answer["preprocessed"])
    assert preprocessed.shape == (28, 28) and preprocessed.max() >= 200


def test_predict_json_pixels(client, mnist):
    response = client.post("/api/predict", json={"pixels": mnist.test_images[1].tolist()})
    assert response.status_code == 200
    assert response.json()["name"] == "2"


def test_blank_canvas_is_no_digit(client):
    blank = np.full((280, 280), 255, dtype=np.uint8)
    response = client.post("/api/predict", files={"file": ("blank.png", png(blank), "image/png")})
    assert response.status_code == 200
    assert response.json()["digit"] is None
    assert response.json()["reason"] == "no digit found"


def test_multi_digit_image(client, mnist):
    strip = np.concatenate(
        [np.pad(mnist.test_images[i], ((4, 4), (8, 8))) for i in (0, 1, 2)], axis=1
    )
    picture = np.asarray(
        Image.fromarray(255 - strip).resize((strip.shape[1] * 5, strip.shape[0] * 5))
    )
    response = client.post(
        "/api/predict?multi=true&include=preprocessed",
        files={"file": ("number.png", png(picture), "image/png")},
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["number"] == "721"
    assert answer["digit"] is None and answer["probabilities"] is None
    assert [digit["name"] for digit in answer["digits"]] == ["7", "2", "1"]
    assert [len(digit["probabilities"]) for digit in answer["digits"]] == [10, 10, 10]
    assert all(len(digit["box"]) == 4 for digit in answer["digits"])
    assert all(np.array(digit["preprocessed"]).shape == (28, 28) for digit in answer["digits"])


@pytest.mark.parametrize("multi", [False, True])
def test_the_preprocessed_image_is_sent_only_when_asked_for(client, mnist, multi):
    body = {"json": {"pixels": mnist.test_images[0].tolist()}}
    plain = client.post(f"/api/predict?multi={multi}", **body).json()
    asked = client.post(f"/api/predict?multi={multi}&include=preprocessed", **body).json()
    if multi:
        plain, asked = plain["digits"][0], asked["digits"][0]
    assert "preprocessed" not in plain
    assert np.array(asked["preprocessed"]).shape == (28, 28)
    assert {key: value for key, value in asked.items() if key != "preprocessed"} == plain
    refused = client.post("/api/predict?include=everything", **body)
    assert refused.status_code == 422 and refused.json()["detail"].startswith("include")


def test_a_no_digit_answer_asked_for_the_image_says_null(client):
    blank = {"json": {"pixels": [[0] * 28] * 28}}
    answer = client.post("/api/predict?include=preprocessed", **blank).json()
    assert answer["reason"] == "no digit found" and answer["preprocessed"] is None
    assert "preprocessed" not in client.post("/api/predict", **blank).json()


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (7200, 7200)).save(buffer, format="PNG")
    return buffer.getvalue()


NOISE = np.random.default_rng(0).integers(0, 256, (80, 80), dtype=np.uint8)


@pytest.mark.parametrize(
    "request_arguments, status, message",
    [
        ({"files": {"file": ("big.png", b"0" * (MAX_BODY_BYTES + 10), "image/png")}}, 413, "5 MB"),
        ({"files": {"file": ("notes.png", b"just text", "image/png")}}, 415, "not an image"),
        ({"files": {"file": ("cut.png", png(NOISE)[:300], "image/png")}}, 422, "truncated"),
        ({"files": {"file": ("bomb.png", bomb_png(), "image/png")}}, 413, "megapixel limit"),
        ({"files": {"other": ("x.png", b"x", "image/png")}}, 422, "field 'file'"),
        ({"json": {"pixels": [[0] * 28] * 27}}, 422, "expected 28 rows"),
        ({"json": {"pixels": [[300] * 28] * 28}}, 422, "in [0, 255]"),
        ({"json": {"pixels": [[-1] * 28] * 28}}, 422, "in [0, 255]"),
        ({"json": {"pixels": "nope"}}, 422, "pixels"),
        ({"json": {"image": []}}, 422, "pixels"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "multipart"),
    ],
    ids=["too-big", "not-image", "truncated", "bomb", "no-file-field", "wrong-shape",
         "too-bright", "negative", "not-a-list", "no-pixels", "bad-json", "text-plain"],
)  # fmt: skip
def test_bad_input_gets_the_right_status_and_the_server_keeps_serving(
    client, request_arguments, status, message
):
    response = client.post("/api/predict", **request_arguments)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert client.get("/api/health").status_code == 200


def test_declared_oversized_body_is_refused_before_reading(client):
    response = client.post(
        "/api/predict",
        content=b"x" * 10,
        headers={"content-type": "application/json", "content-length": str(MAX_BODY_BYTES + 1)},
    )
    assert response.status_code == 413


def test_wrong_method_and_unknown_path(client):
    assert client.get("/api/predict").status_code == 405
    assert client.delete("/api/health").status_code == 405
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_page_and_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200 and "http" not in response.text


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/health", "/api/model"} <= set(spec["paths"])
    predict = spec["paths"]["/api/predict"]["post"]
    body = predict["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)

    def schema_of(status: str) -> str:
        return predict["responses"][status]["content"]["application/json"]["schema"]["$ref"]

    assert schema_of("200") == "#/components/schemas/AnswerResult"
    for status in ("413", "415", "422"):
        assert schema_of(status) == "#/components/schemas/ErrorDetail", status
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for status in ("413", "415", "422"):
        assert len(predict["responses"][status]["description"]) > 30, "says when it happens"
    # The 200 answer and the JSON body each carry a real example: a 7, not an all-zero grid.
    ok = predict["responses"]["200"]
    assert ok["description"] != "Successful Response"
    assert ok["content"]["application/json"]["example"]["digit"] == 7
    pixels = np.array(body["application/json"]["example"]["pixels"])
    assert pixels.shape == (28, 28) and pixels.max() == 255 and (pixels > 0).mean() > 0.1
    assert next(iter(body)) == "application/json", "Swagger UI's default: its editor shows the 7"
    example_answer = client.post("/api/predict", json={"pixels": pixels.tolist()}).json()
    # The spec drops the example's null keys (FastAPI writes it with exclude_none).
    assert example_answer["digit"] == 7
    assert set(ok["content"]["application/json"]["example"]) <= set(example_answer)
    include = next(
        parameter for parameter in predict["parameters"] if parameter["name"] == "include"
    )
    assert include["schema"]["items"] == {"$ref": "#/components/schemas/Include"}
    assert spec["components"]["schemas"]["Include"]["enum"] == ["preprocessed", "saliency"]
    answer = spec["components"]["schemas"]["AnswerResult"]["properties"]
    assert {"digit", "name", "confidence", "top", "probabilities", "number", "digits"} <= set(
        answer
    )
    health = spec["paths"]["/api/health"]["get"]["responses"]["200"]["content"]
    assert health["application/json"]["schema"]["$ref"] == "#/components/schemas/Health"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_concurrent_requests_share_forward_passes():
    calls = []

    def probabilities(inputs):
        calls.append(len(inputs))
        return np.full((len(inputs), 10), 0.1, dtype=np.float32)

    batcher = Batcher(Classifier("fake", tuple("0123456789"), probabilities))

    async def many():
        await batcher.start()
        images = np.zeros((1, 28, 28, 1), dtype=np.float32)
        results = await asyncio.gather(*(batcher.probabilities(images) for _ in range(20)))
        await batcher.stop()
        return results

    results = asyncio.run(many())
    assert len(results) == 20 and all(result.shape == (1, 10) for result in results)
    assert sum(calls) == 20
    assert len(calls) < 20, "waiting requests were batched together"
