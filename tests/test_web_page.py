"""The drawing page end to end: a real server on loopback, driven in headless Chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image

from tests.helpers import CHROMIUM, CHROMIUM_ARGUMENTS

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with log_path.open("w") as log:
        yield from _serve(trained_run, port, log)
    text = log_path.read_text()
    assert "Shutting down" in text and "server stopped" in text, text[-2000:]
    # One log line per request.
    assert '"GET /api/health HTTP/1.1" 200' in text


def _serve(trained_run, port, log):
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn", "serve", str(trained_run.run_dir), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not start within 90 s"
            time.sleep(0.3)
    yield url
    process.send_signal(signal.SIGINT)  # Ctrl-C
    assert process.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    opened = context.new_page()
    opened.goto(server)
    opened.wait_for_function("document.querySelectorAll('#bars li').length === 10")
    yield opened
    context.close()


def draw(page, strokes):
    """Draw strokes given in canvas units (0-280) with real mouse events."""
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=12)
        page.mouse.up()


SEVEN = [[(70, 60), (210, 60)], [(210, 60), (120, 235)]]


def wait_for_state(page, state):
    page.wait_for_function(f"document.body.dataset.state === '{state}'", timeout=15_000)


def test_drawing_a_seven_is_read_as_seven(page, artifacts_dir):
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    assert page.locator("#digit").inner_text() == "7"
    assert "confident" in page.locator("#status").inner_text()
    widths = page.eval_on_selector_all(
        "#bars .bar span", "spans => spans.map(span => parseFloat(span.style.width))"
    )
    assert len(widths) == 10 and widths.index(max(widths)) == 7 and max(widths) > 50
    ink = page.evaluate(
        "Array.from(document.getElementById('preprocessed').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).reduce((sum, value) => sum + value, 0)"
    )
    assert ink > 28 * 28 * 255  # more than the opaque alpha channel alone: ink was drawn
    page.wait_for_timeout(400)  # let the bars finish their transition for the picture
    page.screenshot(path=str(artifacts_dir / "page-drawn-seven.png"), full_page=True)


def test_undo_and_clear_return_to_the_empty_state(page, artifacts_dir):
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    page.click("#undo")  # only the top bar is left: still ink to read
    page.click("#undo")
    wait_for_state(page, "empty")
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    page.click("#clear")
    wait_for_state(page, "empty")
    assert page.locator("#digit").inner_text() == "–"
    assert "No digit found" in page.locator("#status").inner_text()
    page.screenshot(path=str(artifacts_dir / "page-cleared.png"), full_page=True)


def test_keyboard_escape_clears(page):
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    page.keyboard.press("Escape")
    wait_for_state(page, "empty")


def test_uploading_a_picture_shows_its_prediction(page, mnist, tmp_path, artifacts_dir):
    picture = tmp_path / "two.png"
    Image.fromarray(255 - mnist.test_images[1]).resize((168, 168)).save(picture)
    page.set_input_files("#upload", str(picture))
    wait_for_state(page, "answered")
    assert page.locator("#digit").inner_text() == "2"
    page.screenshot(path=str(artifacts_dir / "page-uploaded-two.png"), full_page=True)


def test_api_docs_page_works_offline(page, server, artifacts_dir):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{server}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)  # Swagger UI rendered the operations
    assert page.locator(".opblock-summary-path", has_text="/api/predict").is_visible()
    assert all(url.startswith(server) or url.startswith("data:") for url in requests), requests
    page.screenshot(path=str(artifacts_dir / "api-docs.png"))


def test_fits_a_phone_screen(browser, server, artifacts_dir):
    context = browser.new_context(viewport={"width": 375, "height": 740}, has_touch=True)
    phone = context.new_page()
    phone.goto(server)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    assert phone.locator("#canvas").bounding_box()["width"] > 250
    phone.screenshot(path=str(artifacts_dir / "page-phone.png"), full_page=True)
    context.close()
