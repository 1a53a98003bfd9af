"""The server steers the fleet's rhythm: while its store is slow to commit, the answers
ask the fleet to call back later; an idle server keeps the configured interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from app.core.database import create_engine
from app.main import create_app
from app.ping.steering import Steering
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping_body, send_ping
from tests.support.stores import Store

INTERVAL_S = 3600
JITTER = 1.1
MAX_FACTOR = 4.0


@asynccontextmanager
async def commits_held(store: Store) -> AsyncIterator[None]:
    """Another connection holds the lock the batch writer needs to store pings."""
    engine = create_engine(store.url)
    try:
        async with engine.connect() as connection, connection.begin() as transaction:
            # On SQLite every transaction begins by taking the write lock.
            if store.kind == "postgresql":
                await connection.execute(text("LOCK TABLE pings IN EXCLUSIVE MODE"))
            yield
            await transaction.rollback()
    finally:
        await engine.dispose()


async def test_a_server_under_pressure_asks_for_a_later_check_in(
    store: Store, clock: FrozenClock
) -> None:
    settings = store.settings.model_copy(
        update={
            "check_in_interval_s": INTERVAL_S,
            "steer_commit_s": 0.05,
            "steer_max_factor": MAX_FACTOR,
            # On SQLite the change counter's watch clears the licence cache when it sees the
            # licence this test creates; a clear landing after the idle ping would send the
            # held ping to the store for its licence, to wait in the lookup, not the writer.
            # Polled at start-up only, it never sees the creation here.
            "licence_change_poll_s": 3600,
        }
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            licence = await create_licence(http, app, max_machines=3)
            idle = await send_ping(http, app, ping_body(licence["key"]))
            assert idle["next_check_in"] <= INTERVAL_S * JITTER

            await _ping_while_commits_are_held(store, http, app, licence["key"])
            pressed = await send_ping(http, app, ping_body(licence["key"]))
    assert INTERVAL_S * JITTER < pressed["next_check_in"] <= INTERVAL_S * MAX_FACTOR * JITTER


async def _ping_while_commits_are_held(
    store: Store, http: httpx.AsyncClient, app: FastAPI, key: str
) -> None:
    async with commits_held(store):
        waiting = asyncio.create_task(send_ping(http, app, ping_body(key)))
        await asyncio.sleep(0.6)
        assert not waiting.done()  # its batch cannot commit yet
    await waiting


def test_the_factor_grows_with_commit_latency_up_to_the_cap_and_comes_back() -> None:
    steering = Steering(commit_s=0.1, max_factor=4.0)
    steering.observe_commit(0.01)
    assert steering.factor == 1.0
    for _ in range(3):
        steering.observe_commit(0.5)
    assert 2.0 < steering.factor < 4.0
    for _ in range(20):
        steering.observe_commit(5.0)
    assert steering.factor == 4.0
    for _ in range(40):
        steering.observe_commit(0.01)
    assert steering.factor == 1.0
