"""`mnist-cnn predict` on real files: every format, every bad input, and exit codes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.engines import load_classifier
from mnist_cnn.prediction import answer_pictures
from mnist_cnn.reading import Picture, read_pictures
from tests.helpers import run_cli, run_cli_here

FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tiff": "TIFF", "webp": "WEBP"}


def as_photo(digit: np.ndarray, scale: int = 8) -> Image.Image:
    """A real MNIST digit as a person's picture: dark ink on white, bigger, off-centre."""
    big = Image.fromarray(255 - digit).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    page = Image.new("L", (28 * scale + 90, 28 * scale + 40), 255)
    page.paste(big, (70, 10))
    return page


@pytest.fixture(scope="module")
def pictures_dir(tmp_path_factory, mnist):
    """The first six MNIST test digits (7 2 1 0 4 1), one per image format, in a folder tree."""
    folder = tmp_path_factory.mktemp("pictures")
    (folder / "nested").mkdir()
    for index, (suffix, image_format) in enumerate(FORMATS.items()):
        target = folder / "nested" if index % 2 else folder
        photo = as_photo(mnist.test_images[index])
        photo.convert("RGB").save(target / f"digit{index}.{suffix}", format=image_format)
    return folder


@pytest.fixture(scope="module")
def classifier(trained_run):
    return load_classifier(trained_run.run_dir)


def test_every_image_format_in_a_folder_tree_is_read(pictures_dir, classifier, mnist):
    pictures = list(read_pictures([pictures_dir]))
    assert len(pictures) == 6 and all(picture.error is None for picture in pictures)
    answers = answer_pictures(pictures, classifier)
    by_index = {int(answer.name.split("digit")[1][0]): answer for answer in answers}
    read = [by_index[index].text for index in range(6)]
    truth = [str(label) for label in mnist.test_labels[:6]]
    assert sum(a == b for a, b in zip(read, truth, strict=True)) >= 5, (read, truth)


def test_npy_arrays_single_and_stacked(tmp_path, classifier, mnist):
    np.save(tmp_path / "one.npy", mnist.test_images[0])
    np.save(tmp_path / "many.npy", mnist.test_images[:4])
    np.save(tmp_path / "floats.npy", mnist.test_images[1].astype(np.float32) / 255)
    pictures = list(
        read_pictures([tmp_path / "one.npy", tmp_path / "many.npy", tmp_path / "floats.npy"])
    )
    assert [picture.name.rsplit("/", 1)[-1] for picture in pictures] == [
        "one.npy", "many.npy[0]", "many.npy[1]", "many.npy[2]", "many.npy[3]", "floats.npy",
    ]  # fmt: skip
    answers = answer_pictures(pictures, classifier)
    assert [answer.text for answer in answers] == ["7", "7", "2", "1", "0", "2"]


def test_blank_picture_answers_no_digit(classifier):
    answer = answer_pictures([Picture("blank", gray=np.ones((300, 300), np.float32))], classifier)[
        0
    ]
    assert answer.digits == [] and answer.reason == "no digit found"
    answered = answer.to_dict()
    assert answered["file"] == "blank" and answered["reason"] == "no digit found"
    assert answered["digit"] is None and answered["error"] is None


def test_low_confidence_is_marked_uncertain(classifier, mnist):
    seven = 1.0 - mnist.test_images[0].astype(np.float32) / 255  # dark ink on white
    answer = answer_pictures([Picture("seven", gray=seven)], classifier, min_confidence=1.0)[0]
    assert answer.digits[0].uncertain and answer.text == "7"  # unsure, but still a digit
    sure = answer_pictures([Picture("seven", gray=seven)], classifier, min_confidence=0.0)[0]
    assert not sure.digits[0].uncertain


def test_an_even_blend_of_two_digits_is_not_a_digit(classifier, mnist):
    blend = (mnist.test_images[0].astype(np.float32) + mnist.test_images[1]) / 510
    (answer,) = answer_pictures([Picture("blend", gray=blend)], classifier)
    assert answer.digits[0].not_a_digit and answer.digits[0].uncertain
    assert answer.reason == "not a digit" and answer.text == ""


@pytest.mark.slow
def test_cli_table_and_preprocessed_strip(pictures_dir, trained_run, tmp_path, capsys):
    strip = tmp_path / "seen.png"
    result = run_cli_here(
        capsys,
        "predict", "--model", str(trained_run.run_dir), str(pictures_dir),
        "--show-preprocessed", str(strip),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["file", "digit", "confidence"]
    assert len(lines) == 7
    with Image.open(strip) as image:
        assert image.size[0] >= 6 * 100


@pytest.mark.slow
def test_cli_json_output(pictures_dir, trained_run, capsys):
    result = run_cli_here(
        capsys, "predict", "--model", str(trained_run.run_dir), "--json", str(pictures_dir)
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert len(answers) == 6
    first = next(answer for answer in answers if answer["file"].endswith("digit0.png"))
    assert first["digit"] == 7 and first["name"] == "7"  # the class index, and its name
    assert 0.0 <= first["confidence"] <= 1.0
    assert first["top"][0] == {"digit": 7, "name": "7", "probability": first["confidence"]}
    assert len(first["top"]) == 3


@pytest.mark.slow
def test_cli_multi_reads_a_number(tmp_path, trained_run, mnist, capsys):
    strip = np.concatenate(
        [np.pad(mnist.test_images[i], ((4, 4), (8, 8))) for i in (0, 1, 2)], axis=1
    )
    Image.fromarray(255 - strip).resize((strip.shape[1] * 5, strip.shape[0] * 5)).save(
        tmp_path / "number.png"
    )
    result = run_cli_here(
        capsys,
        "predict",
        "--model",
        str(trained_run.run_dir),
        "--multi",
        "--json",
        str(tmp_path / "number.png"),
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)[0]
    assert answer["number"] == "721"
    assert len(answer["digits"]) == 3 and all("confidence" in digit for digit in answer["digits"])


@pytest.fixture
def bad_inputs(tmp_path, mnist):
    """A batch mixing one good picture with every kind of bad input."""
    as_photo(mnist.test_images[0]).save(tmp_path / "good.png")
    (tmp_path / "notes.png").write_text("this is not a picture")
    noise = np.random.default_rng(0).integers(0, 256, (80, 80), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.new("1", (7200, 7200)).save(tmp_path / "bomb.png")
    (tmp_path / "empty-folder").mkdir()
    np.save(tmp_path / "shape.npy", np.zeros((3, 32, 32), np.uint8))
    np.save(tmp_path / "dtype.npy", np.zeros((28, 28), np.complex64))
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), np.uint8))
    with (tmp_path / "huge.npy").open("wb") as file:  # a header that claims 784 GB
        np.lib.format.write_array_header_1_0(
            file, {"descr": "|u1", "fortran_order": False, "shape": (10**9, 28, 28)}
        )
    os.mkfifo(tmp_path / "fifo.png")  # reading it would wait for a writer forever
    return tmp_path


BAD_CASES = {
    "notes.png": "not an image file this tool can read",
    "truncated.png": "damaged or truncated image",
    "bomb.png": "megapixel limit; refused",
    "empty-folder": "folder holds no images",
    "shape.npy": "array of shape (3, 32, 32), expected (28, 28) or (N, 28, 28)",
    "dtype.npy": "dtype complex64 is not supported",
    "empty.npy": "shape (0, 28, 28) holds no images",
    "huge.npy": "header promises (1000000000, 28, 28) uint8",
    "fifo.png": "is a named pipe, not a regular file; not read",
    "missing.png": "no such file",
}


@pytest.mark.slow
def test_bad_inputs_each_get_one_line_and_the_rest_are_answered(bad_inputs, trained_run, capsys):
    paths = [str(bad_inputs / "good.png"), *(str(bad_inputs / name) for name in BAD_CASES)]
    result = run_cli_here(capsys, "predict", "--model", str(trained_run.run_dir), "--json", *paths)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == len(BAD_CASES)
    for (name, message), line in zip(BAD_CASES.items(), errors, strict=True):
        assert line.startswith(f"error: {bad_inputs / name}"), line
        assert message in line, line
    answers = json.loads(result.stdout)
    assert answers[0]["name"] == "7"
    assert all(answer["error"] for answer in answers[1:])


@pytest.mark.parametrize("model_kind", ["missing", "not-a-model", "no-model-in-run"])
def test_bad_model_is_a_usage_error(tmp_path, mnist, model_kind):
    as_photo(mnist.test_images[0]).save(tmp_path / "good.png")
    model = tmp_path / "model.keras"
    if model_kind == "not-a-model":
        model.write_text("definitely not a zip archive")
    elif model_kind == "no-model-in-run":
        model = tmp_path
    result = run_cli("predict", "--model", str(model), str(tmp_path / "good.png"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_min_confidence_out_of_range_is_a_usage_error(tmp_path):
    result = run_cli("predict", "--min-confidence", "2", str(tmp_path))
    assert result.returncode == 2
    assert "argument --min-confidence: must be from 0 to 1" in result.stderr


@pytest.mark.slow
def test_cli_csv_output(pictures_dir, trained_run, capsys):
    import csv
    import io

    result = run_cli_here(
        capsys, "predict", "--model", str(trained_run.run_dir), "--csv", str(pictures_dir)
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 6
    assert set(rows[0]) == {"file", "digit", "confidence", "uncertain", "top3", "note"}
    first = next(row for row in rows if row["file"].endswith("digit0.png"))
    assert first["digit"] == "7" and 0.0 < float(first["confidence"]) <= 1.0
    assert first["top3"].startswith("7:")


def test_compiled_keras_calls_match_eager_ones_for_every_batch_size(trained_run, mnist):
    from mnist_cnn.engines import keras_probability_function, load_model
    from mnist_cnn.preprocess import to_model_input

    model = load_model(trained_run.run_dir)
    images = to_model_input(mnist.test_images[:1203])
    eager = keras_probability_function(model, batch_size=500)
    compiled = keras_probability_function(model, batch_size=500, compiled=True)
    # One image, a few, and batches that end part-way (500, 500, 203): the graph is
    # traced for new sizes and must give the eager answers for each.
    for count in (1, 3, 1, 1203):
        expected = eager(images[:count])
        np.testing.assert_allclose(compiled(images[:count]), expected, atol=1e-6)
        assert expected.shape == (count, 10)
    assert compiled(images[:0]).shape == (0, 10)


@pytest.mark.parametrize("option", ["--explain", "--show-preprocessed"])
@pytest.mark.parametrize("where", ["a folder", "a missing parent", "a file as parent"])
def test_predict_output_paths_are_refused_before_any_work(tmp_path, capsys, option, where):
    from mnist_cnn.cli import main

    picture = tmp_path / "seven.png"
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(picture)
    out = {
        "a folder": tmp_path,
        "a missing parent": tmp_path / "missing" / "deeper" / "why.png",
        "a file as parent": picture / "why.png",
    }[where]
    # The model does not exist: refusing the output first proves no work was done.
    no_model = tmp_path / "no-such-run"
    assert main(["predict", "-q", "--model", str(no_model), option, str(out), str(picture)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err.strip()
    assert error.startswith("error: ") and "\n" not in error and option in error
    assert "no-such-run" not in error
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_predict_explain_captions_a_refused_picture_not_a_digit(trained_run, tmp_path, monkeypatch):
    import mnist_cnn.plots
    from mnist_cnn.cli import main

    dot = np.full((100, 100), 255, np.uint8)
    dot[45:55, 45:55] = 0  # the packaged detector refuses a dot
    Image.fromarray(dot).save(tmp_path / "dot.png")
    drawn = mnist_cnn.plots.saliency_figure
    captions: list[str] = []

    def recording(images, saliency, titles, **options):
        captions.extend(titles)
        return drawn(images, saliency, titles, **options)

    monkeypatch.setattr(mnist_cnn.plots, "saliency_figure", recording)
    out = tmp_path / "why.png"
    arguments = ["predict", "--json", "-q", "--model", str(trained_run.run_dir)]
    assert main([*arguments, "--explain", str(out), str(tmp_path / "dot.png")]) == 0
    assert out.exists()
    # The figure says what predict says: not a digit, the map explaining the best guess.
    assert len(captions) == 1 and captions[0].startswith("dot.png: not a digit")
