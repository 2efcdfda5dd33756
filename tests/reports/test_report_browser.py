"""The HTML report opens in Debian's headless Chromium (driven by Playwright, as tests/browser/ does) from a
file:// URL with no console error, no request outside the file, and every image decoded.

Skips with the reason without Playwright or without ``/usr/bin/chromium`` (``ZEROOPS_CHROMIUM`` overrides it;
``.ci/run`` installs ``chromium`` from Debian).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reports.report import build_report
from tests.browser.harness import Console

CHROMIUM = os.environ.get("ZEROOPS_CHROMIUM", "/usr/bin/chromium")


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]'); the report's browser test needs it"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"no Chromium at {CHROMIUM} (Debian: sudo apt-get install chromium; .ci/run installs it; "
                "ZEROOPS_CHROMIUM names another binary)")
    return None


def test_html_report_renders_in_headless_chromium(results: Path, tmp_path: Path) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    path = build_report(results, "html", tmp_path / "report.html")
    url = path.resolve().as_uri()
    console = Console()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.on("console", lambda m: console.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.errors.append(f"uncaught: {e}"))
            page.on("request", lambda r: None if r.url.startswith(("data:", "about:")) or r.url == url
                    else console.errors.append(f"request outside the file: {r.url}"))
            page.goto(url, wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
            assert len(images) >= 4
            assert all(ok and w > 100 and h > 100 for ok, w, h in images), images
            assert page.locator("h2#dashboard").inner_text() == "Automation dashboard"
            # an incident's post-mortem link opens its embedded post-mortem
            link = page.locator("a[href^='#pm-']").first
            if link.count():
                target = link.get_attribute("href") or ""
                link.click()
                page.locator(f"details{target}").evaluate("d => { d.open = true; }")
                assert "Post-mortem" in page.locator(f"details{target} summary").inner_text()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    console.check(shot)
