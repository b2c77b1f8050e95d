"""The HTML email in real headless Chromium: renders on a phone-sized screen without breaking."""

from __future__ import annotations

import pytest
from test_deliver import hostile_digest

from digest.config import load
from digest.deliver import render_for

pytestmark = pytest.mark.browser


def test_email_renders_in_one_column_on_a_phone(browser, home, tmp_path):
    _, html, _ = render_for(load(home), hostile_digest(), "ada@example.com")
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.set_content(html)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing sticks out sideways
    body = page.inner_text("body")
    assert "{{" not in body and "{%" not in body and "Heat pumps" in body and "said on 2 shows" in body
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    shot = tmp_path / "email.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    page.set_viewport_size({"width": 1024, "height": 800})
    column = page.evaluate("Math.max(...[...document.querySelectorAll('table')].map(t => t.offsetWidth))")
    assert column >= 600  # outer table fills the screen, the 600px card sits in it
