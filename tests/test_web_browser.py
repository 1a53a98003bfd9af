"""A support person's round in a real browser against a real `callhome serve`: from the
report queue to a licence, judged from its chart and machines, and acted on."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core import auth
from tests.support import stores
from tests.support.browser import screenshot
from tests.support.pings import ping_body
from tests.support.server import RunningServer, cli_token, serve
from tests.support.stores import TEST_PSEUDONYM_KEY
from tests.support.tokens import bearer

EVERY_PAGE_SCOPE = (
    auth.Scope.REPORTS_READ,
    auth.Scope.REPORTS_WRITE,
    auth.Scope.LICENCES_READ,
    auth.Scope.LICENCES_WRITE,
    auth.Scope.RELEASES_WRITE,
)
TIMEOUT_MS = 10_000
# For a failure message: the elements that stick out past the window's right edge.
WIDEST_ELEMENTS = """[...document.querySelectorAll('body *')]
    .filter(e => !e.closest('.table-wrap') && e.getBoundingClientRect().right > window.innerWidth)
    .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"""


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[RunningServer, str, str]]:
    data_dir = tmp_path / "data"
    stores.sqlite_clone(sqlite_template, data_dir)
    env = {
        "CALLHOME_DATA_DIR": str(data_dir),
        "CALLHOME_DATABASE_URL": "",
        "CALLHOME_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        # Findings from the ping path are judged at once, not every 5 s.
        "CALLHOME_FINDINGS_FLUSH_S": "0.2",
    }
    page_token = cli_token(env, "support", EVERY_PAGE_SCOPE)
    api_token = cli_token(env, "setup", list(auth.Scope))
    with serve(env) as running:
        yield running, page_token, api_token


def _licence_with_too_many_users(http: httpx.Client, product: str) -> dict[str, Any]:
    """A licence of `product` whose two machines report more users than it allows."""
    created = http.post(
        "/v1/admin/licences", json={"product": product, "max_machines": 2, "max_users": 10}
    )
    assert created.status_code == 201, created.text
    licence: dict[str, Any] = created.json()
    for machine, users in (("office-pc", 25), ("laptop", 4)):
        body = ping_body(licence["key"], machine=machine, product=product, user_count=users)
        assert http.post("/v1/ping", json=body).status_code == 200
    return licence


def _wait_for_reports(http: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 15
    while len(http.get("/v1/admin/abuse-reports").json()["items"]) < count:
        assert time.monotonic() < deadline, "the pings raised no reports"
        time.sleep(0.2)


def test_from_the_queue_to_a_licence_and_back(
    server: tuple[RunningServer, str, str], chromium: Any
) -> None:
    running, page_token, api_token = server
    with httpx.Client(base_url=running.base_url, headers=bearer(api_token)) as http:
        licence = _licence_with_too_many_users(http, "mail")
        _licence_with_too_many_users(http, "gate")
        _wait_for_reports(http, 2)

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(f"{running.base_url}/staff/reports")
        assert page.url.endswith("/staff/sign-in")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.get_by_label("Staff token").fill(page_token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/staff/reports")
        rows = page.locator("table tbody tr")
        assert rows.count() == 2
        screenshot(page, "1-queue")

        page.get_by_label("Product").fill("mail")
        page.get_by_label("Kind").select_option("users_over_limit")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r"product=mail"))
        assert rows.count() == 1
        screenshot(page, "2-queue-filtered")

        page.get_by_role("link", name="users over limit").click()
        page.wait_for_url(re.compile(r"/staff/reports/[0-9a-f-]{36}$"))
        page.get_by_label("New status").select_option("acknowledged")
        page.get_by_label("Note", exact=True).fill("Asked the customer about the extra users.")
        page.get_by_role("button", name="Save").click()
        page.get_by_text("Report acknowledged.").wait_for()
        page.get_by_text("Asked the customer about the extra users.").wait_for()
        assert "open → acknowledged" in page.locator("ol.history").inner_text()
        screenshot(page, "3-report-acknowledged")

        page.get_by_role("link", name=re.compile(r"mail · key ending")).click()
        page.wait_for_url(f"**/staff/licences/{licence['id']}")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Licence: mail")
        machines = page.locator("#machines-heading + p + .table-wrap tbody tr")
        assert machines.count() == 2
        charts = page.locator("figure.chart svg")
        assert charts.count() == 3
        assert page.locator("#chart-users rect.bar").count() == 30
        assert page.locator("#chart-users line.limit").count() == 1
        screenshot(page, "4-licence")

        retire = page.get_by_role("button", name=re.compile(r"^Retire machine "))
        assert retire.count() == 2
        retire.first.click()
        page.get_by_text(re.compile(r"retired: it no longer counts")).wait_for()
        assert page.get_by_role("button", name=re.compile(r"^Retire machine ")).count() == 1
        screenshot(page, "5-machine-retired")

        phone = context.new_page()
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(page.url)
        screenshot(phone, "6-licence-on-a-phone")
        # Nothing but the tables' own scroll boxes is wider than a phone.
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390, phone.evaluate(
            WIDEST_ELEMENTS
        )
        phone.close()

        page.get_by_role("button", name="Sign out").click()
        page.get_by_text("You have signed out.").wait_for()
        page.goto(f"{running.base_url}/staff/reports")
        assert page.url.endswith("/staff/sign-in")
        screenshot(page, "7-signed-out")
    finally:
        context.close()
    assert problems == []
