"""Headless Chromium for browser tests: Debian's package, driven by Playwright, never downloaded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests import stores

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# Where Debian puts its chromium; `make test` installs it when it is missing.
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> NoReturn:
    message = f"{reason}: browser tests need Debian's chromium (apt-get install chromium)"
    if stores.running_in_ci():
        pytest.fail(f"{message}; CI must run them")
    pytest.skip(message)


# Module scope: Playwright's sync API holds an event loop in this thread while it runs,
# and the tests after these need the thread's asyncio to themselves.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium for a module's tests, or a skip (a failure under CI=true)."""
    executable = chromium_path()
    if executable is None:
        _unavailable("no chromium on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    folder = ARTIFACTS / "staff-web"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
