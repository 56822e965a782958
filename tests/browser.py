"""Headless Chromium checks for HTML reports (skips with a reason where no browser is installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Chromium not installed (apt-get install -y chromium); .ci/run installs it")
    return path


def render(html_file: Path, screenshot: Path | None = None) -> dict:
    """Open the file in headless Chromium; return {'images': [{'alt','w','h','complete'}], 'title', 'text'}."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.goto(html_file.resolve().as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img",
                "els => els.map(e => ({alt: e.alt, w: e.naturalWidth, h: e.naturalHeight, complete: e.complete}))",
            )
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=True)
            return {"images": images, "title": page.title(), "text": page.inner_text("body")}
        finally:
            browser.close()
