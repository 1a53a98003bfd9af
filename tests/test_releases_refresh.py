"""A publish elsewhere (the CLI, another node) reaches a running server's pings, no restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.support.cli import callhome_json, invoke
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping_body, send_ping
from tests.support.releases import RELEASE_SHA256, publish_release
from tests.support.stores import Store


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 200) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the change did not arrive")


@pytest.fixture
async def quick_app(store: Store, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    """A server that rereads the catalog often, so SQLite sees other processes' publishes."""
    application = create_app(
        store.settings.model_copy(update={"catalog_refresh_s": 0.1}), clock=clock
    )
    async with application.router.lifespan_context(application):
        # On PostgreSQL a publish made before its listener connects is read
        # when it does: no need to wait for it here.
        yield application


@pytest.fixture
async def quick_client(quick_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=quick_app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        yield http


async def test_a_cli_publish_reaches_the_next_pings(
    store: Store, quick_app: FastAPI, quick_client: httpx.AsyncClient
) -> None:
    licence = await create_licence(quick_client, quick_app, entitlements=["spam"])
    body = ping_body(licence["key"], version="8.2.1", signatures={"spam": 10})
    assert (await send_ping(quick_client, quick_app, body))["update"] is None

    published = await callhome_json(
        store,
        "releases", "publish", "--product", "mail", "--version", "8.10",
        "--url", "https://dl.example.com/mail-8.10", "--sha256", RELEASE_SHA256, "--size", "4096",
        "--critical", "--min-from-version", "8.0", "--notes-url", "https://n.example.com",
    )  # fmt: skip
    assert published["version"] == "8.10" and published["critical"] is True
    await callhome_json(
        store,
        "feeds", "publish", "spam", "--version", "11", "--url", "https://dl.example.com/s11",
        "--sha256", RELEASE_SHA256, "--size", "800", "--delta-from", "10",
        "--delta-url", "https://dl.example.com/s10-11", "--delta-sha256", RELEASE_SHA256,
        "--delta-size", "80",
    )  # fmt: skip

    async def offered() -> bool:
        answer = await send_ping(quick_client, quick_app, body | {"nonce": None})
        return answer["update"] is not None and "spam" in answer["signatures"]

    await eventually(offered)
    answer = await send_ping(quick_client, quick_app, body | {"nonce": "n" * 24})
    assert answer["update"]["version"] == "8.10"
    assert answer["signatures"]["spam"]["delta"]["from"] == 10

    halted = await callhome_json(store, "releases", "rollout", published["id"], "--percent", "0")
    assert halted["rollout_percent"] == 0

    async def withdrawn() -> bool:
        again = await send_ping(quick_client, quick_app, body | {"nonce": "m" * 24})
        return again["update"] is None

    await eventually(withdrawn)
    yanked = await callhome_json(store, "releases", "yank", published["id"])
    assert yanked["yanked_at"] is not None
    listed = await callhome_json(store, "releases", "list", "--product", "mail")
    assert [item["id"] for item in listed["items"]] == [published["id"]]
    feeds = await callhome_json(store, "feeds", "list")
    assert feeds["items"] == [{"feed": "spam", "latest_version": 11, "versions": 1}]
    versions = await callhome_json(store, "feeds", "list", "spam")
    assert versions["items"][0]["deltas"][0]["from"] == 10


async def test_another_node_sees_a_publish(
    store: Store, client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str],
    quick_app: FastAPI, quick_client: httpx.AsyncClient,
) -> None:  # fmt: skip
    licence = await create_licence(client, app)
    await publish_release(client, admin_headers, "9.0")

    async def offered() -> bool:
        answer = await send_ping(quick_client, quick_app, ping_body(licence["key"]))
        return answer["update"] is not None

    await eventually(offered)


@pytest.mark.parametrize(
    "args",
    [
        ["releases", "publish", "--product", "mail", "--version", "banana",
         "--url", "https://x.example.com", "--sha256", RELEASE_SHA256, "--size", "1"],
        ["releases", "publish", "--product", "mail", "--version", "1.0",
         "--url", "https://x.example.com", "--sha256", "nothex", "--size", "1"],
        ["releases", "publish", "--product", "mail", "--version", "1.0",
         "--url", "https://x.example.com", "--sha256", RELEASE_SHA256, "--size", "-5"],
        ["releases", "publish", "--product", "mail", "--version", "1.0",
         "--url", "https://x.example.com", "--sha256", RELEASE_SHA256, "--size", "1",
         "--rollout-percent", "150"],
        ["releases", "rollout", "00000000-0000-0000-0000-000000000000", "--percent", "10"],
        ["feeds", "publish", "Spam!", "--version", "1", "--url", "https://x.example.com",
         "--sha256", RELEASE_SHA256, "--size", "1"],
        ["feeds", "publish", "spam", "--version", "2", "--url", "https://x.example.com",
         "--sha256", RELEASE_SHA256, "--size", "1", "--delta-from", "1"],
    ],
)  # fmt: skip
async def test_cli_refuses_bad_input_and_writes_nothing(store: Store, args: list[str]) -> None:
    result = await invoke(store, *args)
    assert result.exit_code != 0
    assert (await callhome_json(store, "releases", "list"))["items"] == []
    assert (await callhome_json(store, "feeds", "list"))["items"] == []
