"""report.html: self-contained, complete, and rendered for real in headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
from html.parser import HTMLParser

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGUMENTS, run_cli

MAIN_SECTIONS = ("results", "training", "per-class", "confusion", "misclassified",
                 "calibration", "predictions", "configuration")  # fmt: skip


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.ids, self.urls = [], set(), []

    def handle_starttag(self, tag, attributes):
        attributes = dict(attributes)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "img":
            self.images.append(attributes.get("src", ""))
        for name in ("src", "href"):
            if attributes.get(name):
                self.urls.append(attributes[name])


@pytest.fixture(scope="module")
def report_path(trained_run):
    result = run_cli("report", str(trained_run.run_dir))
    assert result.returncode == 0, result.stderr
    path = trained_run.run_dir / "report.html"
    assert f"wrote {path}" in result.stdout
    return path


def test_report_parses_embeds_every_image_and_fetches_nothing(report_path):
    html = report_path.read_text()
    collector = Collector()
    collector.feed(html)
    assert set(MAIN_SECTIONS) <= collector.ids
    assert len(collector.images) == 5
    for source in collector.images:
        assert source.startswith("data:image/png;base64,")
        payload = base64.b64decode(source.split(",", 1)[1])
        assert payload.startswith(b"\x89PNG")
    assert not [url for url in collector.urls if not url.startswith("data:")]
    assert not re.search(r"https?://", html)


def test_report_without_evaluation_or_run(tmp_path):
    result = run_cli("report", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "absent: no such run folder" in result.stderr


@pytest.mark.browser
@pytest.mark.parametrize("width, name", [(1200, "desktop"), (390, "phone")])
def test_report_renders_in_headless_chromium(report_path, artifacts_dir, width, name):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(report_path.as_uri())
            page.wait_for_load_state("load")
            loaded = page.eval_on_selector_all(
                "img", "images => images.map(image => image.complete && image.naturalWidth)"
            )
            assert len(loaded) == 5 and all(width > 0 for width in loaded)
            for section in MAIN_SECTIONS:
                assert page.locator(f"#{section}").is_visible()
            # Nothing wider than the window: no sideways scrolling of the page.
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width
            page.screenshot(path=str(artifacts_dir / f"report-{name}.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts_dir / f"report-{name}.png").stat().st_size > 10_000
