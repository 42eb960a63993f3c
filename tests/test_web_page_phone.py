"""The drawing page on phones and for assistive technology: touch, small screens, dark theme."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from tests.test_web_page import (  # noqa: F401  (the browser fixture, shared with the desktop tests)
    SEVEN,
    browser,
    draw,
    ink,
    wait_for_state,
)

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[1] / "docs"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def screenshot(page, name: str) -> None:
    """Into test-artifacts/ always; into docs/ (the README's pictures) when asked for.

    MNIST_CNN_UPDATE_SCREENSHOTS=1 rewrites the committed pictures, so that an
    ordinary test run leaves the working tree as it was.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    if os.environ.get("MNIST_CNN_UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / name))


def open_page(browser, server, width, height, touch=True, color_scheme="light"):  # noqa: F811
    context = browser.new_context(
        viewport={"width": width, "height": height},
        has_touch=touch,
        is_mobile=touch,
        color_scheme=color_scheme,
    )
    opened = context.new_page()
    errors = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(server)
    opened.wait_for_function("document.querySelectorAll('#bars li').length === 10")
    opened.wait_for_function("document.getElementById('model-name').textContent !== ''")
    return context, opened, errors


def touch(page, strokes, fingers=1):
    """Draw with fingers through the DevTools protocol: real touch events, as a phone sends."""
    session = page.context.new_cdp_session(page)
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 280

    def points(x, y):
        # A second finger, when asked for, rests 50 px to the right of the first.
        return [
            {"x": box["x"] + x * scale + 50 * finger, "y": box["y"] + y * scale, "id": finger}
            for finger in range(fingers)
        ]

    for stroke in strokes:
        session.send(
            "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(*stroke[0])}
        )
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            for step in range(1, 11):
                t = step / 10
                session.send(
                    "Input.dispatchTouchEvent",
                    {
                        "type": "touchMove",
                        "touchPoints": points(x0 + t * (x1 - x0), y0 + t * (y1 - y0)),
                    },
                )
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    session.detach()


def inside_viewport(page, selector):
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= viewport["width"]
        and box["y"] + box["height"] <= viewport["height"]
    )


def test_a_finger_draws_a_seven(browser, server):  # noqa: F811
    context, phone, errors = open_page(browser, server, 390, 664)
    touch(phone, SEVEN)
    wait_for_state(phone, "answered")
    assert phone.locator("#digit").inner_text() == "7"
    context.close()
    assert not errors, errors


def test_two_fingers_draw_nothing(browser, server):  # noqa: F811
    context, phone, errors = open_page(browser, server, 390, 664)
    touch(phone, [[(140, 40), (140, 240)]], fingers=2)  # a pinch, straight down: a "1" if read
    phone.wait_for_timeout(400)
    assert ink(phone) == 0
    assert phone.evaluate("document.body.dataset.state") == "empty"
    assert phone.locator("#digit").inner_text() == ""
    touch(phone, SEVEN)  # one finger draws again once both have lifted
    wait_for_state(phone, "answered")
    context.close()
    assert not errors, errors


@pytest.mark.parametrize("width,height", [(390, 664), (320, 568)])
def test_a_phone_shows_the_answer_without_scrolling(browser, server, width, height):  # noqa: F811
    context, phone, errors = open_page(browser, server, width, height)
    assert phone.evaluate("document.documentElement.scrollWidth") <= width
    assert phone.locator("#canvas").bounding_box()["width"] >= width - 40
    assert not phone.locator(".drop-hint").is_visible()  # no mouse to drop with
    touch(phone, SEVEN)
    wait_for_state(phone, "answered")
    assert phone.evaluate("window.scrollY") == 0
    for selector in ("#digit", "#status", "#canvas", "#undo", "#clear"):
        assert inside_viewport(phone, selector), selector
    for control in phone.locator("button, label.button, select").all():
        box = control.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, control.inner_text()
    if width == 390:
        phone.wait_for_timeout(300)
        screenshot(phone, "page-phone.png")
    context.close()
    assert not errors, errors


def test_a_phone_on_its_side_fits_the_canvas_and_buttons(browser, server):  # noqa: F811
    context, phone, errors = open_page(browser, server, 750, 340)
    for selector in ("#canvas", "#undo", "#redo", "#clear", "label.button", "#pen-width"):
        assert inside_viewport(phone, selector), selector
    touch(phone, SEVEN)
    wait_for_state(phone, "answered")
    assert inside_viewport(phone, "#digit")
    context.close()
    assert not errors, errors


def test_the_desktop_shows_the_drop_hint_and_a_focus_ring_on_upload(browser, server):  # noqa: F811
    context, desktop, errors = open_page(browser, server, 1000, 800, touch=False)
    assert desktop.locator(".drop-hint").is_visible()
    desktop.focus("#clear")
    desktop.keyboard.press("Tab")
    assert desktop.evaluate("document.activeElement.id") == "upload"
    outline = desktop.evaluate(
        "getComputedStyle(document.querySelector('label.button')).outlineStyle"
    )
    assert outline == "solid"
    context.close()
    assert not errors, errors


def luminance(rgb):
    channels = [value / 255 for value in rgb]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first, second):
    light, dark = sorted([luminance(first), luminance(second)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rgb(page, selector, prop):
    text = page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).{prop}")
    return [int(part) for part in text[text.index("(") + 1 : text.index(")")].split(",")[:3]]


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_the_drawing_area_edge_stands_out(browser, server, color_scheme):  # noqa: F811
    context, page, errors = open_page(browser, server, 1000, 800, False, color_scheme)
    edge = rgb(page, "#canvas", "borderTopColor")
    assert contrast(edge, rgb(page, "body", "backgroundColor")) >= 3
    assert contrast(edge, [255, 255, 255]) >= 3  # and against the white paper inside it
    context.close()
    assert not errors, errors


@pytest.mark.parametrize(
    "width,height,color_scheme",
    [(1000, 800, "light"), (1000, 800, "dark"), (390, 664, "light"), (390, 664, "dark")],
)
def test_axe_finds_no_violations(browser, server, width, height, color_scheme):  # noqa: F811
    axe = pytest.importorskip("axe_playwright_python.sync_playwright")
    touch_screen = width < 640
    context, page, errors = open_page(browser, server, width, height, touch_screen, color_scheme)
    for stage in ("empty", "answered"):
        if stage == "answered":
            draw(page, SEVEN) if not touch_screen else touch(page, SEVEN)
            wait_for_state(page, "answered")
            page.wait_for_timeout(300)  # the bars' transition
        results = axe.Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    if color_scheme == "dark" and width == 1000:
        screenshot(page, "page-dark.png")
    if color_scheme == "light" and width == 1000:
        screenshot(page, "page-desktop.png")
    context.close()
    assert not errors, errors
