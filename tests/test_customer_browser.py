"""The key holder's round on /my/ in a real browser against a real `callhome serve`: sign in
with the key, see the machines, free one, download the export, ask for erasure, sign out."""

from __future__ import annotations

import json
import re
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

TIMEOUT_MS = 10_000


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[RunningServer, str]]:
    data_dir = tmp_path / "data"
    stores.sqlite_clone(sqlite_template, data_dir)
    env = {
        "CALLHOME_DATA_DIR": str(data_dir),
        "CALLHOME_DATABASE_URL": "",
        "CALLHOME_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
    }
    api_token = cli_token(env, "setup", list(auth.Scope))
    with serve(env) as running:
        yield running, api_token


def test_the_key_holder_frees_a_seat_exports_and_asks_for_erasure(
    server: tuple[RunningServer, str], chromium: Any, tmp_path: Path
) -> None:
    running, api_token = server
    with httpx.Client(base_url=running.base_url, headers=bearer(api_token)) as http:
        created = http.post("/v1/admin/licences", json={"product": "mail", "max_machines": 2})
        assert created.status_code == 201, created.text
        licence = created.json()
        for machine in ("office-pc", "old-laptop"):
            body = ping_body(licence["key"], machine=machine)
            assert http.post("/v1/ping", json=body).status_code == 200

    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(f"{running.base_url}/my/")
        assert page.url.endswith("/my/sign-in")
        page.get_by_label("Licence key").fill(licence["key"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/my/")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Your mail licence")
        free = page.get_by_role("button", name=re.compile(r"^Free the seat of machine "))
        assert free.count() == 2
        screenshot(page, "1-licence", folder_name="customer-web")

        free.first.click()
        page.get_by_text(re.compile(r"is free: another machine can take it now")).wait_for()
        assert page.get_by_role("button", name=re.compile(r"^Free the seat of ")).count() == 1
        screenshot(page, "2-seat-freed", folder_name="customer-web")

        with page.expect_download() as download_info:
            page.get_by_role("link", name=re.compile(r"^Download everything held")).click()
        saved = tmp_path / "export.json"
        download_info.value.save_as(saved)
        exported = json.loads(saved.read_text())
        assert exported["licence"]["id"] == licence["id"]
        assert len(exported["machines"]) == 2

        page.get_by_role("button", name="Ask for this licence's data to be erased").click()
        page.get_by_text("Your request to erase this licence's data is recorded").wait_for()
        page.get_by_text("waits for staff to confirm").wait_for()
        screenshot(page, "3-erasure-asked", folder_name="customer-web")

        page.get_by_role("button", name="Sign out").click()
        page.get_by_text("You have signed out.").wait_for()
        page.goto(f"{running.base_url}/my/")
        assert page.url.endswith("/my/sign-in")
    finally:
        context.close()
    assert problems == []
    with httpx.Client(base_url=running.base_url, headers=bearer(api_token)) as http:
        pending = http.get("/v1/admin/erasure-requests").json()["items"]
        assert [item["licence_id"] for item in pending] == [licence["id"]]
