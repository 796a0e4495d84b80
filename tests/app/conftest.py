"""The ``browser`` fixture shared by the browser tests: headless Chromium driven by Playwright,
one per test module (tests/browser_testing.py says where Chromium comes from)."""
from __future__ import annotations

import pytest
from browser_testing import CHROMIUM, CHROMIUM_FLAGS, as_root, ensure_chromium, missing


@pytest.fixture(scope="module")
def browser():
    chromium = ensure_chromium()
    if chromium is None:
        missing(f"no Chromium at {CHROMIUM}" + (" (apt-get install failed)" if as_root() else ""))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright is not installed (pip install -e '.[test]')")

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()
