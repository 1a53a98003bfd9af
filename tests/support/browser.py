"""Debian's Chromium for browser tests (driven by Playwright, never downloaded), and screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support import stores

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Where Debian puts its chromium; `make test` installs it when it is missing.
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable(reason: str) -> NoReturn:
    message = f"{reason}: browser tests need Debian's chromium (apt-get install chromium)"
    if stores.running_in_ci():
        pytest.fail(f"{message}; CI must run them")
    pytest.skip(message)


def screenshot(page: Any, name: str, *, folder_name: str = "staff-web") -> None:
    folder = ARTIFACTS / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
