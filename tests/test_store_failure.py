"""When the store goes away, pings get 503 quickly, nothing is acknowledged that was not
stored, and service resumes by itself when the store is back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.core.auth import Scope
from app.main import create_app
from tests.support.clocks import FrozenClock
from tests.support.dumps import count_pings
from tests.support.faults import CuttableProxy, sqlite_locked
from tests.support.licences import create_licence
from tests.support.pings import JSON_HEADERS, ping_body, verify_signature
from tests.support.stores import Store
from tests.support.tokens import issue_token


async def fire(http: httpx.AsyncClient, app: FastAPI, key: str, count: int) -> list[int]:
    async def one(n: int) -> int:
        response = await http.post(
            "/v1/ping",
            content=json.dumps(ping_body(key, machine=f"pc-{n % 3}")),
            headers=JSON_HEADERS,
        )
        if response.status_code == 200:
            verify_signature(app, response)
        else:
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) > 0
        return response.status_code

    return list(await asyncio.gather(*(one(n) for n in range(count))))


@pytest.fixture
async def proxied(store: Store, clock: FrozenClock) -> AsyncIterator[tuple[FastAPI, CuttableProxy]]:
    if store.kind != "postgresql":
        pytest.skip("the cuttable proxy stands in front of PostgreSQL")
    real = make_url(store.url)
    proxy = CuttableProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = store.settings.model_copy(update={"database_url": url, "store_timeout_s": 1.0})
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app, proxy
    await proxy.cut()


async def test_postgresql_going_away_and_coming_back(
    store: Store, proxied: tuple[FastAPI, CuttableProxy]
) -> None:
    app, proxy = proxied
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        licence = await create_licence(http, app, max_machines=5)
        before = await fire(http, app, licence["key"], 30)
        assert before.count(200) == 30

        await proxy.cut()
        started = asyncio.get_running_loop().time()
        during = await fire(http, app, licence["key"], 30)
        assert during.count(503) == 30
        assert asyncio.get_running_loop().time() - started < 10  # failed fast, no hanging

        ready = await http.get("/readyz")
        assert ready.status_code == 503

        await proxy.restore()
        after: list[int] = []
        for _ in range(20):  # the pool notices dead connections and opens new ones
            after = await fire(http, app, licence["key"], 10)
            if after.count(200) == 10:
                break
            await asyncio.sleep(0.2)
        assert after.count(200) == 10
        acknowledged = (
            before.count(200) + during.count(200) + sum(1 for status in after if status == 200)
        )
    stored = await count_pings(store.url)
    # Every 200 has its row. A batch cut mid-commit may be stored yet answered
    # 503 (the client retries; a duplicate ping is harmless), never the reverse.
    assert stored >= acknowledged
    assert stored - acknowledged <= during.count(503)


async def test_sqlite_locked_by_another_process(store: Store, clock: FrozenClock) -> None:
    if store.kind != "sqlite":
        pytest.skip("SQLite's own failure mode")
    settings = store.settings.model_copy(update={"store_timeout_s": 0.5})
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            licence = await create_licence(http, app, max_machines=5)
            assert (await fire(http, app, licence["key"], 10)).count(200) == 10
            async with sqlite_locked(settings.data_dir / "callhome.sqlite3"):
                locked = await fire(http, app, licence["key"], 10)
            assert locked.count(503) == 10
            assert (await fire(http, app, licence["key"], 10)).count(200) == 10
    assert await count_pings(store.url) == 20


STAFF_ORIGIN = "https://callhome.test"


async def staff_requests(http: httpx.AsyncClient, token: str, licence_id: str) -> dict[str, int]:
    """The staff API and pages a store outage must not turn into 500s, by what they answer."""
    bearer = {"Authorization": f"Bearer {token}"}
    form = {"Origin": STAFF_ORIGIN}
    answers = {
        "api list": await http.get("/v1/admin/licences", headers=bearer),
        "api change": await http.patch(
            f"/v1/admin/licences/{licence_id}", json={"max_machines": 9}, headers=bearer
        ),
        "page list": await http.get("/staff/licences"),
        "sign-in": await http.post("/staff/sign-in", data={"token": token}, headers=form),
    }
    for name, response in answers.items():
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0, name
            if name.startswith("api"):
                assert response.headers["content-type"] == "application/problem+json", name
                assert response.json()["status"] == 503
            else:
                assert response.headers["content-type"].startswith("text/html"), name
    return {name: response.status_code for name, response in answers.items()}


async def test_staff_routes_answer_503_while_postgresql_is_away(
    proxied: tuple[FastAPI, CuttableProxy], caplog: pytest.LogCaptureFixture
) -> None:
    app, proxy = proxied
    token = await issue_token(app, *Scope)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1))
    async with httpx.AsyncClient(transport=transport, base_url=STAFF_ORIGIN) as http:
        licence = await create_licence(http, app, max_machines=5)
        signed_in = await http.post(
            "/staff/sign-in", data={"token": token}, headers={"Origin": STAFF_ORIGIN}
        )
        assert signed_in.status_code == 303
        before = await staff_requests(http, token, licence["id"])
        assert set(before.values()) <= {200, 303}, before

        await proxy.cut()
        caplog.clear()
        during = await staff_requests(http, token, licence["id"])
        assert set(during.values()) == {503}, during
        assert "Traceback" not in caplog.text

        await proxy.restore()
        after: dict[str, int] = {}
        for _ in range(20):  # the pool notices dead connections and opens new ones
            after = await staff_requests(http, token, licence["id"])
            if set(after.values()) <= {200, 303}:
                break
            await asyncio.sleep(0.2)
        assert set(after.values()) <= {200, 303}, after


async def test_staff_routes_answer_503_while_sqlite_is_locked(
    store: Store, clock: FrozenClock
) -> None:
    if store.kind != "sqlite":
        pytest.skip("SQLite's own failure mode")
    settings = store.settings.model_copy(update={"store_timeout_s": 0.3})
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        token = await issue_token(app, *Scope)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1))
        async with httpx.AsyncClient(transport=transport, base_url=STAFF_ORIGIN) as http:
            licence = await create_licence(http, app, max_machines=5)
            signed_in = await http.post(
                "/staff/sign-in", data={"token": token}, headers={"Origin": STAFF_ORIGIN}
            )
            assert signed_in.status_code == 303
            async with sqlite_locked(settings.data_dir / "callhome.sqlite3"):
                during = await staff_requests(http, token, licence["id"])
            assert set(during.values()) == {503}, during
            after = await staff_requests(http, token, licence["id"])
            assert set(after.values()) <= {200, 303}, after
