"""/docs in Chromium: Swagger UI's "Try it out" sends real requests that the API answers."""

from __future__ import annotations

import json
import shutil

import pytest

from mnist_cnn.serve import create_app
from mnist_cnn.serve.schemas import SEVEN_PIXELS
from tests.helpers import CHROMIUM, CHROMIUM_ARGUMENTS
from tests.test_serve_hardening import digit_png, fake_classifier, live_server


def execute(page) -> tuple[str, bytes, int]:
    """Press Execute; the request's content type and body, and the answer's status."""
    with page.expect_response("**/api/predict*", timeout=15_000) as answer:
        page.click("button.execute")
    request = answer.value.request
    return (
        request.headers.get("content-type", ""),
        request.post_data_buffer or b"",
        answer.value.status,
    )


@pytest.mark.browser
def test_try_it_out_sends_the_example_digit_and_an_upload(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    upload = tmp_path / "digit.png"
    upload.write_bytes(digit_png())
    with live_server(create_app(fake_classifier())) as address, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"http://{address}/docs")
            page.locator(".opblock-post .opblock-summary").first.click()
            page.click("button.try-out__btn")
            content_types = page.locator(".opblock-section-request-body select")
            # JSON is the default, and its editor holds MNIST's first test image.
            content_type, body, status = execute(page)
            assert content_type == "application/json" and status == 200
            assert json.loads(body) == {"pixels": SEVEN_PIXELS}
            content_types.select_option("multipart/form-data")
            page.set_input_files(".opblock-section-request-body input[type=file]", str(upload))
            content_type, body, status = execute(page)
            assert content_type.startswith("multipart/form-data") and status == 200
            # Back to JSON: Swagger UI keeps the form's state in the editor (its own
            # behaviour); Reset brings the example back.
            content_types.select_option("application/json")
            page.get_by_role("button", name="Reset").click()
            content_type, body, status = execute(page)
            assert json.loads(body) == {"pixels": SEVEN_PIXELS} and status == 200
        finally:
            browser.close()
