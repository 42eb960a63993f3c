"""The drawing page's "Show why" toggle, in headless Chromium against a real server."""

from __future__ import annotations

import pytest

from tests import test_web_page as web_page
from tests.test_web_page import SEVEN, draw, wait_for_state

# The drawing page's own fixtures: Chromium and a fresh page (the server is conftest's).
browser = web_page.browser
page = web_page.page

pytestmark = pytest.mark.browser

# The 28x28 canvas's pixels, and how many are coloured (not grey) by an overlay.
COLOURED_PIXELS = """() => {
  const data = document.getElementById('preprocessed').getContext('2d')
    .getImageData(0, 0, 28, 28).data;
  let coloured = 0;
  for (let at = 0; at < data.length; at += 4) {
    if (Math.max(data[at], data[at + 1], data[at + 2])
        - Math.min(data[at], data[at + 1], data[at + 2]) > 30) coloured += 1;
  }
  return coloured;
}"""


def test_show_why_lays_the_saliency_map_over_the_image_and_hides_it_again(page, artifacts_dir):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    draw(page, SEVEN)
    wait_for_state(page, "answered")
    assert page.evaluate(COLOURED_PIXELS) == 0  # grey: the model's image alone
    assert not any("saliency" in url for url in requests)  # not asked for unless wanted

    page.check("#show-why")
    page.wait_for_function("window.mnistPage.saliencyShown === true", timeout=15_000)
    assert any("include=saliency" in url for url in requests)
    assert page.evaluate(COLOURED_PIXELS) > 5
    assert page.locator("#digit").inner_text() == "7"
    page.screenshot(path=str(artifacts_dir / "page-show-why.png"), full_page=True)

    page.uncheck("#show-why")
    page.wait_for_function("window.mnistPage.saliencyShown === false", timeout=15_000)
    page.wait_for_function("window.mnistPage.settled", timeout=15_000)
    assert page.evaluate(COLOURED_PIXELS) == 0
