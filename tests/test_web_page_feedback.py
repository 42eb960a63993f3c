"""Right / Wrong on the drawing page and this visit's history strip, in headless Chromium.

A real ``mnist-cnn serve`` with ``--data-dir`` in a temporary folder: what the
buttons send is checked in the feedback database itself.
"""

from __future__ import annotations

import pytest

from mnist_cnn.feedback import NOT_A_DIGIT, FeedbackStore, database_path
from tests.helpers import free_port, serve_run
from tests.test_web_page import (  # noqa: F401  (fixtures and helpers shared with the page tests)
    SEVEN,
    browser,
    draw,
    ink,
    wait_for_state,
)
from tests.test_web_page_phone import open_page, touch

pytestmark = pytest.mark.browser
ONE = [[(140, 50), (140, 230)]]


@pytest.fixture(scope="module")
def feedback_server(trained_run, tmp_path_factory):
    """``mnist-cnn serve`` keeping its feedback in a temporary folder: (url, data_dir)."""
    data_dir = tmp_path_factory.mktemp("feedback-data")
    port = free_port()
    log_path = data_dir.parent / "feedback-server.log"
    with log_path.open("w") as log:
        serving = serve_run(trained_run.run_dir, port, log, "--data-dir", str(data_dir))
        yield next(serving), data_dir
        next(serving, None)  # Ctrl-C, and a clean exit
    assert f"feedback is kept in {database_path(data_dir)}" in log_path.read_text()


@pytest.fixture
def page(browser, feedback_server):  # noqa: F811
    url, _ = feedback_server
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    opened = context.new_page()
    errors = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(url)
    opened.wait_for_function("document.querySelectorAll('#bars li').length === 10")
    opened.wait_for_function("document.getElementById('model-name').textContent !== ''")
    yield opened
    context.close()
    assert not errors, errors


def newest_row(data_dir):
    with FeedbackStore.open(database_path(data_dir), create=False) as store:
        return store.recent(1)[0]


def wait_saved(page, count):
    page.wait_for_function(f"window.mnistPage.feedback.saved.length === {count}", timeout=10_000)


def test_right_stores_a_confirmation_and_joins_the_history(page, feedback_server, trained_run):
    _, data_dir = feedback_server
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    assert page.locator("#digit").inner_text() == "7"
    assert page.locator("#feedback-question").inner_text() == "Is 7 right?"
    page.click("#feedback-right")
    wait_saved(page, 1)
    row = newest_row(data_dir)
    assert (row.answer, row.label, row.source) == (7, 7, "page")
    assert row.model == trained_run.run_dir.name and row.picture_bytes > 0
    assert page.locator(".feedback-saved").inner_text() == "Saved: 7 was right. Thank you."
    assert page.locator("#feedback button").count() == 0  # once saved, nothing to press twice
    assert page.locator("#history li").count() == 1
    assert page.locator("#history li").inner_text().split() == ["read", "7", "✓", "right"]


def test_wrong_by_keyboard_stores_the_correction(page, feedback_server, artifacts_dir):
    _, data_dir = feedback_server
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    page.focus("#feedback-wrong")
    page.keyboard.press("Enter")
    assert page.get_attribute("#feedback-wrong", "aria-expanded") == "true"
    choices = page.locator("#feedback-choices button").all_inner_texts()
    assert choices == ["0", "1", "2", "3", "4", "5", "6", "8", "9", "Not a digit"]  # not 7
    assert page.evaluate("document.activeElement.textContent") == "0"  # focus moved in
    page.keyboard.press("Escape")  # closes the choices; the drawing stays
    assert page.locator("#feedback-choices").count() == 0
    assert page.evaluate("document.activeElement.id") == "feedback-wrong" and ink(page) > 0
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # on "2", say, but a digit key picks its digit directly
    page.keyboard.press("1")
    wait_saved(page, 1)
    row = newest_row(data_dir)
    assert (row.answer, row.label) == (7, 1)
    assert "it is 1, not 7" in page.locator(".feedback-saved").inner_text()
    page.screenshot(path=str(artifacts_dir / "page-feedback-corrected.png"), full_page=True)


def test_the_strip_keeps_unjudged_drawings_and_shows_one_again(page):
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    page.click("#feedback-wrong")
    page.click("#feedback-choices button:has-text('Not a digit')")
    wait_saved(page, 1)
    page.click("#clear")
    wait_for_state(page, "empty")
    draw(page, ONE)
    wait_for_state(page, "answered")
    page.click("#clear")  # cleared without a judgement: kept, marked so
    wait_for_state(page, "empty")
    items = page.locator("#history li")
    assert items.count() == 2
    assert items.nth(0).inner_text().split()[-2:] == ["not", "judged"]
    assert items.nth(1).inner_text().split() == ["read", "7", "✗", "is", "not", "a", "digit"]
    label = items.nth(1).locator("button").get_attribute("aria-label")
    assert label == "Read as 7, corrected to not a digit. Show it again."
    items.nth(1).locator("button").click()  # the seven again, read again
    wait_for_state(page, "answered")
    assert page.locator("#digit").inner_text() == "7" and ink(page) > 0
    page.click("#undo")  # back to the empty canvas it replaced
    wait_for_state(page, "empty")


def test_feedback_on_a_phone_in_the_dark_is_reachable_and_accessible(
    browser,  # noqa: F811
    feedback_server,
    artifacts_dir,
):
    axe = pytest.importorskip("axe_playwright_python.sync_playwright")
    url, data_dir = feedback_server
    context, phone, errors = open_page(browser, url, 390, 664, True, "dark")
    touch(phone, SEVEN)
    wait_for_state(phone, "answered")
    # A tap within a moment of the drawing's last touch makes no click in Chromium (it
    # waits to see a double tap), on any button of the page: wait as a person would.
    phone.wait_for_timeout(1000)
    phone.locator("#feedback-wrong").tap()
    phone.wait_for_selector("#feedback-choices", timeout=5_000)
    buttons = phone.locator("#feedback button").all()
    assert len(buttons) == 12  # Right, Wrong and the ten other answers
    for control in buttons:
        box = control.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, control.inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, control.inner_text()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    results = axe.Axe().run(phone)
    assert results.violations_count == 0, results.generate_report()
    phone.locator("#feedback-choices button:has-text('Not a digit')").tap()
    wait_saved(phone, 1)
    assert newest_row(data_dir).label == NOT_A_DIGIT
    phone.locator(".history").scroll_into_view_if_needed()
    results = axe.Axe().run(phone)
    assert results.violations_count == 0, results.generate_report()
    phone.screenshot(path=str(artifacts_dir / "page-feedback-phone-dark.png"), full_page=True)
    context.close()
    assert not errors, errors
