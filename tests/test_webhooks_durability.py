"""Webhooks lose nothing when the server is stopped mid-stream (SIGTERM, then started again)
or when the store goes away during delivery: after dedupe by webhook-id every event arrives
once, in order for an ordered endpoint; on both stores, to a receiver on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.core import auth
from app.main import create_app
from tests.support.clocks import FrozenClock
from tests.support.faults import CuttableProxy, sqlite_locked
from tests.support.licences import create_licence
from tests.support.receiver import Receiver, receiver_in_thread
from tests.support.server import serve
from tests.support.stores import Store
from tests.support.tokens import bearer, staff_token
from tests.support.webhooks import add_endpoint, client_of, webhook_settings

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

EVENTS = 40


def wait_for(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def refs_received(receiver: Receiver) -> list[str]:
    """The external_ref of each event the receiver kept after dedupe, in arrival order."""
    return [request.document["data"]["external_ref"] for request in receiver.unique()]


def test_sigterm_mid_delivery_then_a_restart_delivers_every_event(store: Store) -> None:
    env = {
        **store.env(),
        "CALLHOME_WEBHOOK_ALLOW_HTTP": "true",
        "CALLHOME_WEBHOOK_POLL_S": "0.05",
        "CALLHOME_WEBHOOK_TIMEOUT_S": "5",
        "CALLHOME_WEBHOOK_CONCURRENCY": "4",
    }
    token = staff_token(store, auth.Scope.WEBHOOKS_WRITE, auth.Scope.LICENCES_WRITE)
    # Slow while the events are made, so that the stream is still flowing at the stop.
    with receiver_in_thread(delay_s=1.0) as receiver:
        with serve(env) as server:
            added = httpx.post(
                f"{server.base_url}/v1/admin/webhooks",
                json={"url": receiver.url, "events": ["licence.created"]},
                headers=bearer(token),
            )
            assert added.status_code == 201, added.text
            receiver.secrets = [added.json()["secret"]]
            for number in range(EVENTS):
                created = httpx.post(
                    f"{server.base_url}/v1/admin/licences",
                    json={"product": "mail", "external_ref": f"ref-{number:02}"},
                    headers=bearer(token),
                )
                assert created.status_code == 201, created.text
            receiver.delay_s = 0.2
            wait_for(lambda: len(receiver.received) >= 5, timeout_s=30, what="the first deliveries")
            output = server.stop()  # SIGTERM, mid-stream
            at_stop = len(receiver.unique())
        assert at_stop < EVENTS, "the stop came after the last delivery: nothing was tested"
        assert "Traceback" not in output, output

        with serve(env):
            wait_for(lambda: len(receiver.unique()) >= EVENTS, timeout_s=90, what="every event")
            time.sleep(0.5)  # nothing more, and nothing twice that dedupe would not absorb
    assert sorted(refs_received(receiver)) == [f"ref-{number:02}" for number in range(EVENTS)]
    assert receiver.forged == []


@pytest.fixture
async def outage_app(
    store: Store, clock: FrozenClock
) -> AsyncIterator[tuple[FastAPI, Callable[[], Any]]]:
    """An app delivering on its own (a short poll), and how to cut its store for a while:
    PostgreSQL behind a proxy that breaks every connection, SQLite locked by another process."""
    # SQLite's held lock fails a round only once the store timeout has passed, so it stays
    # short there; the cut proxy fails PostgreSQL's rounds at once, and a longer timeout
    # only outlasts a busy machine's slow commit while the events are made.
    overrides: dict[str, Any] = {"webhook_poll_s": 0.05, "store_timeout_s": 1.0}
    proxy: CuttableProxy | None = None
    if store.kind == "postgresql":
        overrides["store_timeout_s"] = 3.0
        real = make_url(store.url)
        proxy = CuttableProxy(real.host or "127.0.0.1", real.port or 5432)
        await proxy.start()
        overrides["database_url"] = real.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
    app = create_app(webhook_settings(store, **overrides), clock=clock)

    @contextlib.asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        if proxy is not None:
            await proxy.cut()
            try:
                yield
            finally:
                await proxy.restore()
        else:
            async with sqlite_locked(store.settings.data_dir / "callhome.sqlite3"):
                yield

    async with app.router.lifespan_context(app):
        yield app, outage
    if proxy is not None:
        await proxy.cut()


async def test_a_store_outage_during_delivery_loses_nothing_and_keeps_order(
    outage_app: tuple[FastAPI, Callable[[], Any]],
    clock: FrozenClock,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, outage = outage_app
    receiver.delay_s = 0.03
    async with client_of(app) as http:
        added = await add_endpoint(http, app, receiver.url, ["licence.created"], ordered=True)
        receiver.secrets = [added["secret"]]
        refs = [
            (await create_licence(http, app, external_ref=f"ref-{number:02}"))["external_ref"]
            for number in range(EVENTS)
        ]

    async def until(condition: Callable[[], bool], timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            # Past any lease or backoff an attempt cut short has left behind.
            clock.advance(minutes=1)
            await asyncio.sleep(0.05)

    await until(lambda: len(receiver.received) >= 5, 30)
    async with outage():
        during = len(receiver.received)
        await asyncio.sleep(1.5)  # the worker's rounds fail against the missing store
    assert len(receiver.unique()) < EVENTS, "the outage came after the last delivery"
    assert "webhook round failed" in caplog.text
    await until(lambda: len(receiver.unique()) >= EVENTS, 90)
    await asyncio.sleep(0.3)

    assert during >= 5 and receiver.forged == []
    # Exactly once after dedupe, and in the order the events happened.
    assert refs_received(receiver) == refs
