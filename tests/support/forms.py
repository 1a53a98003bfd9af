"""What tests read off a page without a browser: a form's CSRF token, a cookie's attributes."""

from __future__ import annotations

import re

import httpx


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no form"
    return found.group(1)


def set_cookie_attributes(response: httpx.Response) -> dict[str, str]:
    header = response.headers["set-cookie"]
    parts = [part.strip() for part in header.split(";")]
    return {part.split("=", 1)[0].lower(): part.partition("=")[2] for part in parts[1:]}
