"""Rate limits on the ping: per licence (scaled by its machines) and per network, in one
process or shared by several through Redis, answered 429 with a Retry-After that works."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.ratelimit import WindowCounts
from app.core.settings import Settings
from app.main import create_app
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import JSON_HEADERS, ping_body, send_ping
from tests.support.server import free_port
from tests.support.stores import Store


@asynccontextmanager
async def running(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_from(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 4242))
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        yield http


def limited(store: Store, **limits: Any) -> Settings:
    # The background round would race the test's own; the tests run rounds by hand.
    return store.settings.model_copy(update={"rate_limit_sync_s": 3600.0, **limits})


async def ping(http: httpx.AsyncClient, key: str, machine: str = "pc-1") -> httpx.Response:
    return await http.post(
        "/v1/ping", content=json.dumps(ping_body(key, machine=machine)), headers=JSON_HEADERS
    )


def assert_rate_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:callhome:problem:rate-limited"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 2 * 3600 + 1
    return retry_after


async def test_a_licence_over_its_hourly_limit_is_told_when_to_come_back(
    store: Store, clock: FrozenClock
) -> None:
    settings = limited(store, rate_limit_licence_per_hour=5, rate_limit_machine_per_hour=1)
    async with running(settings, clock) as app, client_from(app, "203.0.113.7") as http:
        licence = await create_licence(http, app, max_machines=1)
        for _ in range(5):
            await send_ping(http, app, ping_body(licence["key"]))
        refused = await ping(http, licence["key"])
        retry_after = assert_rate_limited(refused)
        assert licence["key"] not in refused.text

        clock.advance(seconds=retry_after)
        await send_ping(http, app, ping_body(licence["key"]))


async def test_the_licence_limit_grows_with_its_machines(store: Store, clock: FrozenClock) -> None:
    settings = limited(store, rate_limit_licence_per_hour=5, rate_limit_machine_per_hour=2)
    async with running(settings, clock) as app, client_from(app, "203.0.113.7") as http:
        small = await create_licence(http, app, max_machines=1)
        large = await create_licence(http, app, max_machines=10)
        for n in range(20):
            await send_ping(http, app, ping_body(large["key"], machine=f"pc-{n % 10}"))
        assert_rate_limited(await ping(http, large["key"]))
        for _ in range(5):
            await send_ping(http, app, ping_body(small["key"]))
        assert_rate_limited(await ping(http, small["key"]))


async def test_one_network_is_limited_whatever_keys_it_sends(
    store: Store, clock: FrozenClock
) -> None:
    settings = limited(store, rate_limit_network_per_hour=3)
    async with running(settings, clock) as app:
        async with client_from(app, "198.51.100.20") as scanner:
            for n in range(3):
                assert (await ping(scanner, f"GUESSED-KEY-{n:04d}")).status_code == 200
            # Another address of the same /24 is the same network.
            async with client_from(app, "198.51.100.99") as neighbour:
                assert_rate_limited(await ping(neighbour, "GUESSED-KEY-0003"))
        async with client_from(app, "192.0.2.10") as elsewhere:
            assert (await ping(elsewhere, "GUESSED-KEY-0004")).status_code == 200


async def test_limits_set_to_zero_are_off(store: Store, clock: FrozenClock) -> None:
    settings = limited(
        store,
        rate_limit_licence_per_hour=0,
        rate_limit_machine_per_hour=0,
        rate_limit_network_per_hour=0,
    )
    async with running(settings, clock) as app, client_from(app, "203.0.113.7") as http:
        licence = await create_licence(http, app, max_machines=1)
        for _ in range(30):
            await send_ping(http, app, ping_body(licence["key"]))


def test_the_counts_stay_bounded_and_forget_the_idle() -> None:
    counts = WindowCounts("licence", max_entries=3)
    for pseudonym in ("a", "b", "c"):
        counts.hit(pseudonym, index=100)
    counts.hit("a", index=100)
    counts.hit("d", index=100)  # "b" is the least recently seen
    assert len(counts) == 3
    assert counts.hit("b", index=100).current == 1  # forgotten, so counted afresh

    counts.hit("d", index=101)
    counts.drop_idle(index=102)  # only "d" was seen in the window before
    assert len(counts) == 1


async def test_nodes_sharing_redis_hold_one_limit_between_them(
    store: Store, clock: FrozenClock, redis_url: str
) -> None:
    settings = limited(
        store,
        rate_limit_licence_per_hour=6,
        rate_limit_machine_per_hour=1,
        rate_limit_redis_url=redis_url,
    )
    async with (
        running(settings, clock) as first,
        running(settings, clock) as second,
        client_from(first, "203.0.113.7") as via_first,
        client_from(second, "192.0.2.8") as via_second,
    ):
        licence = await create_licence(via_first, first, max_machines=1)
        for _ in range(4):
            await send_ping(via_first, first, ping_body(licence["key"]))
        await app_parts.rate_limiter(first).run_round(clock.now())

        await send_ping(via_second, second, ping_body(licence["key"]))
        await app_parts.rate_limiter(second).run_round(clock.now())  # learns the first node's 4
        await send_ping(via_second, second, ping_body(licence["key"]))
        assert_rate_limited(await ping(via_second, licence["key"]))


async def test_without_redis_each_node_limits_alone_and_says_so_once(
    store: Store, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = limited(
        store,
        rate_limit_licence_per_hour=3,
        rate_limit_machine_per_hour=1,
        rate_limit_redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    async with running(settings, clock) as app, client_from(app, "203.0.113.7") as http:
        licence = await create_licence(http, app, max_machines=1)
        for _ in range(3):
            await send_ping(http, app, ping_body(licence["key"]))
            await app_parts.rate_limiter(app).run_round(clock.now())
        assert_rate_limited(await ping(http, licence["key"]))

    warnings = [r for r in caplog.records if r.name == "callhome.ratelimit"]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
    assert "127.0.0.1" not in warnings[0].getMessage()


NEWS_ROUTES = ("/v1/updates/mail?version=1.0.0", "/v1/feeds/spam?version=0")


@pytest.mark.parametrize("route", NEWS_ROUTES)
async def test_key_guessing_on_the_news_routes_meets_the_network_limit(
    store: Store, clock: FrozenClock, route: str
) -> None:
    settings = limited(store, rate_limit_network_per_hour=6)
    async with running(settings, clock) as app, client_from(app, "203.0.113.7") as http:
        for guess in range(3):
            await ping(http, f"GUESS-{guess:04d}-ABCD")  # the ping's budget is the same one
        for guess in range(3):
            wrong = await http.get(route, headers={"Authorization": f"Licence GUESS-{guess:04d}"})
            assert wrong.status_code == 401
        refused = await http.get(route, headers={"Authorization": "Licence GUESS-9999"})
        assert_rate_limited(refused)
        # The network is limited before any key is read: a right key waits too.
        licence = await create_licence(http, app, entitlements=["spam"])
        right = await http.get(route, headers={"Authorization": f"Licence {licence['key']}"})
        assert_rate_limited(right)
    async with running(settings, clock) as app, client_from(app, "198.51.100.7") as other:
        licence = await create_licence(other, app, entitlements=["spam"])
        right = await other.get(route, headers={"Authorization": f"Licence {licence['key']}"})
        assert right.status_code == 200


@pytest.mark.parametrize("route", NEWS_ROUTES)
async def test_one_key_tried_from_many_networks_meets_the_key_limit(
    store: Store, clock: FrozenClock, route: str
) -> None:
    settings = limited(store, rate_limit_licence_per_hour=4, rate_limit_machine_per_hour=1)
    async with running(settings, clock) as app:
        answers = []
        for network in range(6):
            async with client_from(app, f"198.51.{network}.7") as http:
                answers.append(
                    await http.get(route, headers={"Authorization": "Licence SAME-GUESS-0001"})
                )
        assert [answer.status_code for answer in answers[:4]] == [401] * 4
        assert_rate_limited(answers[4])
