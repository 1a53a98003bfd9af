"""A fleet on both stores yields exactly the expected reports; two sweepers raise each once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from app.core import auth
from app.main import create_app
from tests.support import app_parts
from tests.support.abuse import detect, kinds
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping
from tests.support.stores import Store
from tests.support.tokens import staff_headers


async def retire_all_but_the_newest(http: httpx.AsyncClient, app: FastAPI, licence_id: str) -> None:
    """Staff read the licence's machines and retire every one but the newest."""
    headers = await staff_headers(app, auth.Scope.LICENCES_READ, auth.Scope.LICENCES_WRITE)
    detail = (await http.get(f"/v1/admin/licences/{licence_id}", headers=headers)).json()
    _newest, *older = detail["machines"]
    assert [machine["active"] for machine in detail["machines"]] == [True, True]
    for machine in older:
        response = await http.delete(
            f"/v1/admin/licences/{licence_id}/machines/{machine['machine_id'][:12]}",
            headers=headers,
        )
        assert response.status_code == 200, response.text


async def test_fleet_yields_exactly_the_expected_reports(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    shared = await create_licence(client, app, max_machines=3)  # five offices share it
    leaked = await create_licence(client, app, max_machines=2, overage="deny")
    crowded = await create_licence(client, app, max_machines=2, max_users=50)
    clean = await create_licence(client, app, max_machines=1, max_users=20)
    roaming = await create_licence(client, app, max_machines=1)

    for day in range(3):
        for office in range(5):
            await ping(app, shared["key"], f"office-{office}", address=f"10.{office}.0.1")
        # The leaked key: a new machine every few hours, each from its own network,
        # never more than the two seats at once (the rest are denied).
        for n in range(5):
            await ping(app, leaked["key"], f"stranger-{day}-{n}", address=f"100.64.{n}.1")
            clock.advance(hours=1)
        await ping(app, crowded["key"], "site-a", user_count=45, address="192.0.2.10")
        await ping(app, crowded["key"], "site-b", user_count=60 + day, address="192.0.2.11")
        await ping(app, clean["key"], "old-pc" if day < 2 else "new-pc", user_count=20)
        await ping(app, roaming["key"], "laptop", address="203.0.113.1")
        await detect(app)
        clock.advance(hours=16)
    # Before the sweep confirms the replacement as two machines, staff retire the old one.
    await retire_all_but_the_newest(client, app, clean["id"])
    for _ in range(2):
        await ping(app, clean["key"], "new-pc", user_count=19)
        await ping(app, roaming["key"], "laptop", address="198.51.100.1")
        await detect(app)
        clock.advance(hours=6)

    assert await kinds(app) == sorted(
        [
            (shared["id"], "machines_over_limit"),
            (leaked["id"], "machine_churn"),
            (leaked["id"], "network_spread"),
            (crowded["id"], "users_over_limit"),
        ]
    )


async def test_two_processes_sweeping_at_once_raise_each_report_once(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    if store.kind != "postgresql":
        pytest.skip("SQLite is one process: BEGIN IMMEDIATE serialises its sweeps")
    licences = [await create_licence(client, app, max_machines=1, max_users=5) for _ in range(8)]
    for licence in licences:
        for n in range(3):
            await ping(app, licence["key"], f"pc-{n}", user_count=9)
    app_parts.abuse(app).findings.drain()
    other = create_app(store.settings, clock=clock)
    async with other.router.lifespan_context(other):
        for _ in range(3):
            await asyncio.gather(*(app_parts.abuse(server).sweep() for server in (app, other) * 3))
            clock.advance(minutes=5)
            for licence in licences:
                for n in range(3):
                    await ping(app, licence["key"], f"pc-{n}", user_count=9)
    expected = sorted(
        (licence["id"], kind)
        for licence in licences
        for kind in ("machines_over_limit", "users_over_limit")
    )
    assert await kinds(app) == expected
