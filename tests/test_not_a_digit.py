"""'That is not a digit': dots, lines, letters and scribbles are refused, real digits are not.

One run (the shared fast-preset run, copied) gets a learned detector from the
real command, trained small (3,000 digits, 600 drawn non-digits); the tests
then ask it through the library, the CLI, the API and the page.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.helpers import free_port, run_cli, run_cli_here, serve_run


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    picture = Image.new("L", (200, 200), 255)
    return picture, ImageDraw.Draw(picture)


def dot() -> np.ndarray:
    picture, draw = _canvas()
    draw.ellipse([92, 92, 108, 108], fill=0)
    return np.asarray(picture)


def line() -> np.ndarray:
    picture, draw = _canvas()
    draw.line([(50, 110), (140, 95)], fill=0, width=13)
    return np.asarray(picture)


def letter_a() -> np.ndarray:
    """A capital A drawn with three pen strokes, as a person draws it."""
    picture, draw = _canvas()
    draw.line([(50, 170), (100, 30), (150, 170)], fill=0, width=13, joint="curve")
    draw.line([(72, 115), (128, 115)], fill=0, width=13)
    return np.asarray(picture)


def scribble() -> np.ndarray:
    generator = np.random.default_rng(7)
    points = [tuple(point) for point in generator.uniform(40, 160, size=(25, 2))]
    picture, draw = _canvas()
    draw.line(points, fill=0, width=13, joint="curve")
    return np.asarray(picture)


NON_DIGITS = {"dot": dot, "line": line, "letter A": letter_a, "scribble": scribble}


@pytest.fixture(scope="module")
def detector_run(trained_run, tmp_path_factory):
    """A copy of the shared run, with a detector from ``mnist-cnn not-a-digit``."""
    run = tmp_path_factory.mktemp("not-a-digit") / "run"
    shutil.copytree(trained_run.run_dir, run)
    result = run_cli(
        "not-a-digit", str(run), "--digits", "3000", "--non-digits", "600", "--epochs", "3"
    )
    assert result.returncode == 0, result.stderr
    assert "validation:" in result.stdout
    from mnist_cnn.export import export_model

    export_model(run, "onnx")  # the classifier's, for the ONNX engine's answers
    return run


def _answers(run, pictures, engine="keras", multi=False):
    from mnist_cnn.engines import load_classifier
    from mnist_cnn.prediction import answer_pictures
    from mnist_cnn.reading import Picture

    classifier = load_classifier(run, engine)
    return answer_pictures(
        [Picture(name=name, gray=gray / 255.0) for name, gray in pictures.items()],
        classifier,
        multi=multi,
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["keras", "onnx"])
def test_the_detector_refuses_non_digits_and_accepts_digits(detector_run, mnist, engine):
    answers = _answers(detector_run, {name: draw() for name, draw in NON_DIGITS.items()}, engine)
    for answer in answers:
        assert answer.reason == "not a digit", (answer.name, answer.digits[0].digit_score)
        assert answer.digits[0].not_a_digit and answer.digits[0].uncertain
    # Real MNIST test digits, drawn as a picture would be (dark on white, 200 px).
    digits = {
        f"test-{index}": 255 - np.asarray(Image.fromarray(image).resize((200, 200)))
        for index, image in enumerate(mnist.test_images[:200])
    }
    accepted = [
        not answer.digits[0].not_a_digit for answer in _answers(detector_run, digits, engine)
    ]
    assert np.mean(accepted) >= 0.9


@pytest.mark.slow
def test_the_answer_keeps_the_best_guess_and_says_not_a_digit(detector_run):
    (answer,) = _answers(detector_run, {"dot.png": dot()})
    result = answer.to_dict()
    assert result["not_a_digit"] is True
    assert result["reason"] == "not a digit"
    assert result["number"] is None
    assert result["uncertain"] is True
    assert result["digit"] in range(10) and len(result["probabilities"]) == 10
    assert 0.0 <= result["digit_score"] < 0.5


@pytest.mark.slow
def test_with_multi_a_refused_piece_stays_listed_but_leaves_the_number(detector_run, mnist):
    seven = 255 - np.asarray(Image.fromarray(mnist.test_images[0]).resize((200, 200)))
    assert mnist.test_labels[0] == 7
    strip = np.full((200, 420), 255, np.uint8)
    strip[:, :200] = seven
    strip[:, 220:] = letter_a()
    (answer,) = _answers(detector_run, {"strip": strip}, multi=True)
    result = answer.to_dict()
    assert result["number"] == "7"
    assert [piece["not_a_digit"] for piece in result["digits"]] == [False, True]
    assert result["reason"] is None and result["not_a_digit"] is None


@pytest.mark.slow
def test_cli_says_not_a_digit(detector_run, tmp_path, capsys):
    Image.fromarray(letter_a()).save(tmp_path / "a.png")
    table = run_cli_here(capsys, "predict", "--model", str(detector_run), str(tmp_path / "a.png"))
    assert table.returncode == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if line.startswith(str(tmp_path))]
    assert "not a digit (best guess" in row


@pytest.mark.slow
def test_a_run_without_its_own_detector_uses_the_packaged_one(trained_run, mnist):
    from mnist_cnn.engines import load_classifier

    classifier = load_classifier(trained_run.run_dir)
    assert classifier.detector is not None and not classifier.detector.uses_confidence
    digits = {"seven": 255 - np.asarray(Image.fromarray(mnist.test_images[0]).resize((200, 200)))}
    seven, a_dot = _answers(trained_run.run_dir, {**digits, "dot.png": dot()})
    assert not seven.digits[0].not_a_digit and seven.text == "7"
    # The packaged network's own P(a digit), not the classifier's confidence.
    assert seven.digits[0].digit_score != pytest.approx(seven.digits[0].confidence)
    assert a_dot.digits[0].not_a_digit and a_dot.reason == "not a digit"


@pytest.mark.slow
def test_without_any_learned_detector_the_confidence_decides(trained_run, mnist, monkeypatch):
    """No packaged files (or a model of other classes): min_confidence is the threshold."""
    from mnist_cnn import engines
    from mnist_cnn.prediction import DEFAULT_MIN_CONFIDENCE
    from mnist_cnn.rejection import DetectorFiles

    monkeypatch.setattr(engines, "PACKAGED_DETECTOR", DetectorFiles(Path("/nonexistent")))
    digits = {"seven": 255 - np.asarray(Image.fromarray(mnist.test_images[0]).resize((200, 200)))}
    (answer,) = _answers(trained_run.run_dir, digits)
    digit = answer.digits[0]
    assert digit.digit_score == pytest.approx(digit.confidence)
    assert digit.not_a_digit == (digit.confidence < DEFAULT_MIN_CONFIDENCE)
    assert set(answer.to_dict()) >= {"not_a_digit", "digit_score"}
    assert engines.load_detector(trained_run.run_dir, class_names=("a", "b")) is None


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ("{", "not a detector's settings"),
        ("{}", "not a detector's settings"),
        ('{"threshold": 7}', "outside [0, 1]"),
    ],
)
def test_a_damaged_detector_settings_file_is_one_line(tmp_path, contents, message):
    from mnist_cnn.engines import load_detector
    from mnist_cnn.errors import MnistCnnError
    from mnist_cnn.run_folder import RunFolder

    run = RunFolder(tmp_path)
    run.detector.settings.write_text(contents, encoding="utf-8")
    with pytest.raises(MnistCnnError, match=re.escape(message)):
        load_detector(run.path)


def test_the_command_default_is_the_detector_default():
    from mnist_cnn.cli.not_a_digit_command import DEFAULT_EPOCHS
    from mnist_cnn.rejection import DetectorConfig

    assert DetectorConfig().epochs == DEFAULT_EPOCHS


def test_not_a_digit_needs_a_run_folder(tmp_path):
    result = run_cli("not-a-digit", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "not a run folder" in result.stderr


def test_non_digit_families_share_no_font_glyph_or_seed():
    from mnist_cnn.non_digits import HELD_OUT, TRAINING, make_non_digits

    assert not set(TRAINING.fonts) & set(HELD_OUT.fonts)
    assert not set(TRAINING.letters + TRAINING.symbols) & set(HELD_OUT.letters + HELD_OUT.symbols)
    made = make_non_digits(HELD_OUT, 12)
    assert made.images.shape[1:] == (28, 28) and made.images.dtype == np.uint8
    assert len(made.images) + made.blank == 12
    assert set(made.kinds) <= {"dot", "line", "letter", "symbol", "shape", "scribble"}


@pytest.mark.slow
def test_api_answers_carry_not_a_digit(detector_run):
    from fastapi.testclient import TestClient

    from mnist_cnn.engines import load_classifier
    from mnist_cnn.serve.app import create_app

    with TestClient(create_app(load_classifier(detector_run))) as client:
        buffer = io.BytesIO()
        Image.fromarray(scribble()).save(buffer, format="PNG")
        response = client.post(
            "/api/predict", files={"file": ("scribble.png", buffer.getvalue(), "image/png")}
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["not_a_digit"] is True and answer["reason"] == "not a digit"
    assert answer["number"] is None and isinstance(answer["digit_score"], float)


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_says_a_letter_is_not_a_digit(detector_run, tmp_path_factory):
    from tests import test_web_page as web

    if sys.platform != "linux":
        pytest.skip("the page tests drive Debian's Chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with open(log, "w") as handle:
        serving = serve_run(detector_run, port, handle)
        url = next(serving)
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=web.CHROMIUM, args=web.CHROMIUM_ARGUMENTS
                )
                page = browser.new_page(viewport={"width": 1000, "height": 800})
                page.goto(url)
                # An A: two slants and a bar, in canvas units (0-280).
                web.draw(page, [[(70, 240), (140, 40), (210, 240)], [(100, 160), (180, 160)]])
                web.wait_for_state(page, "not-a-digit")
                assert "does not look like a digit" in page.locator("#status").inner_text()
                browser.close()
        finally:
            next(serving, None)  # the rest of serve_run: Ctrl-C, and wait for the server to end


def test_not_a_digit_refuses_a_run_of_other_classes(tmp_path, capsys):
    from mnist_cnn.cli import main

    run = tmp_path / "letters"
    run.mkdir()
    (run / "config.json").write_text('{"data": {"class_names": ["a", "b", "c"]}}')
    assert main(["not-a-digit", str(run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "its classes are a, b, c" in error
    assert not (run / "not_a_digit.json").exists()
