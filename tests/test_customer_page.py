"""The key holder's page /my/ without a browser: sign-in by key, the staff page's cookie and
CSRF rules, rate limits, freeing a seat, export, erasure requests and offline files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core import auth
from app.core.audit import AuditEntry
from app.licences.models import CustomerSession
from app.main import create_app
from app.privacy.models import ErasureRequest
from tests.support import app_parts
from tests.support.cli import callhome_json
from tests.support.clocks import FrozenClock
from tests.support.forms import csrf_token, set_cookie_attributes
from tests.support.licences import create_licence
from tests.support.offline import activation_request, read_file
from tests.support.pings import ping, this_machine
from tests.support.stores import Store
from tests.support.tokens import staff_headers

ORIGIN = "https://callhome.test"


def browser(app: FastAPI, *, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url=ORIGIN)


@pytest.fixture
async def page(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as http:
        yield http


async def sign_in(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.post("/my/sign-in", data={"key": key}, headers={"Origin": ORIGIN})


async def post_form(
    http: httpx.AsyncClient, path: str, data: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    """A form posted from the licence page, with its CSRF token and our Origin."""
    token = csrf_token((await http.get("/my/")).text)
    return await http.post(
        path, data={**(data or {}), "csrf_token": token}, headers={"Origin": ORIGIN}, **kwargs
    )


async def _audit_actions(app: FastAPI) -> list[tuple[str, str]]:
    async with app_parts.database(app).sessions() as session:
        rows = await session.execute(select(AuditEntry.actor, AuditEntry.action))
        return [(actor, action) for actor, action in rows]


async def test_sign_in_by_key_shows_the_licence_and_its_machines(
    page: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=2, entitlements=["spam"])
    await ping(app, licence["key"], "pc-1")
    assert (await page.get("/my/")).headers["location"] == "/my/sign-in"

    response = await sign_in(page, licence["key"])
    assert response.status_code == 303 and response.headers["location"] == "/my/"
    attributes = set_cookie_attributes(response)
    assert attributes["path"] == "/my"
    assert attributes["samesite"].lower() == "strict"
    assert "httponly" in attributes and "secure" in attributes
    cookie = SimpleCookie(response.headers["set-cookie"])["callhome_customer"].value
    async with app_parts.database(app).sessions() as session:
        (row,) = list(await session.scalars(select(CustomerSession)))
    assert row.id_hash == hashlib.sha256(cookie.encode()).hexdigest()

    shown = await page.get("/my/")
    assert shown.status_code == 200
    assert this_machine(app, licence["id"], "pc-1") in shown.text
    assert "spam" in shown.text and "8.2.1" in shown.text
    assert "<script" not in shown.text
    assert licence["key"] not in shown.text
    assert "default-src 'none'" in shown.headers["content-security-policy"]
    assert shown.headers["cache-control"] == "no-store"
    assert ("customer", "customer.sign_in") in await _audit_actions(app)

    signed_out = await post_form(page, "/my/sign-out")
    assert signed_out.headers["location"] == "/my/sign-in?signed-out=true"
    assert (await page.get("/my/")).status_code == 303
    async with app_parts.database(app).sessions() as session:
        assert list(await session.scalars(select(CustomerSession))) == []


async def test_a_wrong_key_gets_the_same_answer_as_an_unknown_one(
    page: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    wrong = await sign_in(page, licence["key"][:-1] + ("0" if licence["key"][-1] != "0" else "1"))
    unknown = await sign_in(page, "NOBODY-HAS-THIS-KEY-AT-ALL")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text == unknown.text
    assert "set-cookie" not in wrong.headers


async def test_sign_in_is_rate_limited_per_key_and_per_network(
    store: Store, clock: FrozenClock
) -> None:
    settings = store.settings.model_copy(
        update={"rate_limit_sync_s": 3600.0, "rate_limit_licence_per_hour": 2}
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application), browser(application) as http:
        for _ in range(2):
            assert (await sign_in(http, "NOBODY-HAS-THIS-KEY-AT-ALL")).status_code == 401
        limited = await sign_in(http, "NOBODY-HAS-THIS-KEY-AT-ALL")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
    settings = store.settings.model_copy(
        update={"rate_limit_sync_s": 3600.0, "rate_limit_network_per_hour": 2}
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application), browser(application) as http:
        for number in range(2):
            await sign_in(http, f"GUESSED-KEY-NUMBER-{number}")
        assert (await sign_in(http, "GUESSED-KEY-NUMBER-9")).status_code == 429


async def test_forms_need_their_csrf_token_and_our_origin(
    page: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    await sign_in(page, licence["key"])
    token = csrf_token((await page.get("/my/")).text)
    assert (await page.post("/my/erasure", headers={"Origin": ORIGIN})).status_code == 403
    elsewhere = await page.post(
        "/my/erasure", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    async with app_parts.database(app).sessions() as session:
        assert list(await session.scalars(select(ErasureRequest))) == []
    from_elsewhere = await page.post(
        "/my/sign-in", data={"key": licence["key"]}, headers={"Origin": "https://evil.example"}
    )
    assert from_elsewhere.status_code == 403


async def test_plain_http_from_another_machine_is_refused_before_any_key_is_read(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        refused = await http.post(
            "/my/sign-in", data={"key": licence["key"]}, headers={"Origin": "http://callhome.test"}
        )
    assert refused.status_code == 403
    assert "This page is served over HTTPS only" in refused.text
    assert "set-cookie" not in refused.headers
    async with app_parts.database(app).sessions() as session:
        assert list(await session.scalars(select(CustomerSession))) == []


async def test_free_a_seat_download_the_export_and_ask_for_erasure(
    store: Store, page: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=1, overage="deny")
    await ping(app, licence["key"], "old-pc")
    assert (await ping(app, licence["key"], "new-pc"))["licence"]["machines"]["seat"] == "denied"
    await sign_in(page, licence["key"])
    old = this_machine(app, licence["id"], "old-pc")

    freed = await post_form(page, f"/my/machines/{old}/free")
    assert freed.status_code == 303 and freed.headers["location"] == f"/my/?freed={old}"
    assert (await ping(app, licence["key"], "new-pc"))["licence"]["machines"]["seat"] == "granted"
    assert ("customer", "machine.deactivate") in await _audit_actions(app)
    assert (await post_form(page, "/my/machines/000000000000/free")).status_code == 404
    assert (await post_form(page, "/my/machines/not-hex/free")).status_code == 422

    exported = await page.get("/my/export")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment")
    admin = await staff_headers(app, auth.Scope.LICENCES_READ)
    staff_export = await client.get(f"/v1/admin/licences/{licence['id']}/export", headers=admin)
    mine, theirs = json.loads(exported.content), staff_export.json()
    assert set(mine) == set(theirs) and mine["machines"] == theirs["machines"]
    assert ("customer", "licence.export") in await _audit_actions(app)

    asked = await post_form(page, "/my/erasure")
    assert asked.headers["location"] == "/my/?done=erasure"
    assert "waits for staff to confirm" in (await page.get("/my/")).text
    await post_form(page, "/my/erasure")  # asking twice is harmless
    assert (await ping(app, licence["key"], "new-pc"))["licence"]["status"] == "valid"

    privacy = await staff_headers(app, auth.Scope.PRIVACY_WRITE)
    assert (await client.get("/v1/admin/erasure-requests")).status_code == 401
    assert (await client.get("/v1/admin/erasure-requests", headers=admin)).status_code == 403
    listed = await client.get("/v1/admin/erasure-requests", headers=privacy)
    assert [item["licence_id"] for item in listed.json()["items"]] == [licence["id"]]
    assert (await callhome_json(store, "privacy", "requests"))["items"][0]["key_last4"] == (
        licence["key"][-4:]
    )
    confirm = f"/v1/admin/erasure-requests/{licence['id']}/confirm"
    assert (await client.post(confirm, headers=admin)).status_code == 403
    confirmed = await client.post(confirm, headers=privacy)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["erased"]["machines"] == 2
    assert (await client.post(confirm, headers=privacy)).status_code == 404
    assert (
        await client.post("/v1/admin/erasure-requests/nope/confirm", headers=privacy)
    ).status_code == 422
    assert (await client.get("/v1/admin/erasure-requests", headers=privacy)).json()["items"] == []


async def test_an_offline_request_uploaded_gives_the_licence_file(
    page: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app)
    other = await create_licence(client, app)
    await sign_in(page, licence["key"])
    upload = {"request_file": ("request.json", activation_request(licence["key"]))}
    response = await post_form(page, "/my/offline", files=upload)
    assert response.status_code == 200, response.text
    assert read_file(app, response.content, clock=clock.now).verdict.licensed
    assert ("customer", "machine.offline_activate") in await _audit_actions(app)

    foreign = {"request_file": ("request.json", activation_request(other["key"]))}
    assert (await post_form(page, "/my/offline", files=foreign)).status_code == 422
    junk = {"request_file": ("request.json", b'{"email": "someone@example.com"}')}
    refused = await post_form(page, "/my/offline", files=junk)
    assert refused.status_code == 422 and "someone" not in refused.text
    too_big = {"request_file": ("request.json", b" " * 5000)}
    assert (await post_form(page, "/my/offline", files=too_big)).status_code == 413
