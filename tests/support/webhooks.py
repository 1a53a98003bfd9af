"""Webhook test helpers: settings for a loopback receiver, adding endpoints, turning the worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.auth import Scope
from app.core.components import components_of
from app.core.settings import Settings
from app.events.delivery import WebhookWorker
from app.events.repository import queue_state
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.stores import Store
from tests.support.tokens import staff_headers


def webhook_settings(store: Store, **overrides: Any) -> Settings:
    # A long poll: the test turns the worker's rounds itself.
    return store.settings.model_copy(
        update={"webhook_allow_http": True, "webhook_poll_s": 3600.0, **overrides}
    )


@asynccontextmanager
async def hand_turned_worker(app: FastAPI) -> AsyncIterator[WebhookWorker]:
    """The started app's webhook worker swapped for one never started, whose rounds only
    the test turns: the lifespan's own takes a round as it starts, and that round could
    come after the test has made an event and deliver it first."""
    await app_parts.webhooks(app).stop()
    worker = WebhookWorker(app_parts.database(app), app_parts.settings(app), app_parts.clock(app))
    components_of(app.state).replace(WebhookWorker, worker)
    try:
        yield worker
    finally:
        await worker.stop()


def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://callhome.test")


async def add_endpoint(
    http: httpx.AsyncClient, app: FastAPI, url: str, events: list[str], **fields: Any
) -> dict[str, Any]:
    headers = await staff_headers(app, Scope.WEBHOOKS_WRITE, name="vendor-ops")
    response = await http.post(
        "/v1/admin/webhooks", json={"url": url, "events": events, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    added: dict[str, Any] = response.json()
    return added


async def waiting(app: FastAPI) -> int:
    """Deliveries (and events not yet planned) still waiting to be sent."""
    async with app_parts.database(app).engine.connect() as connection:
        return (await queue_state(connection)).depth


async def deliver_until_idle(app: FastAPI, clock: FrozenClock, rounds: int = 60) -> None:
    """Turn the worker's rounds, moving the clock past each backoff, until nothing waits."""
    worker = app_parts.webhooks(app)
    for _ in range(rounds):
        await worker.run_once()
        if await waiting(app) == 0:
            return
        clock.advance(minutes=10)
    raise AssertionError("deliveries still waiting")
