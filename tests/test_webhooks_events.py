"""Which changes become events, once each, and that every payload field is declared in
the privacy inventory and names no key, computer ID or address."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core.auth import Scope
from app.core.events.models import Event
from app.events import notices
from app.privacy.inventory import EVENT_FIELDS
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import computer_id, ping_body, send_ping, this_machine
from tests.support.tokens import staff_headers


@pytest.fixture
def app(hook_app: FastAPI) -> FastAPI:
    """The outbox holds only what each test's own steps made: the lifespan's worker sweeps
    for expiry notices as it starts, and that sweep, were it to land after a test had made
    a licence that ends within 30 days, would add a licence.expiring of its own."""
    return hook_app


async def outbox(app: FastAPI) -> list[Event]:
    async with app_parts.database(app).sessions() as session:
        return list(await session.scalars(select(Event).order_by(Event.seq)))


async def test_every_event_carries_only_declared_fields_and_nothing_identifying(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    licence = await create_licence(
        client, app, key="EVENT-KEY-CANARY-0007", max_machines=1, overage="deny", external_ref="C-1"
    )
    writer = await staff_headers(app, Scope.LICENCES_WRITE, Scope.RELEASES_WRITE)
    await client.patch(f"/v1/admin/licences/{licence['id']}", json={"max_users": 5}, headers=writer)
    for machine in ("pc-1", "pc-2", "pc-3"):
        await send_ping(client, app, ping_body("EVENT-KEY-CANARY-0007", machine=machine))
    # Staff retire the seated machine (pc-1), as the licence detail lists it.
    machine_ref = this_machine(app, licence["id"], "pc-1")
    listed = (
        await client.get(f"/v1/admin/licences/{licence['id']}", headers=await staff_headers(
            app, Scope.LICENCES_READ))
    ).json()["machines"]  # fmt: skip
    assert machine_ref in {machine["machine_id"][:12] for machine in listed}
    await client.delete(
        f"/v1/admin/licences/{licence['id']}/machines/{machine_ref}", headers=writer
    )
    # The seat the staff freed goes to a newcomer, whose key holder then frees it.
    await send_ping(client, app, ping_body("EVENT-KEY-CANARY-0007", machine="pc-4"))
    body = {
        "licence_key": "EVENT-KEY-CANARY-0007",
        "product": "mail",
        "computer_id": computer_id("pc-4"),
    }
    freed = await client.post("/v1/machines/deactivate", content=json.dumps(body))
    assert freed.status_code == 200 and freed.json()["status"] == "deactivated", freed.text
    release = await client.post(
        "/v1/admin/releases",
        json={
            "product": "mail",
            "version": "9.0.0",
            "url": "https://downloads.example/mail-9.0.0.tar.gz",
            "sha256": "a" * 64,
            "size": 1000,
            "rollout_percent": 10,
        },
        headers=writer,
    )
    assert release.status_code == 201, release.text
    await client.patch(
        f"/v1/admin/releases/{release.json()['id']}", json={"rollout_percent": 50}, headers=writer
    )

    events = await outbox(app)
    types = [event.type for event in events]
    assert types == [
        "licence.created",
        "licence.changed",
        "machine.seat_denied",
        "machine.deactivated",
        "machine.deactivated",
        "release.published",
        "release.rollout_changed",
    ]
    denied = events[2].payload
    assert denied["machine"] != computer_id("pc-2")[:12] and len(denied["machine"]) == 12
    assert (denied["allowed"], denied["active"]) == (1, 1)
    by_staff, by_customer = events[3].payload, events[4].payload
    assert (by_staff["by"], by_staff["machine"]) == ("staff", machine_ref)
    assert by_customer["by"] == "customer"
    assert by_customer["machine"] == this_machine(app, licence["id"], "pc-4")
    for event in events:
        undeclared = set(event.payload) - set(EVENT_FIELDS)
        assert not undeclared, f"{event.type} carries undeclared {undeclared}"
        text = str(event.payload)
        for canary in (
            "EVENT-KEY-CANARY-0007",
            "EVENTKEYCANARY7",
            computer_id("pc-2"),
            computer_id("pc-4"),
            "203.0.113",
        ):
            assert canary not in text
        if event.licence_id is not None:
            assert event.payload["external_ref"] == "C-1"


async def test_a_trial_starting_at_its_first_seat_is_a_change_of_its_terms(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    licence = await create_licence(
        client, app, key="TRIAL-KEY-0001-ABCD", max_machines=2, trial_days=14, grace_days=3
    )
    clock.advance(days=3)
    await send_ping(client, app, ping_body("TRIAL-KEY-0001-ABCD", machine="first"))
    await send_ping(client, app, ping_body("TRIAL-KEY-0001-ABCD", machine="second"))
    events = await outbox(app)
    assert [event.type for event in events] == ["licence.created", "licence.changed"]
    created, started = (event.payload for event in events)
    assert (created["expires_at"], created["trial_days"], created["grace_days"]) == (None, 14, 3)
    assert started["changed"] == ["expires_at"]
    assert started["expires_at"] == (clock.now() + dt.timedelta(days=14)).isoformat()
    assert started["licence_id"] == licence["id"] and started["lease_minutes"] is None


async def test_a_refused_newcomer_is_told_once_an_hour(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await create_licence(client, app, key="HOURLY-KEY-0001-ABC", max_machines=1, overage="deny")
    await send_ping(client, app, ping_body("HOURLY-KEY-0001-ABC", machine="seated"))
    for n in range(4):
        await send_ping(client, app, ping_body("HOURLY-KEY-0001-ABC", machine=f"refused-{n}"))
        clock.advance(minutes=10)
    clock.advance(minutes=30)
    await send_ping(client, app, ping_body("HOURLY-KEY-0001-ABC", machine="refused-late"))
    denied = [e for e in await outbox(app) if e.type == "machine.seat_denied"]
    assert len(denied) == 2


async def test_expiry_notices_come_once_for_each_notice_day(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    ends = clock.now() + dt.timedelta(days=10)
    await create_licence(client, app, expires_at=ends.isoformat(), external_ref="ACME")
    await create_licence(client, app, expires_at=(clock.now() + dt.timedelta(days=90)).isoformat())
    settings = app_parts.settings(app)
    database = app_parts.database(app)

    async def run_notices() -> list[tuple[str, Any]]:
        async with database.sessions() as session, session.begin():
            await notices.run(session, settings, clock.now())
        return [
            (event.type, event.payload.get("days"))
            for event in await outbox(app)
            if event.type.startswith("licence.expir")
        ]

    assert await run_notices() == [("licence.expiring", 30)]
    assert await run_notices() == [("licence.expiring", 30)]  # run twice: said once
    clock.advance(days=4)
    assert await run_notices() == [("licence.expiring", 30), ("licence.expiring", 7)]
    clock.advance(days=5, hours=1)  # 23 hours left: the 1-day notice
    assert (await run_notices())[-1] == ("licence.expiring", 1)
    clock.advance(hours=24)  # ended an hour ago
    assert await run_notices() == [
        ("licence.expiring", 30),
        ("licence.expiring", 7),
        ("licence.expiring", 1),
        ("licence.expired", None),
    ]
    assert await run_notices() == await run_notices()
