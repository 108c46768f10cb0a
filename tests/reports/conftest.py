"""A real headless Chromium (Debian's, installed by `make browser`) to check the HTML people read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import OpenPage, Page


@pytest.fixture()
def open_page(browser: Any, tmp_path: Path) -> OpenPage:
    def _open(html: Path) -> Page:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        result = Page(text="", screenshot=tmp_path / f"{html.stem}.png")
        page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: result.console_errors.append(str(e)))
        page.on("requestfailed", lambda r: result.failed_requests.append(r.url))

        def _request(request: Any) -> None:
            if not request.url.startswith(("file://", "data:", "about:")):
                result.outside_requests.append(request.url)

        page.on("request", _request)
        page.goto(html.resolve().as_uri(), wait_until="load")
        result.text = page.inner_text("body")
        result.svg_count = page.locator("svg").count()
        page.screenshot(path=str(result.screenshot), full_page=True)
        page.close()
        return result

    return _open
